import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData

IMG = dict(img_shape=(100, 100), scale_factor=(1., 1.))


def _head(num_queries=4, num_patches=2, feat_dims=3):
    return MODELS.build(
        dict(
            type='UPDETRHead',
            num_queries=num_queries,
            num_patches=num_patches,
            patch_feat_dims=feat_dims,
            embed_dims=8,
            train_cfg=dict(
                assigner=dict(
                    type='HungarianAssigner',
                    match_costs=[
                        dict(type='ClassificationCost', weight=1.),
                        dict(type='BBoxL1Cost', weight=5., box_format='xywh'),
                        dict(type='IoUCost', iou_mode='giou', weight=2.)
                    ]))))


def _giou(a, b):
    """GIoU of two xyxy boxes, by hand."""
    ix = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (
        max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def _xyxy(cxcywh):
    cx, cy, w, h = (100 * v for v in cxcywh)
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_no_match_weight_is_m_over_n():
    head = _head(num_queries=100, num_patches=20)
    assert head.bg_cls_weight == 0.2
    torch.testing.assert_close(
        torch.as_tensor(head.loss_cls.class_weight), torch.tensor([1., 0.2]))
    assert head.fc_cls.out_features == 2
    assert head.feature_align.layers[-1].out_features == 3


def test_loss_on_hand_built_case():
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[10., 10., 50., 50.], [60., 20., 90., 80.]]),
        labels=torch.zeros(2, dtype=torch.long))
    # Queries 0, 1 look for patch 0; queries 2, 3 for patch 1.
    boxes = [[0.3, 0.3, 0.4, 0.4], [0.72, 0.52, 0.3, 0.5],
             [0.1, 0.9, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1]]
    logits = torch.tensor([[4., -4.], [2., -2.], [-1., 1.], [-3., 3.]])
    feat_preds = torch.tensor([[3., 4., 0.], [0., 0., 2.], [1., 1., 1.],
                               [0., 1., 0.]])
    patch_feats = torch.tensor([[1., 0., 0.], [0., 0., 5.]])
    losses = head.loss_by_feat(
        logits[None, None],
        torch.tensor(boxes)[None, None], [gt], [IMG],
        all_layers_feat_preds=feat_preds[None, None],
        patch_feats=patch_feats[None])
    # Hungarian: query 0 <-> patch 0 (exact box), query 1 <-> patch 1.
    labels = torch.tensor([0, 0, 1, 1])  # 0 = match, 1 = no match
    expected_cls = F.cross_entropy(
        logits, labels, weight=torch.tensor([1., 0.5]))
    l1 = (torch.tensor(boxes[1]) - torch.tensor([0.75, 0.5, 0.3, 0.6])).abs()
    expected_bbox = 5 * l1.sum() / 2
    gious = [
        _giou(_xyxy(boxes[0]), [10, 10, 50, 50]),
        _giou(_xyxy(boxes[1]), [60, 20, 90, 80])
    ]
    expected_iou = 2 * sum(1 - g for g in gious) / 2
    # A matched query reconstructs the patch it was matched to (as the
    # reference indexes the targets by ground truth), not its group's:
    # query 0: (0.6, 0.8, 0) vs patch 0 (1, 0, 0) -> 0.8; query 1, of group
    # 0 but matched to patch 1: (0, 0, 1) vs (0, 0, 1) -> 0 (vs 2 for its
    # group's patch).
    expected_rec = (0.8 + 0.) / 2
    torch.testing.assert_close(losses['loss_cls'], expected_cls)
    torch.testing.assert_close(losses['loss_bbox'], expected_bbox)
    torch.testing.assert_close(losses['loss_iou'],
                               torch.tensor(expected_iou, dtype=torch.float32))
    torch.testing.assert_close(losses['loss_rec'], torch.tensor(expected_rec))


def test_empty_ground_truth():
    head = _head()
    gt = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    hidden = torch.randn(3, 1, 4, 8)
    losses = head.loss(hidden, torch.randn(1, 2, 3), [_sample(gt)])
    assert set(losses) == {
        f'{p}loss_{n}'
        for p in ('', 'd0.', 'd1.')
        for n in ('cls', 'bbox', 'iou', 'rec')
    }
    for prefix in ('', 'd0.', 'd1.'):
        assert losses[f'{prefix}loss_cls'] > 0
        for name in ('bbox', 'iou', 'rec'):
            assert losses[f'{prefix}loss_{name}'].item() == 0


