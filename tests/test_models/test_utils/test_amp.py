"""Losses in float32 under ``torch.autocast`` (``float32_losses``).

Under bfloat16 autocast the head's outputs are bfloat16; the matching and
the losses must still be float32 (in bfloat16 a 289-pixel image side is
288, and normalised box targets come out wrong), and without autocast
nothing may change.
"""
import torch
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from mmdet_updetr.models.utils import float32_losses


class _Probe:
    """Records what a decorated method sees."""

    @float32_losses
    def loss(self, x, labels, *, scale):
        self.seen = dict(
            x=x,
            labels=labels,
            scale=scale,
            autocast=torch.is_autocast_enabled('cpu'),
            matmul_dtype=(x @ x.T).dtype)
        return x.sum() * scale


def test_float32_losses_casts_and_switches_autocast_off():
    probe = _Probe()
    x = torch.ones(2, 3, dtype=torch.bfloat16)
    labels = torch.tensor([1, 0])
    with torch.autocast('cpu', torch.bfloat16):
        out = probe.loss(x, labels, scale=torch.tensor(2., dtype=torch.half))
    assert out.dtype == torch.float32 and out.item() == 12.
    assert probe.seen['x'].dtype == torch.float32
    assert probe.seen['scale'].dtype == torch.float32
    assert probe.seen['labels'] is labels  # integers untouched
    assert not probe.seen['autocast']
    assert probe.seen['matmul_dtype'] == torch.float32
    assert torch.is_autocast_enabled('cpu') is False  # restored outside


def test_float32_losses_passes_float32_through():
    """Without autocast the very same tensors arrive: float32 results are
    those of the undecorated method."""
    probe = _Probe()
    x = torch.randn(2, 3)
    probe.loss(x, None, scale=1.5)
    assert probe.seen['x'] is x and probe.seen['scale'] == 1.5


def _head():
    return MODELS.build(
        dict(
            type='UPDETRHead',
            num_queries=2,
            num_patches=1,
            patch_feat_dims=4,
            embed_dims=8,
            train_cfg=dict(
                assigner=dict(
                    type='HungarianAssigner',
                    match_costs=[
                        dict(type='ClassificationCost', weight=1.),
                        dict(type='BBoxL1Cost', weight=5., box_format='xywh'),
                        dict(type='IoUCost', iou_mode='giou', weight=2.)
                    ]))))


def _head_inputs(dtype):
    """One decoder layer, one image of 289 x 289 pixels whose one patch box
    is the whole image, predicted exactly by query 0."""
    cls = torch.tensor([[[[4., -4.], [-4., 4.]]]], dtype=dtype)
    boxes = torch.tensor([[[[0.5, 0.5, 1., 1.], [0.25, 0.25, 0.5, 0.5]]]],
                         dtype=dtype)
    feats = torch.tensor([[[[1., 2., 3., 4.], [0., 0., 1., 0.]]]], dtype=dtype)
    patch_feats = torch.tensor([[[2., 4., 6., 8.]]], dtype=dtype)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 289., 289.]]),
        labels=torch.zeros(1, dtype=torch.long))
    meta = dict(img_shape=(289, 289), scale_factor=(1., 1.))
    return cls, boxes, [gt], [meta], feats, patch_feats


def test_head_losses_are_float32_and_exact_under_bf16_autocast():
    head = _head()
    cls, boxes, gts, metas, feats, patch_feats = _head_inputs(torch.bfloat16)
    with torch.autocast('cpu', torch.bfloat16):
        losses = head.loss_by_feat(
            cls,
            boxes,
            gts,
            metas,
            all_layers_feat_preds=feats,
            patch_feats=patch_feats)
    assert all(v.dtype == torch.float32 for v in losses.values())
    # Query 0 predicts the box exactly: in float32 the normalised target is
    # (0.5, 0.5, 1, 1); in bfloat16 289 would be 288 and the L1 loss 0.017.
    assert losses['loss_bbox'].item() == 0.
    assert losses['loss_iou'].item() == 0.
    # Its feature is the patch's, up to the scale: nothing to reconstruct.
    assert losses['loss_rec'].item() == 0.
    # The same as the float32 computation on the same (rounded) inputs.
    expected = head.loss_by_feat(
        *[t.float() for t in _head_inputs(torch.bfloat16)[:2]],
        gts,
        metas,
        all_layers_feat_preds=feats.float(),
        patch_feats=patch_feats.float())
    for key, value in expected.items():
        assert torch.equal(losses[key], value), key
