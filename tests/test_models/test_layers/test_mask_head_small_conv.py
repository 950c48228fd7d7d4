"""Tests of ``MaskHeadSmallConv`` (DETR's FPN-style mask head)."""
import pytest
import torch

from mmdet_updetr.models.layers import MaskHeadSmallConv


def _head():
    head = MaskHeadSmallConv(
        34, (24, 16, 8), 32, norm_cfg=dict(type='GN', num_groups=2))
    head.init_weights()
    return head


def test_layer_sizes_follow_the_reference():
    head = _head()
    # inter_dims = [dim, ctx/2, ctx/4, ctx/8, ctx/16] for the blocks.
    assert [getattr(head, f'lay{i}').out_channels
            for i in range(1, 6)] == [34, 16, 8, 4, 2]
    assert [getattr(head, f'lay{i}').in_channels
            for i in range(1, 6)] == [34, 34, 16, 8, 4]
    assert [(getattr(head, f'adapter{i}').in_channels,
             getattr(head, f'adapter{i}').out_channels)
            for i in (1, 2, 3)] == [(24, 16), (16, 8), (8, 4)]
    assert head.out_lay.out_channels == 1
    assert head.gn1.num_groups == 2 and head.gn5.num_channels == 2
    assert torch.all(head.lay1.bias == 0)
    with pytest.raises(ValueError, match='strides 16, 8 and 4'):
        MaskHeadSmallConv(34, (24, 16), 32)


def test_output_shape_and_per_query_routing():
    head = _head().eval()
    bs, nq = 2, 3
    x = torch.randn(bs, 32, 2, 3)
    attn = torch.rand(bs, nq, 2, 2, 3)
    fpns = [
        torch.randn(bs, 24, 4, 6),
        torch.randn(bs, 16, 8, 12),
        torch.randn(bs, 8, 16, 24)
    ]
    out = head(x, attn, fpns)
    assert out.shape == (bs, nq, 16, 24)
    # Changing query 1 of image 1 changes only that query's mask, and
    # changing image 0's features changes only image 0's masks.
    attn2 = attn.clone()
    attn2[1, 1] += 1
    out2 = head(x, attn2, fpns)
    changed = (out2 - out).abs().flatten(2).amax(-1) > 0
    assert changed.tolist() == [[False, False, False], [False, True, False]]
    fpns3 = [f.clone() for f in fpns]
    fpns3[2][0] += 1
    out3 = head(x, attn, fpns3)
    changed = (out3 - out).abs().flatten(2).amax(-1) > 0
    assert changed.tolist() == [[True, True, True], [False, False, False]]
