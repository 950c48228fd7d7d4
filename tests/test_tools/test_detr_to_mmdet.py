"""Tests of ``tools/model_converters/detr_to_mmdet.py``.

Tiny reference detectors (``tests/reference/detr_reference.py``: ResNet-18,
2 + 2 layers of width 32, N = 6, the reference's 92-way COCO classifier),
pre-norm as the UP-DETR fine-tuned model and post-norm as
facebookresearch/detr, give reference-format state dicts. The converter must
consume all of each, keep the classifier rows of mmdet's 80 COCO classes
(by category id) and no object, and the converted weights, loaded strictly
into our fine-tuning model (and, post-norm, into mmdet's own DETR), must give
the reference's logits, boxes and detections on a padded batch.
"""
import sys
from pathlib import Path

import mmdet
import pytest
import torch
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config

from mmdet_updetr.testing import get_config_path, tiny_model_cfg
from tests.reference import randomize_1d_
from tests.reference import updetr_reference as ref
from tests.reference.detr_reference import build_reference_detr, post_process
from tools.model_converters import (COCO_CATEGORY_IDS, coco_class_rows,
                                    convert_reference_state_dict,
                                    detr_to_mmdet, updetr_to_mmdet)

NUM_QUERIES, EMBED_DIMS, NUM_LAYERS = 6, 32, 2
IMG_SHAPES = ((160, 224), (192, 160))  # (h, w), padded to (192, 224)
ATOL = 1e-5
#: COCO category ids that name no class: their reference rows are dropped.
UNUSED_IDS = sorted(set(range(1, 91)) - set(COCO_CATEGORY_IDS))


def _reference(pre_norm: bool) -> torch.nn.Module:
    """A randomised tiny reference detector in eval mode.

    Every 1-D tensor gets distinct values (so a swapped norm or bias shows
    up), and the classifier rows of unused category ids get a -1e4 bias, as
    training on COCO drives them: their softmax mass is then 0, and the
    reference's 92-way and our 81-way probabilities agree.
    """
    torch.manual_seed(0)
    model = build_reference_detr(
        num_classes=91,
        num_queries=NUM_QUERIES,
        hidden_dim=EMBED_DIMS,
        nheads=2,
        enc_layers=NUM_LAYERS,
        dec_layers=NUM_LAYERS,
        dim_feedforward=2 * EMBED_DIMS,
        dropout=0.,
        pre_norm=pre_norm)
    randomize_1d_(model)
    with torch.no_grad():
        model.class_embed.bias[[0] + UNUSED_IDS] = -1e4
    return model.eval()


@pytest.fixture(scope='module', params=[True, False], ids=['pre', 'post'])
def reference(request):
    return request.param, _reference(request.param)


def _tiny(model_cfg, pre_norm: bool):
    """Shrink a model config to the reference's size, without dropout."""
    cfg = tiny_model_cfg(
        model_cfg,
        embed_dims=EMBED_DIMS,
        num_layers=NUM_LAYERS,
        num_queries=NUM_QUERIES)
    for coder in (cfg.encoder, cfg.decoder):
        if 'normalize_before' in coder:
            coder.normalize_before = pre_norm
        for key, sub in coder.layer_cfg.items():
            sub['dropout' if key.endswith('attn_cfg') else 'ffn_drop'] = 0.
    return cfg


def _ours(pre_norm: bool):
    cfg = Config.fromfile(get_config_path('_base_/models/prenorm_detr_r50.py'))
    return _tiny(cfg.model, pre_norm)


def _mmdet_detr():
    cfg = Config.fromfile(
        str(
            Path(mmdet.__file__).parent / '.mim' / 'configs' / 'detr' /
            'detr_r50_8xb2-150e_coco.py'))
    return _tiny(cfg.model, False)


def _build_loaded(model_cfg, state_dict):
    model = MODELS.build(model_cfg)
    # strict: nothing of ours uninitialised, nothing of the source left.
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@pytest.fixture(scope='module')
def inputs():
    torch.manual_seed(1)
    images = [torch.randn(3, h, w) for h, w in IMG_SHAPES]
    samples = ref.nested_tensor_from_tensor_list(images)
    pad_shape = tuple(samples.tensors.shape[-2:])
    data_samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=shape,
                ori_shape=shape,
                pad_shape=pad_shape,
                batch_input_shape=pad_shape,
                scale_factor=(1., 1.))) for shape in IMG_SHAPES
    ]
    return samples, data_samples


def test_coco_category_ids_follow_mmdet_class_order():
    classes = CocoDataset.METAINFO['classes']
    assert len(COCO_CATEGORY_IDS) == len(classes) == 80
    assert list(COCO_CATEGORY_IDS) == sorted(set(COCO_CATEGORY_IDS))
    # A few ids from instances_val2017.json's categories.
    for name, cat_id in [('person', 1), ('stop sign', 13), ('backpack', 27),
                         ('dining table', 67), ('tv', 72), ('toothbrush', 90)]:
        assert COCO_CATEGORY_IDS[classes.index(name)] == cat_id
    assert coco_class_rows()[-1] == 91


