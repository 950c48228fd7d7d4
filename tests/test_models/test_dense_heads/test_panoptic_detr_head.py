"""Tests of ``PanopticDETRHead``'s mask losses and class weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmdet_updetr.models.dense_heads import PanopticDETRHead


def _head():
    return PanopticDETRHead(
        num_classes=4,
        embed_dims=32,
        num_heads=2,
        fpn_channels=(16, 8, 8),
        mask_norm_cfg=dict(type='GN', num_groups=2))


def _reference_losses(src, tgt, num_boxes):
    """DETR's sigmoid_focal_loss and dice_loss (models/segmentation.py)."""
    prob = src.sigmoid()
    ce = F.binary_cross_entropy_with_logits(src, tgt, reduction='none')
    p_t = prob * tgt + (1 - prob) * (1 - tgt)
    focal = ce * (1 - p_t)**2 * (0.25 * tgt + 0.75 * (1 - tgt))
    focal = focal.mean(1).sum() / num_boxes
    numerator = 2 * (prob * tgt).sum(1)
    dice = 1 - (numerator + 1) / (prob.sum(1) + tgt.sum(1) + 1)
    return focal, dice.sum() / num_boxes


def test_class_weight_has_no_object_weight():
    head = _head()
    assert head.loss_cls.class_weight == [1.0] * 4 + [0.1]
    assert head.bg_cls_weight == 0.1


def test_attention_maps_are_per_head_unless_told():
    """The UP-DETR reference's per-head softmax by default; the joint one
    (facebookresearch/detr's checkpoints) on request."""
    assert _head().bbox_attention.softmax_per_head
    joint = PanopticDETRHead(
        num_classes=4,
        embed_dims=32,
        num_heads=2,
        fpn_channels=(16, 8, 8),
        softmax_per_head=False,
        mask_norm_cfg=dict(type='GN', num_groups=2))
    assert not joint.bbox_attention.softmax_per_head


def test_mask_losses_match_the_reference():
    head = _head()
    rng = np.random.RandomState(0)
    # Image 2 has no segment: it adds nothing, nor to the normaliser.
    metas = [
        dict(img_shape=(12, 10), batch_input_shape=(12, 16)),
        dict(img_shape=(8, 16), batch_input_shape=(12, 16)),
        dict(img_shape=(10, 12), batch_input_shape=(12, 16))
    ]
    gts = []
    for meta, num in zip(metas, (2, 1, 0)):
        h, w = meta['img_shape']
        masks = rng.rand(num, h, w) > 0.5
        gts.append(
            InstanceData(
                bboxes=torch.tensor([[0., 0., 5., 5.], [2., 2., 8.,
                                                        7.]])[:num],
                labels=torch.tensor([0, 3])[:num],
                masks=BitmapMasks(masks.astype(np.uint8), h, w)))
    mask_preds = torch.randn(3, 5, 3, 4)
    cls_scores, bbox_preds = torch.randn(3, 5, 5), torch.rand(3, 5, 4)
    losses = head.loss_mask_by_feat(mask_preds, cls_scores, bbox_preds, gts,
                                    metas)
    srcs, tgts = [], []
    for i, (gt, meta) in enumerate(zip(gts, metas)):
        pos, gt_inds = head._match_single(cls_scores[i], bbox_preds[i], gt,
                                          meta)
        assert len(pos) == len(gt)  # every segment matched
        h, w = meta['img_shape']
        for q, g in zip(pos.tolist(), gt_inds.tolist()):
            src = F.interpolate(
                mask_preds[i, q][None, None], (12, 16),
                mode='bilinear',
                align_corners=False)[0, 0]
            tgt = torch.zeros(12, 16)
            tgt[:h, :w] = torch.from_numpy(gt.masks.masks[g]).float()
            srcs.append(src.flatten())
            tgts.append(tgt.flatten())
    focal, dice = _reference_losses(
        torch.stack(srcs), torch.stack(tgts), num_boxes=3)
    torch.testing.assert_close(losses['loss_mask'], focal)
    torch.testing.assert_close(losses['loss_dice'], dice)


def test_missing_masks_say_what_to_do():
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 5., 5.]]), labels=torch.tensor([0]))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    with pytest.raises(KeyError, match='PanopticStuffToInstances'):
        head.loss_mask_by_feat(
            torch.randn(1, 5, 2, 2), torch.randn(1, 5, 5), torch.rand(1, 5, 4),
            [gt], [meta])


def test_labels_beyond_num_classes_are_refused():
    # Label 4 = num_classes would otherwise train as "no object".
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 5., 5.]]),
        labels=torch.tensor([4]),
        masks=BitmapMasks(np.ones((1, 8, 8), np.uint8), 8, 8))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    with pytest.raises(ValueError, match='bbox_head.num_classes is 4'):
        head.loss_mask_by_feat(
            torch.randn(1, 5, 2, 2), torch.randn(1, 5, 5), torch.rand(1, 5, 4),
            [gt], [meta])


def test_batch_without_segments_gives_zero_mask_losses():
    head = _head()
    gt = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        masks=BitmapMasks(np.zeros((0, 8, 8), np.uint8), 8, 8))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    mask_preds = torch.randn(1, 5, 2, 2, requires_grad=True)
    losses = head.loss_mask_by_feat(mask_preds, torch.randn(1, 5, 5),
                                    torch.rand(1, 5, 4), [gt], [meta])
    assert losses['loss_mask'].item() == losses['loss_dice'].item() == 0
    (losses['loss_mask'] + losses['loss_dice']).backward()
    assert torch.all(mask_preds.grad == 0)
