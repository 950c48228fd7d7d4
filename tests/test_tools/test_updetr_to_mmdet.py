"""Tests of ``tools/model_converters/updetr_to_mmdet.py``.

A tiny model of the reference implementation (``tests/reference``, ResNet-18,
2 encoder / 2 decoder pre-norm layers of width 32, N = 6 queries in M = 3
groups, so that M > N / M) gives a reference-format state dict. The
converter must consume all of it, and our ``UPDETR`` loaded with the result
(``strict=True``) must give the reference's outputs and losses.
"""
import argparse
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet_updetr.models import UPDETR
from mmdet_updetr.testing import tiny_model_cfg
from tests.reference import randomize_1d_
from tests.reference import updetr_reference as ref
from tools.model_converters import (convert_reference_state_dict,
                                    updetr_to_mmdet)

REPO = Path(__file__).resolve().parents[2]
NUM_QUERIES, NUM_PATCHES, EMBED_DIMS, NUM_LAYERS = 6, 3, 32, 2
IMG_SHAPES = ((160, 224), (192, 160))  # (h, w), padded to (192, 224)
ATOL = 1e-5


@pytest.fixture(scope='module')
def reference():
    """The reference model (eval) and criterion, randomised, seeded."""
    torch.manual_seed(0)
    model, criterion = ref.build_reference(
        num_queries=NUM_QUERIES,
        num_patches=NUM_PATCHES,
        hidden_dim=EMBED_DIMS,
        nheads=2,
        enc_layers=NUM_LAYERS,
        dec_layers=NUM_LAYERS,
        dim_feedforward=2 * EMBED_DIMS,
        dropout=0.,
        mask_ratio=0.)
    randomize_1d_(model)
    with torch.no_grad():
        # Class 0 of the reference's 3-way classifier is never a target;
        # with its logit at -1e4 its softmax mass is 0, so the 3-way and our
        # 2-way softmax, cross entropy and matching cost agree exactly.
        model.class_embed.bias[0] = -1e4
    return model.eval(), criterion


@pytest.fixture(scope='module')
def converted(reference):
    return convert_reference_state_dict(reference[0].state_dict())


@pytest.fixture(scope='module')
def inputs():
    """Two images of different sizes, padded, with M patches and boxes."""
    torch.manual_seed(1)
    images = [torch.randn(3, h, w) for h, w in IMG_SHAPES]
    samples = ref.nested_tensor_from_tensor_list(images)
    # Offsets make the patches' (GAP) features differ more.
    offsets = torch.linspace(-2, 2, len(images) * NUM_PATCHES)
    patches = torch.randn(len(images), NUM_PATCHES, 3, 128, 128) \
        + offsets.view(len(images), NUM_PATCHES, 1, 1, 1)
    boxes = []  # absolute xyxy inside each image
    for h, w in IMG_SHAPES:
        xy = torch.rand(NUM_PATCHES, 2) * torch.tensor([w, h]) * 0.6
        wh = (torch.rand(NUM_PATCHES, 2) * 0.3 + 0.1) * torch.tensor([w, h])
        boxes.append(torch.cat([xy, xy + wh], dim=1))
    return samples, patches, boxes


def test_converter_consumes_every_key(reference, converted):
    src = reference[0].state_dict()
    num_bn = sum(k.endswith('running_var') for k in src)
    assert num_bn > 0
    assert len(converted) == len(src) + num_bn
    assert converted['backbone.layer2.0.downsample.1.running_mean'].equal(
        src['backbone.0.body.layer2.0.downsample.1.running_mean'])
    assert converted['backbone.bn1.num_batches_tracked'].item() == 0
    # Reference rows [1, 2] (patch, no object) -> ours [patch, no match].
    assert converted['bbox_head.fc_cls.weight'].equal(
        src['class_embed.weight'][1:])
    assert converted['bbox_head.fc_cls.bias'].equal(
        src['class_embed.bias'][1:])
    assert converted['encoder.post_norm.weight'].equal(
        src['transformer.encoder.norm.weight'])


def test_converter_names_unknown_keys(reference):
    src = dict(reference[0].state_dict())
    src['transformer.decoder.layers.0.norm4.weight'] = torch.ones(1)
    with pytest.raises(KeyError, match=r'decoder\.layers\.0\.norm4\.weight'):
        convert_reference_state_dict(src)


