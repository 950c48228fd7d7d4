"""``MatchedDETRHead`` gives DETR's targets and losses plus the assignment."""
import pytest
import torch
from mmdet.models.dense_heads import DETRHead
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData

from mmdet_updetr.models.dense_heads import MatchedDETRHead

METAS = [dict(img_shape=(40, 60)), dict(img_shape=(50, 30))]


def _gts():
    # Image 0: three objects; image 1: none.
    return [
        InstanceData(
            bboxes=torch.tensor([[2., 3., 30., 20.], [10., 10., 50., 38.],
                                 [2., 3., 30., 20.]]),
            labels=torch.tensor([2, 0, 1])),
        InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    ]


def _heads():
    """Ours and mmdet's DETRHead, each given a fresh ``loss_cls`` (DETRHead
    changes its default one in place)."""
    heads = []
    for head_type in (MatchedDETRHead, DETRHead):
        loss_cls = dict(
            type='CrossEntropyLoss',
            bg_cls_weight=0.1,
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=1.0)
        heads.append(head_type(num_classes=3, embed_dims=8, loss_cls=loss_cls))
    return heads


def _assign(head, cls_score, bbox_pred, gt, meta):
    """The assigner run by hand: each query's ground truth, -1 if none."""
    h, w = meta['img_shape']
    pred = InstanceData(
        scores=cls_score,
        bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * torch.tensor([w, h, w, h]))
    return head.assigner.assign(pred, gt, img_meta=meta).gt_inds - 1


def test_no_object_weight_as_detr_head_builds_for_itself():
    head, detr = _heads()
    assert head.loss_cls.class_weight == [1.0, 1.0, 1.0, 0.1]
    torch.testing.assert_close(
        torch.tensor(head.loss_cls.class_weight), detr.loss_cls.class_weight)
    assert head.bg_cls_weight == detr.bg_cls_weight == 0.1


def test_targets_are_detr_heads_plus_the_assignment():
    head, detr = _heads()
    cls_scores, bbox_preds = torch.randn(2, 5, 4), torch.rand(2, 5, 4)
    targets = head.get_targets(
        list(cls_scores), list(bbox_preds), _gts(), METAS)
    expected = detr.get_targets(
        list(cls_scores), list(bbox_preds), _gts(), METAS)
    assert len(targets) == 7
    for ours, theirs in zip(targets[:4], expected[:4]):
        for a, b in zip(ours, theirs):
            assert a.dtype == b.dtype
            assert torch.equal(a, b)
    assert targets[4:6] == expected[4:6] == (3, 7)
    assigned = targets[6]
    for i, (gt, meta) in enumerate(zip(_gts(), METAS)):
        by_hand = _assign(head, cls_scores[i], bbox_preds[i], gt, meta)
        assert torch.equal(assigned[i], by_hand)
    # Every object of image 0 is matched once; image 1 matches nothing.
    assert sorted(assigned[0][assigned[0] >= 0].tolist()) == [0, 1, 2]
    assert assigned[1].tolist() == [-1] * 5


# DETRHead's own class weight is a tensor that its loss copies.
@pytest.mark.filterwarnings('ignore:To copy construct from a tensor')
def test_losses_equal_detr_heads():
    head, detr = _heads()
    detr.load_state_dict(head.state_dict())
    hidden = torch.randn(3, 2, 5, 8)
    losses = head.loss_by_feat(*head(hidden), _gts(), METAS)
    expected = detr.loss_by_feat(*detr(hidden), _gts(), METAS)
    # Same keys in the same order (the total loss sums them in order).
    assert list(losses) == list(expected)
    for key, value in expected.items():
        assert torch.equal(losses[key], value), key


def test_assignment_and_avg_factor_per_layer():
    head, _ = _heads()
    cls_scores, bbox_preds = torch.randn(2, 2, 5, 4), torch.rand(2, 2, 5, 4)
    _, layers_assigned, layers_avg_factor = head.loss_and_assignment_by_feat(
        cls_scores, bbox_preds, _gts(), METAS)
    assert layers_avg_factor == [3., 3.]
    for layer in range(2):
        for i, (gt, meta) in enumerate(zip(_gts(), METAS)):
            by_hand = _assign(head, cls_scores[layer, i], bbox_preds[layer, i],
                              gt, meta)
            assert torch.equal(layers_assigned[layer][i], by_hand)


def test_quality_focal_loss_is_refused():
    with pytest.raises(TypeError, match='does not take QualityFocalLoss'):
        MatchedDETRHead(
            num_classes=3,
            embed_dims=8,
            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True))
