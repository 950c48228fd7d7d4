# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Tiny versions of this project's configs, for tests on a CPU.

``mmdet.testing.get_detector_cfg`` only works inside mmdet's source tree;
these helpers read our own ``configs/`` and shrink the model: ResNet-18
without pre-trained weights, one or two transformer layers of width 32, and
few queries, so a forward/backward pass takes milliseconds.
"""
import copy
from pathlib import Path

from mmengine.config import Config, ConfigDict

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
    # The pipeline crops as many patches as the model has groups.
    dataloader = cfg.get('train_dataloader') or {}
    for transform in dataloader.get('dataset', {}).get('pipeline', []):
        if transform['type'] == 'QueryPatchTransform':
            transform['num_patches'] = cfg.model.num_patches
    return cfg