def test_without_reconstruction():
    head = MODELS.build(
        dict(
            type='UPDETRHead',
            num_queries=4,
            num_patches=1,
            embed_dims=8,
            loss_rec=None))
    assert not hasattr(head, 'feature_align')
    gt = InstanceData(
        bboxes=torch.tensor([[10., 10., 50., 50.]]),
        labels=torch.zeros(1, dtype=torch.long))
    losses = head.loss(torch.randn(1, 1, 4, 8), None, [_sample(gt)])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_iou'}


def test_predict_keeps_query_order_and_group_best():
    head = _head().eval()
    cls = torch.tensor([[[0., 1.], [3., 0.], [0., 0.], [-2., 0.]]])
    box = torch.tensor([[[0.5, 0.5, 0.2, 0.2]] * 4])
    (per_query, per_group), = head.predict_by_feat(
        cls[None],
        box[None],
        batch_img_metas=[dict(IMG, scale_factor=(2., 2.))])
    assert per_query.labels.tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(per_query.scores, F.softmax(cls[0], -1)[:, 0])
    assert per_group.labels.tolist() == [0, 1]
    torch.testing.assert_close(per_group.scores, per_query.scores[[1, 2]])
    # (0.4..0.6) * 100 / scale factor 2.
    torch.testing.assert_close(per_group.bboxes,
                               torch.tensor([[20., 20., 30., 30.]] * 2))


def _sample(gt):
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=IMG)
    sample.gt_instances = gt
    return sample


def _assign(head, cls_score, bbox_pred, gt):
    """The assigner run by hand: each query's patch, -1 if none."""
    pred = InstanceData(
        scores=cls_score, bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * 100)
    return head.assigner.assign(pred, gt, img_meta=IMG).gt_inds - 1


def test_identical_patch_boxes_reconstruct_their_own_patch():
    # Two patches cropped at the same box but with different features: each
    # matched query must reconstruct the patch it was assigned, which no
    # comparison of box targets can tell apart.
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[20., 20., 60., 60.]] * 2),
        labels=torch.zeros(2, dtype=torch.long))
    patch_feats = torch.tensor([[1., 0., 0.], [0., 2., 0.]])
    logits = torch.randn(4, 2)
    boxes = torch.tensor([[0.4, 0.4, 0.4, 0.4], [0.1, 0.9, 0.1, 0.1],
                          [0.41, 0.4, 0.4, 0.38], [0.9, 0.1, 0.1, 0.1]])
    assigned = _assign(head, logits, boxes, gt)
    assert sorted(assigned[assigned >= 0].tolist()) == [0, 1]
    matched = torch.nonzero(assigned >= 0).squeeze(-1)
    # A query predicting exactly its own patch's feature costs nothing; one
    # predicting the other patch's costs |(1, 0, 0) - (0, 1, 0)|^2 = 2; the
    # sum over the two matched queries is divided by the 2 patches.
    for feat_of, expected in ((assigned, 0.), (1 - assigned, 2.)):
        feat_preds = torch.randn(4, 3)
        feat_preds[matched] = patch_feats[feat_of[matched]]
        losses = head.loss_by_feat(
            logits[None, None],
            boxes[None, None], [gt], [IMG],
            all_layers_feat_preds=feat_preds[None, None],
            patch_feats=patch_feats[None])
        torch.testing.assert_close(losses['loss_rec'], torch.tensor(expected))


def test_loss_leaves_no_state_on_the_head():
    head = _head()
    gt = InstanceData(
        bboxes=torch.tensor([[10., 10., 50., 50.], [60., 20., 90., 80.]]),
        labels=torch.zeros(2, dtype=torch.long))
    attributes = dict(vars(head))
    head.loss(torch.randn(2, 1, 4, 8), torch.randn(1, 2, 3), [_sample(gt)])
    assert not hasattr(head, '_matched_patches')
    assert vars(head).keys() == attributes.keys()
    for name, value in attributes.items():
        assert vars(head)[name] is value, name
