"""Tests of ``tools/model_converters/panoptic_to_mmdet.py`` and
``mmdet_updetr.utils.panoptic_keys``.

A reference-format panoptic (``DETRsegm``) state dict: the tiny reference
DETR of ``tests/reference`` under ``detr.`` with a 251-way classifier, plus
``bbox_attention`` and ``mask_head`` with the reference's names and shapes
(``MaskHeadSmallConv(dim + nheads, fpn_dims, dim)``). Converted, it must load
strictly into our tiny ``UPDETRPanoptic`` with the right classifier rows.
"""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS

from mmdet_updetr.testing import get_tiny_cfg, tiny_panoptic_model_cfg
from mmdet_updetr.utils import (COCO_PANOPTIC_CATEGORY_IDS,
                                convert_panoptic_state_dict)

REPO = Path(__file__).resolve().parents[2]
DIM, HEADS, FPN = 32, 2, (256, 128, 64)  # ResNet-18 strides 16, 8, 4


def _load_module(name, *parts):
    spec = importlib.util.spec_from_file_location(name, REPO.joinpath(*parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mask_branch_state_dict():
    """The reference's names and shapes (models/segmentation.py)."""
    sd = {}
    for name in ('q_linear', 'k_linear'):
        sd[f'bbox_attention.{name}.weight'] = torch.randn(DIM, DIM)
        sd[f'bbox_attention.{name}.bias'] = torch.randn(DIM)
    inter = [DIM + HEADS, DIM // 2, DIM // 4, DIM // 8, DIM // 16]
    ins = [DIM + HEADS] + inter[:-1]
    for i in range(5):
        sd[f'mask_head.lay{i + 1}.weight'] = torch.randn(
            inter[i], ins[i], 3, 3)
        sd[f'mask_head.lay{i + 1}.bias'] = torch.randn(inter[i])
        sd[f'mask_head.gn{i + 1}.weight'] = torch.randn(inter[i])
        sd[f'mask_head.gn{i + 1}.bias'] = torch.randn(inter[i])
    sd['mask_head.out_lay.weight'] = torch.randn(1, inter[4], 3, 3)
    sd['mask_head.out_lay.bias'] = torch.randn(1)
    for i in range(3):
        sd[f'mask_head.adapter{i + 1}.weight'] = torch.randn(
            inter[i + 1], FPN[i], 1, 1)
        sd[f'mask_head.adapter{i + 1}.bias'] = torch.randn(inter[i + 1])
    return sd


@pytest.fixture(scope='module')
def reference_sd():
    ref = _load_module('updetr_reference_pan', 'tests', 'reference',
                       'updetr_reference.py')
    torch.manual_seed(0)
    model, _ = ref.build_reference(
        num_queries=6,
        num_patches=3,
        hidden_dim=DIM,
        nheads=HEADS,
        enc_layers=1,
        dec_layers=1,
        dim_feedforward=2 * DIM)
    sd = {
        f'detr.{k}': v
        for k, v in model.state_dict().items()
        if not k.startswith(('patch2query', 'feature_align', 'class_embed'))
    }
    sd['detr.class_embed.weight'] = torch.randn(251, DIM)
    sd['detr.class_embed.bias'] = torch.arange(251.)
    sd.update(_mask_branch_state_dict())
    return sd


def _our_model():
    cfg = get_tiny_cfg('updetr/detr_panoptic_mask_coco_25e.py', num_queries=6)
    tiny_panoptic_model_cfg(cfg.model, 80, 53)
    return MODELS.build(cfg.model)


def test_convert_loads_strictly_with_class_rows(reference_sd):
    converted = convert_panoptic_state_dict(reference_sd)
    num_bn = sum(k.endswith('running_var') for k in reference_sd)
    assert len(converted) == len(reference_sd) + num_bn  # all consumed
    model = _our_model()
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    ids = list(COCO_PANOPTIC_CATEGORY_IDS)
    assert ids[79] == 90 and ids[80] == 92 and ids[-1] == 200
    torch.testing.assert_close(ours['bbox_head.fc_cls.bias'],
                               torch.tensor(ids + [250.]))
    torch.testing.assert_close(
        ours['bbox_head.fc_cls.weight'],
        reference_sd['detr.class_embed.weight'][ids + [250]])
    for ref_key, our_key in (
        ('mask_head.adapter2.weight', 'bbox_head.mask_head.adapter2.weight'),
        ('mask_head.gn5.bias', 'bbox_head.mask_head.gn5.bias'),
        ('bbox_attention.k_linear.weight',
         'bbox_head.bbox_attention.k_linear.weight'),
        ('detr.query_embed.weight', 'query_embedding.weight'),
        ('detr.backbone.0.body.layer2.0.conv1.weight',
         'backbone.layer2.0.conv1.weight'),
    ):
        assert torch.equal(ours[our_key], reference_sd[ref_key]), our_key


def test_unknown_keys_are_named(reference_sd):
    with pytest.raises(KeyError, match='mask_head.lay9.weight'):
        convert_panoptic_state_dict(
            dict(reference_sd, **{'mask_head.lay9.weight': torch.zeros(1)}))


def test_tool_writes_a_loadable_checkpoint(reference_sd, tmp_path, capsys):
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=reference_sd, epoch=24), src)
    sys.path.insert(0, str(REPO / 'tools' / 'model_converters'))
    try:
        tool = _load_module('panoptic_to_mmdet', 'tools', 'model_converters',
                            'panoptic_to_mmdet.py')
    finally:
        sys.path.pop(0)
    tool.convert(str(src), str(dst))
    assert 'pre-norm' in capsys.readouterr().out
    checkpoint = torch.load(dst, map_location='cpu')
    assert checkpoint['meta']['pre_norm'] is True
    _our_model().load_state_dict(checkpoint['state_dict'], strict=True)
    # A detector checkpoint (no mask head) is refused with a hint.
    detector = {k: v for k, v in reference_sd.items() if k.startswith('detr')}
    torch.save(dict(model=detector), src)
    with pytest.raises(SystemExit, match='detr_to_mmdet'):
        tool.convert(str(src), str(dst))
