# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Tiny versions of this project's configs, for tests on a CPU.

``mmdet.testing.get_detector_cfg`` only works inside mmdet's source tree;
these helpers read our own ``configs/`` and shrink the model: ResNet-18
without pre-trained weights, one or two transformer layers of width 32, and
few queries, so a forward/backward pass takes milliseconds.
"""
import copy
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

REPO_ROOT = Path(__file__).resolve().parents[2]


def get_config_path(name: str) -> str:
    """Absolute path of ``configs/<name>`` in this repository."""
    path = REPO_ROOT / 'configs' / name
    if not path.is_file():
        raise FileNotFoundError(f'no config {path}')
    return str(path)


def tiny_model_cfg(model: ConfigDict,
                   embed_dims: int = 32,
                   num_layers: int = 1,
                   num_queries: int = 10,
                   num_patches: int = 2) -> ConfigDict:
    """Shrink an UP-DETR (or pre-norm DETR) model config for CPU tests.

    Args:
        model (:obj:`ConfigDict`): The model config; not modified.
        embed_dims (int): Transformer width. Defaults to 32.
        num_layers (int): Encoder and decoder layers. Defaults to 1.
        num_queries (int): Object queries ``N``. Defaults to 10.
        num_patches (int): Query patches ``M``, for a model with query
            patches (``UPDETR`` and its subclasses; unused otherwise).
            Defaults to 2.

    Returns:
        :obj:`ConfigDict`: The shrunk copy.
    """
    model = copy.deepcopy(model)
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.update(in_channels=[512], out_channels=embed_dims)
    model.num_queries = num_queries
    model.test_cfg.max_per_img = num_queries
    if 'num_patches' in model:
        model.update(num_patches=num_patches, patch_feat_dims=512)
    for coder in (model.encoder, model.decoder):
        coder.num_layers = num_layers
        for key, attn in coder.layer_cfg.items():
            if key.endswith('attn_cfg'):
                attn.update(embed_dims=embed_dims, num_heads=2)
        coder.layer_cfg.ffn_cfg.update(
            embed_dims=embed_dims, feedforward_channels=2 * embed_dims)
    model.positional_encoding.num_feats = embed_dims // 2
    model.bbox_head.embed_dims = embed_dims
    return model


def get_tiny_cfg(name: str, **kwargs) -> Config:
    """Load ``configs/<name>`` with its model shrunk by ``tiny_model_cfg``.

    Args:
        name (str): Config path relative to ``configs/``.
        **kwargs: Passed to :func:`tiny_model_cfg`.

    Returns:
        :obj:`Config`: The config.
    """
    cfg = Config.fromfile(get_config_path(name))
    cfg.model = tiny_model_cfg(cfg.model, **kwargs)
    # The pipelines crop as many patches as the model has groups.
    for key in ('train_dataloader', 'val_dataloader'):
        dataloader = cfg.get(key) or {}
        for transform in dataloader.get('dataset', {}).get('pipeline', []):
            if transform['type'] == 'QueryPatchTransform':
                transform['num_patches'] = cfg.model.num_patches
    return cfg


def build_tiny_model(name: str, **overrides) -> torch.nn.Module:
    """Build and initialise the model of ``configs/<name>``, shrunk.

    Args:
        name (str): Config path relative to ``configs/``.
        **overrides: Top-level model keys to replace (after shrinking).

    Returns:
        nn.Module: The model (no data preprocessor: it takes the outputs of
        :func:`tiny_batch`), in training mode.
    """
    model_cfg = get_tiny_cfg(name).model
    model_cfg.data_preprocessor = None
    model_cfg.update(overrides)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def tiny_batch(
    num_patches: int = 0,
    patch_size: int = 32,
    generator: Optional[torch.Generator] = None
) -> Tuple[torch.Tensor, List[DetDataSample]]:
    """Two preprocessed images (64 x 80 and 48 x 64, padded to 64 x 80)
    with data samples, as a detector's ``loss`` and ``predict`` take them.

    Args:
        num_patches (int): Query patches per sample (``query_patches``,
            random, (num_patches, 3, patch_size, patch_size)); none for 0.
            Defaults to 0.
        patch_size (int): Side of the query patches. Defaults to 32.
        generator (torch.Generator, optional): Source of the random images
            and patches. Defaults to None (torch's global one).

    Returns:
        tuple[Tensor, list[:obj:`DetDataSample`]]: The images, has shape
        (2, 3, 64, 80), and their samples, each with the first
        ``num_patches`` (at least 1, at most 2) of the ground-truth boxes
        [0, 0, 20, 20] and [10, 10, 40, 30], label 0.
    """
    shapes = [(64, 80), (48, 64)]
    inputs = torch.randn(len(shapes), 3, 64, 80, generator=generator)
    boxes = torch.tensor([[0., 0., 20., 20.], [10., 10., 40., 30.]])
    boxes = boxes[:num_patches or 1]
    samples = []
    for h, w in shapes:
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                batch_input_shape=(64, 80),
                pad_shape=(64, 80),
                scale_factor=(1., 1.)))
        if num_patches:
            sample.query_patches = torch.randn(
                num_patches, 3, patch_size, patch_size, generator=generator)
        sample.gt_instances = InstanceData(
            bboxes=boxes.clone(),
            labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(sample)
    return inputs, samples
