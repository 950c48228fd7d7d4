"""Tests of ``PanopticDETRHead``'s mask losses and class weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
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


def _assign(head, cls_score, bbox_pred, gt, meta):
    """The Hungarian assignment of one image, run here by hand: the matched
    query indices and, for each, the index of its ground truth."""
    h, w = meta['img_shape']
    pred = InstanceData(
        scores=cls_score,
        bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * torch.tensor([w, h, w, h]))
    gt_inds = head.assigner.assign(pred, gt, img_meta=meta).gt_inds
    pos = torch.nonzero(gt_inds > 0).squeeze(-1)
    return pos, gt_inds[pos] - 1


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


def _assert_reference_mask_losses(losses, mask_preds, matches, gts, metas,
                                  num_boxes):
    """``loss_mask`` and ``loss_dice`` as the reference computes them from
    the (image, query, ground truth) ``matches``: predictions upsampled to
    the padded size, masks zero-padded to it."""
    pad_h, pad_w = metas[0]['batch_input_shape']
    srcs, tgts = [], []
    for i, q, g in matches:
        src = F.interpolate(
            mask_preds[i, q][None, None], (pad_h, pad_w),
            mode='bilinear',
            align_corners=False)[0, 0]
        h, w = metas[i]['img_shape']
        tgt = torch.zeros(pad_h, pad_w)
        tgt[:h, :w] = torch.from_numpy(gts[i].masks.masks[g]).float()
        srcs.append(src.flatten())
        tgts.append(tgt.flatten())
    focal, dice = _reference_losses(
        torch.stack(srcs), torch.stack(tgts), num_boxes=num_boxes)
    torch.testing.assert_close(losses['loss_mask'], focal)
    torch.testing.assert_close(losses['loss_dice'], dice)


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
    losses = head.loss_by_feat(cls_scores[None], bbox_preds[None], mask_preds,
                               gts, metas)
    matches = []
    for i, (gt, meta) in enumerate(zip(gts, metas)):
        pos, gt_inds = _assign(head, cls_scores[i], bbox_preds[i], gt, meta)
        assert len(pos) == len(gt)  # every segment matched
        matches += [(i, q, g) for q, g in zip(pos.tolist(), gt_inds.tolist())]
    _assert_reference_mask_losses(losses, mask_preds, matches, gts, metas, 3)


def test_missing_masks_say_what_to_do():
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 5., 5.]]), labels=torch.tensor([0]))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    with pytest.raises(KeyError, match='PanopticStuffToInstances'):
        head.loss_by_feat(
            torch.randn(1, 1, 5, 5), torch.rand(1, 1, 5, 4),
            torch.randn(1, 5, 2, 2), [gt], [meta])


def test_labels_beyond_num_classes_are_refused():
    # Label 4 = num_classes would otherwise train as "no object".
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 5., 5.]]),
        labels=torch.tensor([4]),
        masks=BitmapMasks(np.ones((1, 8, 8), np.uint8), 8, 8))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    with pytest.raises(ValueError, match='bbox_head.num_classes is 4'):
        head.loss_by_feat(
            torch.randn(1, 1, 5, 5), torch.rand(1, 1, 5, 4),
            torch.randn(1, 5, 2, 2), [gt], [meta])


def test_batch_without_segments_gives_zero_mask_losses():
    head = _head()
    gt = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        masks=BitmapMasks(np.zeros((0, 8, 8), np.uint8), 8, 8))
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    mask_preds = torch.randn(1, 5, 2, 2, requires_grad=True)
    losses = head.loss_by_feat(
        torch.randn(1, 1, 5, 5), torch.rand(1, 1, 5, 4), mask_preds, [gt],
        [meta])
    assert losses['loss_mask'].item() == losses['loss_dice'].item() == 0
    (losses['loss_mask'] + losses['loss_dice']).backward()
    assert torch.all(mask_preds.grad == 0)


def _random_masks(rng, num, h, w):
    return BitmapMasks((rng.rand(num, h, w) > 0.5).astype(np.uint8), h, w)


def _two_layer_case():
    """Two images of 16 x 16, 4 queries, 2 decoder layers whose queries sit
    exactly on the boxes: the last layer's queries 0, 1 (image 0) and 3
    (image 1), the first layer's queries 2, 3 and 1."""
    rng = np.random.RandomState(0)
    metas = [dict(img_shape=(16, 16), batch_input_shape=(16, 16))] * 2
    gts = [
        InstanceData(
            bboxes=torch.tensor([[0., 0., 8., 8.], [8., 8., 16., 16.]]),
            labels=torch.tensor([0, 3]),
            masks=_random_masks(rng, 2, 16, 16)),
        InstanceData(
            bboxes=torch.tensor([[4., 4., 12., 12.]]),
            labels=torch.tensor([1]),
            masks=_random_masks(rng, 1, 16, 16))
    ]
    far = [[0.05, 0.95, 0.1, 0.1], [0.95, 0.05, 0.1, 0.1]]
    on = [[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
    bbox_preds = torch.tensor([
        [far + on[:2], [far[0], on[2], far[1], far[0]]],
        [on[:2] + far, far + [far[0], on[2]]],
    ])
    return torch.zeros(2, 2, 4, 5), bbox_preds, gts, metas


def test_mask_loss_uses_the_box_losses_assignment(monkeypatch):
    head = _head()
    cls_scores, bbox_preds, gts, metas = _two_layer_case()
    results = []
    assign = head.assigner.assign

    def counted_assign(*args, **kwargs):
        result = assign(*args, **kwargs)
        results.append(result.gt_inds - 1)
        return result

    monkeypatch.setattr(head.assigner, 'assign', counted_assign)
    mask_preds = torch.randn(2, 4, 4, 4)
    losses = head.loss_by_feat(cls_scores, bbox_preds, mask_preds, gts, metas)
    # Once per layer and image, for the box losses; none for the masks.
    assert [r.tolist() for r in results] == [[-1, -1, 0, 1], [-1, 0, -1, -1],
                                             [0, 1, -1, -1], [-1, -1, -1, 0]]
    # The last layer's (image, query, ground truth), not the first's.
    matches = [(0, 0, 0), (0, 1, 1), (1, 3, 0)]
    _assert_reference_mask_losses(losses, mask_preds, matches, gts, metas, 3)


def test_loss_leaves_no_state_on_the_head():
    head = _head()
    cls_scores, bbox_preds, gts, metas = _two_layer_case()
    attributes = dict(vars(head))
    head.loss_by_feat(cls_scores, bbox_preds, torch.randn(2, 4, 4, 4), gts,
                      metas)
    assert vars(head).keys() == attributes.keys()
    for name, value in attributes.items():
        assert vars(head)[name] is value, name