def test_tool_converts_a_reference_checkpoint(reference, tmp_path, capsys,
                                              monkeypatch):
    model = reference[0]
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    optimizer = torch.optim.AdamW(model.transformer.parameters(), lr=1e-4)
    torch.save(
        dict(
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            epoch=59,
            args=argparse.Namespace(num_queries=NUM_QUERIES, pre_norm=True)),
        src)
    monkeypatch.setattr(sys, 'argv',
                        ['updetr_to_mmdet.py',
                         str(src), str(dst)])
    updetr_to_mmdet.main()
    assert 'converted' in capsys.readouterr().out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['epoch'] == 59
    assert set(saved['state_dict']) == set(
        convert_reference_state_dict(model.state_dict()))


def test_tool_refuses_unsafe_pickles_unless_asked(reference, tmp_path):
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    # Any object that weights_only does not allow (here a date).
    torch.save(
        dict(model=reference[0].state_dict(), when=datetime.date(2021, 1, 1)),
        src)
    with pytest.raises(SystemExit, match='--unsafe-load'):
        updetr_to_mmdet.convert(str(src), str(dst))
    assert not dst.exists()
    updetr_to_mmdet.convert(str(src), str(dst), unsafe_load=True)
    assert dst.exists()


def test_tool_runs_as_a_script_from_any_folder(reference, tmp_path):
    """``python .../updetr_to_mmdet.py SRC DST`` in another folder, with no
    ``PYTHONPATH``: the script finds ``tools.model_converters`` itself."""
    model = reference[0]
    torch.save(dict(model=model.state_dict()), tmp_path / 'ref.pth')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    script = REPO / 'tools' / 'model_converters' / 'updetr_to_mmdet.py'
    proc = subprocess.run(
        [sys.executable, str(script), 'ref.pth', 'ours.pth'],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.endswith('saved to ours.pth\n'), proc.stdout
    saved = torch.load(tmp_path / 'ours.pth', weights_only=True)
    expected = convert_reference_state_dict(model.state_dict())
    assert list(saved['state_dict']) == list(expected)
    for key, value in expected.items():
        assert torch.equal(saved['state_dict'][key], value), key


# --------------------------------------------------------------------------
# Our UPDETR against the reference, same weights and inputs
# --------------------------------------------------------------------------
def _build_ours(converted: dict) -> UPDETR:
    """Our tiny UPDETR with the reference's architecture, in eval mode.

    Built in train mode, a model's frozen BN would use and update batch
    statistics until ``train()`` (which keeps the CNN in eval) is called.
    """
    register_all_modules()
    cfg = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'models' / 'updetr_r50.py'))
    cfg = tiny_model_cfg(
        cfg.model,
        embed_dims=EMBED_DIMS,
        num_layers=NUM_LAYERS,
        num_queries=NUM_QUERIES,
        num_patches=NUM_PATCHES)
    cfg.mask_ratio = 0.
    cfg.data_preprocessor = dict(type='DetDataPreprocessor')  # bypassed
    for coder in (cfg.encoder, cfg.decoder):
        for key, sub in coder.layer_cfg.items():
            sub['dropout' if key.endswith('attn_cfg') else 'ffn_drop'] = 0.
    model = MODELS.build(cfg)
    # strict: nothing of ours uninitialised, nothing of the reference left.
    model.load_state_dict(converted, strict=True)
    return model.eval()


@pytest.fixture(scope='module')
def ours(converted):
    return _build_ours(converted)


def _data_samples(inputs, num_patches=NUM_PATCHES):
    samples, patches, boxes = inputs
    pad_shape = tuple(samples.tensors.shape[-2:])
    data_samples = []
    for (h, w), img_patches, img_boxes in zip(IMG_SHAPES, patches, boxes):
        data_sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=pad_shape,
                batch_input_shape=pad_shape,
                scale_factor=(1., 1.)))
        data_sample.query_patches = img_patches[:num_patches]
        data_sample.gt_instances = InstanceData(
            bboxes=img_boxes[:num_patches],
            labels=torch.zeros(num_patches, dtype=torch.long))
        data_samples.append(data_sample)
    return data_samples


def _reference_targets(inputs):
    _, _, boxes = inputs
    targets = []
    for (h, w), img_boxes in zip(IMG_SHAPES, boxes):
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        targets.append(
            dict(
                labels=torch.ones(len(img_boxes), dtype=torch.long),
                boxes=ref.box_xyxy_to_cxcywh(img_boxes / scale)))
    return targets


def _reference_layers(out):
    layers = out['aux_outputs'] + [out]
    return {
        key: torch.stack([layer[key] for layer in layers])
        for key in ('pred_logits', 'pred_boxes', 'pred_feature')
    }