def test_converter_consumes_every_key(reference):
    pre_norm, model = reference
    src = model.state_dict()
    converted = convert_reference_state_dict(
        src, pretext=False, class_rows=coco_class_rows())
    num_bn = sum(k.endswith('running_var') for k in src)
    assert len(converted) == len(src) + num_bn
    assert ('encoder.post_norm.weight' in converted) == pre_norm
    weight, bias = src['class_embed.weight'], src['class_embed.bias']
    fc_w = converted['bbox_head.fc_cls.weight']
    fc_b = converted['bbox_head.fc_cls.bias']
    assert fc_w.shape == (81, EMBED_DIMS)
    # ours 0 person = id 1, 11 stop sign = id 13, 79 toothbrush = id 90,
    # 80 background = no object (91).
    for ours, theirs in [(0, 1), (11, 13), (60, 67), (79, 90), (80, 91)]:
        assert fc_w[ours].equal(weight[theirs])
        assert fc_b[ours].equal(bias[theirs])


def _our_outputs(model, samples, data_samples):
    with torch.no_grad():
        feats = model.extract_feat(samples.tensors)
        head_inputs = model.forward_transformer(feats, data_samples)
        cls, boxes = model.bbox_head(head_inputs['hidden_states'])
        results = model.predict(samples.tensors, data_samples, rescale=True)
    return cls, boxes, results


def _check_same_as_reference(model, reference, inputs):
    samples, data_samples = inputs
    with torch.no_grad():
        out = reference(samples)
    layers = out['aux_outputs'] + [out]
    ref_logits = torch.stack([layer['pred_logits'] for layer in layers])
    ref_boxes = torch.stack([layer['pred_boxes'] for layer in layers])
    cls, boxes, results = _our_outputs(model, samples, data_samples)
    assert cls.shape == (NUM_LAYERS, len(IMG_SHAPES), NUM_QUERIES, 81)
    torch.testing.assert_close(
        cls, ref_logits[..., coco_class_rows()], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(boxes, ref_boxes, atol=ATOL, rtol=1e-5)
    detections = post_process(out, torch.tensor(IMG_SHAPES))
    for (h, w), ref_det, result in zip(IMG_SHAPES, detections, results):
        pred = result.pred_instances
        order = ref_det['scores'].argsort(descending=True)
        ref_xyxy = ref_det['boxes'][order]
        # The reference does not clip; mmdet's head does.
        ref_xyxy[:, 0::2] = ref_xyxy[:, 0::2].clamp(0, w)
        ref_xyxy[:, 1::2] = ref_xyxy[:, 1::2].clamp(0, h)
        torch.testing.assert_close(
            pred.scores, ref_det['scores'][order], atol=ATOL, rtol=1e-5)
        assert [COCO_CATEGORY_IDS[i] for i in pred.labels] == \
            ref_det['labels'][order].tolist()
        torch.testing.assert_close(pred.bboxes, ref_xyxy, atol=1e-4, rtol=0)


def test_ours_gives_reference_detections(reference, inputs):
    pre_norm, model = reference
    converted = convert_reference_state_dict(
        model.state_dict(), pretext=False, class_rows=coco_class_rows())
    ours = _build_loaded(_ours(pre_norm), converted)
    _check_same_as_reference(ours, model, inputs)


def test_mmdet_detr_gives_post_norm_reference_detections(inputs):
    model = _reference(pre_norm=False)
    converted = convert_reference_state_dict(
        model.state_dict(), pretext=False, class_rows=coco_class_rows())
    detr = _build_loaded(_mmdet_detr(), converted)
    assert type(detr).__name__ == 'DETR'
    _check_same_as_reference(detr, model, inputs)


def test_tool_converts_and_detects_the_kind(reference, tmp_path, capsys,
                                            monkeypatch):
    pre_norm, model = reference
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=model.state_dict(), epoch=299), src)
    monkeypatch.setattr(sys, 'argv', ['detr_to_mmdet.py', str(src), str(dst)])
    detr_to_mmdet.main()
    out = capsys.readouterr().out
    assert ('pre-norm' if pre_norm else 'post-norm') in out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['normalize_before'] is pre_norm
    expected = convert_reference_state_dict(
        model.state_dict(), pretext=False, class_rows=coco_class_rows())
    assert set(saved['state_dict']) == set(expected)
    assert saved['state_dict']['bbox_head.fc_cls.bias'].equal(
        expected['bbox_head.fc_cls.bias'])


def test_tool_refuses_pretraining_and_non_coco_checkpoints(tmp_path):
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    pretrain, _ = ref.build_reference(
        num_queries=4,
        num_patches=2,
        hidden_dim=16,
        nheads=2,
        enc_layers=1,
        dec_layers=1,
        dim_feedforward=16)
    torch.save(dict(model=pretrain.state_dict()), src)
    with pytest.raises(SystemExit, match='updetr_to_mmdet.py'):
        detr_to_mmdet.convert(str(src), str(dst))
    voc = build_reference_detr(
        num_classes=20,
        num_queries=4,
        hidden_dim=16,
        nheads=2,
        enc_layers=1,
        dec_layers=1,
        dim_feedforward=16)
    torch.save(dict(model=voc.state_dict()), src)
    with pytest.raises(SystemExit, match=r'\(21, 16\).*92 outputs'):
        detr_to_mmdet.convert(str(src), str(dst))
    assert not dst.exists()


def test_pretraining_tool_refuses_a_detector(tmp_path):
    """``updetr_to_mmdet.py`` given a COCO detector points to this tool
    (else it would keep classifier rows 1 and 2, person and bicycle, as a
    2-way patch classifier)."""
    src, dst = tmp_path / 'detr.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=_reference(pre_norm=True).state_dict()), src)
    with pytest.raises(
            SystemExit,
            match=r'no patch2query \(class_embed.weight: \(92, 32\)\).*'
            'detr_to_mmdet.py'):
        updetr_to_mmdet.convert(str(src), str(dst))
    assert not dst.exists()
