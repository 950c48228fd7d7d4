"""Tests of ``UPDETRPanoptic``: shapes on padded batches, padding ignored
by the attention maps, the frozen mask stage, panoptic predictions."""
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmdet_updetr.testing import get_tiny_cfg, tiny_panoptic_model_cfg

CONFIG = 'updetr/detr_panoptic_mask_coco_25e.py'
SHAPES = ((64, 96), (96, 64))  # padded to (96, 96)
NUM_QUERIES = 10


def _model(**kwargs):
    cfg = get_tiny_cfg(CONFIG, num_queries=NUM_QUERIES)
    tiny_panoptic_model_cfg(cfg.model)
    cfg.model.update(kwargs)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(model, with_gt=True):
    inputs, samples = [], []
    for h, w in SHAPES:
        inputs.append(torch.randint(0, 255, (3, h, w), dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        if with_gt:
            masks = np.zeros((2, h, w), np.uint8)
            masks[0, 5:30, 10:40] = 1
            masks[1] = 1 - masks[0]
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor([[10., 5., 40., 30.], [0., 0., w, h]]),
                labels=torch.tensor([0, 3]),
                masks=BitmapMasks(masks, h, w))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), False)
    return data['inputs'], data['data_samples']


def test_shapes_and_padding_on_padded_batch():
    model = _model().eval()
    inputs, samples = _batch(model, with_gt=False)
    assert inputs.shape == (2, 3, 96, 96)
    maps = []
    model.bbox_head.bbox_attention.register_forward_hook(
        lambda module, args, out: maps.append(out))
    with torch.no_grad():
        cls_scores, bbox_preds, mask_preds = model._forward(inputs, samples)
    assert mask_preds.shape == (2, NUM_QUERIES, 96 // 4, 96 // 4)
    assert cls_scores.shape == (1, 2, NUM_QUERIES, 5)  # 1 decoder layer
    attn, = maps
    assert attn.shape == (2, NUM_QUERIES, 2, 3, 3)
    # Image 0 (64 x 96) has a padded last row at stride 32, image 1
    # (96 x 64) a padded last column: exactly no attention there.
    assert torch.all(attn[0, :, :, 2] == 0)
    assert torch.all(attn[1, :, :, :, 2] == 0)
    assert torch.all(attn[0, :, :, :2] > 0)
    assert torch.all(attn[1, :, :, :, :2] > 0)


def test_frozen_detector_step_changes_only_mask_head():
    # norm_eval=False: only the frozen detector keeps the BNs in eval mode.
    model = _model(
        freeze_detector=True, backbone=dict(norm_eval=False, frozen_stages=-1))
    model.train()
    assert not any(m.training for m in model.backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    inputs, samples = _batch(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = model.loss(inputs, samples)
    assert {'loss_mask', 'loss_dice', 'loss_cls'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    optimizer.step()
    mask_prefixes = ('bbox_head.bbox_attention.', 'bbox_head.mask_head.')
    changed = {
        k
        for k, v in model.state_dict().items()
        if not torch.equal(v, before[k])
    }
    assert changed, 'the mask head did not train'
    assert all(k.startswith(mask_prefixes) for k in changed), sorted(
        k for k in changed if not k.startswith(mask_prefixes))
    assert any('running_mean' in k for k in before)  # BN buffers compared
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(mask_prefixes) for n in trainable)


def test_predict_gives_panoptic_and_boxes():
    model = _model()
    # Keep every query: no threshold, and no query says "no object".
    model.panoptic_fusion_head.object_mask_thr = 0.
    model.bbox_head.fc_cls.bias.data[-1] = -100.
    model.eval()
    inputs, samples = _batch(model, with_gt=False)
    # The network saw the originals at half size: results at the original.
    for sample, (h, w) in zip(samples, SHAPES):
        sample.set_metainfo(
            dict(ori_shape=(2 * h, 2 * w), scale_factor=(0.5, 0.5)))
    with torch.no_grad():  # predict fills the samples in place
        unscaled = [s.clone() for s in samples]
        results = model.predict(inputs, samples)
        unscaled = model.predict(inputs, unscaled, rescale=False)
    for result, unscaled, (h, w) in zip(results, unscaled, SHAPES):
        pan = result.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, 2 * h, 2 * w)
        assert unscaled.pred_panoptic_seg.sem_seg.shape == (1, h, w)
        labels = pan % 1000
        assert torch.all((labels >= 0) & (labels <= 4))
        assert len(result.pred_instances.bboxes) == NUM_QUERIES
        torch.testing.assert_close(result.pred_instances.bboxes,
                                   2 * unscaled.pred_instances.bboxes)
        areas = [s['area'] for s in result.pred_panoptic_seg.segments_info]
        assert sum(areas) == 4 * h * w
        ids = sorted(s['id'] for s in result.pred_panoptic_seg.segments_info)
        assert ids == sorted(pan.unique().tolist())


def test_bad_configs_are_refused():
    # A PreNormDETR: no query patches to configure.
    with pytest.raises(TypeError, match='num_patches'):
        _model(num_patches=2)
    with pytest.raises(ValueError, match='make them agree'):
        _model(
            panoptic_fusion_head=dict(
                type='DETRFusionHead',
                num_things_classes=2,
                num_stuff_classes=1))
    with pytest.raises(ValueError, match='out_indices'):
        model = _model(backbone=dict(out_indices=(3, )))
        model._forward(*_batch(model, with_gt=False))