@pytest.mark.parametrize('num_patches', [NUM_PATCHES, 2])
def test_same_outputs_as_reference(reference, ours, inputs, num_patches):
    """Eval mode, all M patches or only k < M (the mask's top-left corner).
    """
    samples, patches = inputs[:2]
    data_samples = _data_samples(inputs, num_patches)
    ours.eval()
    with torch.no_grad():
        expected = _reference_layers(reference[0](samples,
                                                  patches[:, :num_patches]))
        feats = ours.extract_feat(samples.tensors)
        head_inputs = ours.forward_transformer(feats, data_samples)
        cls, boxes, rec = ours.bbox_head(head_inputs['hidden_states'])
        results = ours.predict(samples.tensors, data_samples, rescale=False)
    group_size = NUM_QUERIES // NUM_PATCHES
    assert cls.shape == (NUM_LAYERS, len(IMG_SHAPES), num_patches * group_size,
                         2)
    torch.testing.assert_close(
        cls, expected['pred_logits'][..., 1:], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(
        boxes, expected['pred_boxes'], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(
        rec, expected['pred_feature'], atol=ATOL, rtol=1e-5)
    ref_scores = expected['pred_logits'][-1].softmax(-1)[..., 1]
    for i, (h, w) in enumerate(IMG_SHAPES):
        pred = results[i].pred_instances
        ref_boxes = ref.box_cxcywh_to_xyxy(expected['pred_boxes'][-1, i])
        ref_boxes = ref_boxes * torch.tensor([w, h, w, h])
        # The reference's PostProcess does not clip; mmdet's heads do.
        ref_boxes[:, 0::2] = ref_boxes[:, 0::2].clamp(0, w)
        ref_boxes[:, 1::2] = ref_boxes[:, 1::2].clamp(0, h)
        order = _query_order(pred, ref_scores[i])
        torch.testing.assert_close(
            pred.scores, ref_scores[i][order], atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(
            pred.bboxes, ref_boxes[order], atol=1e-4, rtol=1e-5)


def _query_order(pred, ref_scores):
    """Indices of the queries behind our predictions, found by score."""
    return (pred.scores[:, None] - ref_scores[None]).abs().argmin(dim=1)


@pytest.fixture(scope='module')
def both_losses(reference, ours, inputs):
    """Train-mode losses of both (dropout 0, mask_ratio 0: deterministic).

    Returns:
        tuple[dict, dict]: Ours, and the reference's weighted by its
        ``weight_dict`` and renamed to our keys (``loss_ce_0`` ->
        ``d0.loss_cls``, ...).
    """
    model, criterion = reference
    samples, patches = inputs[:2]
    model.train()
    ours.train()
    try:
        expected = criterion(
            model(samples, patches), _reference_targets(inputs))
        losses = ours.loss(samples.tensors, _data_samples(inputs))
    finally:
        model.eval()
        ours.eval()
    renamed = {}
    for our_name, ref_name in LOSS_NAMES.items():
        weight = ref.LOSS_WEIGHTS[ref_name]
        renamed[our_name] = expected[ref_name] * weight
        for layer in range(NUM_LAYERS - 1):
            renamed[f'd{layer}.{our_name}'] = \
                expected[f'{ref_name}_{layer}'] * weight
    return losses, renamed


LOSS_NAMES = dict(
    loss_cls='loss_ce',
    loss_bbox='loss_bbox',
    loss_iou='loss_giou',
    loss_rec='loss_feature')


@pytest.mark.parametrize('name', ['loss_cls', 'loss_bbox', 'loss_iou'])
def test_same_detection_losses_as_reference(both_losses, name):
    """Per decoder layer: cross entropy, L1 (x5), GIoU (x2)."""
    losses, expected = both_losses
    for layer in range(NUM_LAYERS):
        key = name if layer == NUM_LAYERS - 1 else f'd{layer}.{name}'
        torch.testing.assert_close(
            losses[key],
            expected[key],
            atol=ATOL,
            rtol=1e-5,
            msg=lambda m, k=key: f'{k}: {m}')


def test_same_reconstruction_loss_as_reference(both_losses):
    """Per decoder layer: the feature reconstruction loss (x1).

    The reference's ``loss_feature`` compares a matched query's feature
    with that of the patch of the ground-truth box it is matched to
    (``gt_feature.view(B, M, -1)[b][j]``), not with its own group's patch.
    """
    losses, expected = both_losses
    for layer in range(NUM_LAYERS):
        key = 'loss_rec' if layer == NUM_LAYERS - 1 else f'd{layer}.loss_rec'
        torch.testing.assert_close(
            losses[key],
            expected[key],
            atol=ATOL,
            rtol=1e-5,
            msg=lambda m, k=key: f'{k}: {m}')
