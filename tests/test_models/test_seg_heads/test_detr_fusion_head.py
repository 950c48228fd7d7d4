"""Tests of ``DETRFusionHead`` (DETR's panoptic post-processing)."""
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET as OFF
from mmdet.structures import DetDataSample

from mmdet_updetr.models.seg_heads import DETRFusionHead

# 2 things (0 ball, 1 box) + 2 stuff (2 sky, 3 grass); column 4: no object.
HIGH, NEG = 10., -10.


def _head(min_area=1):
    return DETRFusionHead(
        num_things_classes=2,
        num_stuff_classes=2,
        test_cfg=dict(object_mask_thr=0.85, min_area=min_area))


def _logits(label, value=HIGH):
    row = torch.zeros(5)
    row[label] = value
    return row


def test_panoptic_postprocess_hand_made():
    cls_score = torch.stack([
        _logits(0),  # q0 ball, top-left
        _logits(0),  # q1 ball, top-right: a second instance
        _logits(3),  # q2 grass, bottom-left
        _logits(3),  # q3 grass, bottom-right: merged with q2
        _logits(1, 2.),  # q4 box, score e^2/(e^2+4)=0.65: dropped
        _logits(4),  # q5 no object: dropped
        _logits(1),  # q6 box, wins one pixel only: too small, dropped
    ])
    masks = torch.full((7, 4, 6), NEG)
    masks[0, :2, :3] = 5
    masks[1, :2, 3:] = 5
    masks[2, 2:, :3] = 5
    masks[3, 2:, 3:] = 5
    masks[4] = masks[5] = 10  # would win everywhere if kept
    masks[6, 0, 0] = 8
    result = _head(min_area=1).panoptic_postprocess(cls_score, masks)
    expected = np.array([[OFF, OFF, OFF, 2 * OFF, 2 * OFF, 2 * OFF],
                         [OFF, OFF, OFF, 2 * OFF, 2 * OFF, 2 * OFF],
                         [3, 3, 3, 3, 3, 3], [3, 3, 3, 3, 3, 3]])
    assert result.sem_seg.dtype == torch.int32
    np.testing.assert_array_equal(result.sem_seg[0].numpy(), expected)
    assert result.segments_info == [
        dict(id=OFF, label=0, isthing=True, area=6),
        dict(id=2 * OFF, label=0, isthing=True, area=6),
        dict(id=3, label=3, isthing=False, area=12),
    ]
    # With min_area=0 the one-pixel box stays, as instance 3.
    result = _head(min_area=0).panoptic_postprocess(cls_score, masks)
    assert result.sem_seg[0, 0, 0] == 1 + 3 * OFF
    assert result.sem_seg[0, 0, 1] == OFF


def test_nothing_kept_is_void():
    cls_score = torch.stack([_logits(4), _logits(0, 1.)])
    result = _head().panoptic_postprocess(cls_score, torch.zeros(2, 3, 3))
    assert torch.all(result.sem_seg == 4)
    assert result.segments_info == []


def test_predict_crops_padding_then_rescales():
    # Stride-4 logits of an 8x8 padded batch; the image is 8x4 (left half),
    # its original size 4x2. Query 1 (grass) lies in the padding only.
    masks = torch.full((1, 2, 2, 2), NEG)
    masks[0, 0, :, 0] = 5
    masks[0, 1, :, 1] = 5
    cls_scores = torch.stack([_logits(2), _logits(3)])[None]
    sample = DetDataSample(
        metainfo=dict(
            batch_input_shape=(8, 8), img_shape=(8, 4), ori_shape=(4, 2)))
    result, = _head(min_area=0).predict(cls_scores, masks, [sample])
    pan = result['pan_results'].sem_seg
    assert pan.shape == (1, 4, 2)
    assert torch.all(pan == 2)
    result, = _head().predict(cls_scores, masks, [sample], rescale=False)
    assert result['pan_results'].sem_seg.shape == (1, 8, 4)
