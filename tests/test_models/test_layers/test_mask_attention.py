"""Tests of ``MHAttentionMap`` (DETR's panoptic attention maps)."""
import pytest
import torch
import torch.nn.functional as F

from mmdet_updetr.models.layers import MHAttentionMap


def _inputs():
    query = torch.randn(2, 3, 8)
    memory = torch.randn(2, 8, 3, 4)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[1, 2:] = True  # image 1: last row padded
    mask[1, :, 3] = True  # and last column
    return query, memory, mask


def _reference_formula(attn, query, memory, mask, per_head):
    """The reference's computation: keys by a 1x1 conv of the memory map,
    einsum 'bqnc,bnchw->bqnhw', -inf on padding, then softmax."""
    q = attn.q_linear(query)
    k = F.conv2d(memory, attn.k_linear.weight[..., None, None],
                 attn.k_linear.bias)
    n = attn.num_heads
    qh = q.view(2, 3, n, 8 // n)
    kh = k.view(2, n, 8 // n, 3, 4)
    w = torch.einsum('bqnc,bnchw->bqnhw', qh * (8 / n)**-0.5, kh)
    w = w.masked_fill(mask[:, None, None], float('-inf'))
    if per_head:
        return F.softmax(w.flatten(3), -1).view_as(w)
    return F.softmax(w.flatten(2), -1).view_as(w)


@pytest.mark.parametrize('per_head', [False, True])
def test_attention_map_matches_formula_and_ignores_padding(per_head):
    attn = MHAttentionMap(8, 8, 2, softmax_per_head=per_head)
    attn.init_weights()
    torch.nn.init.normal_(attn.q_linear.bias)  # zero by default
    query, memory, mask = _inputs()
    weights = attn(query, memory, mask)
    assert weights.shape == (2, 3, 2, 3, 4)
    expected = _reference_formula(attn, query, memory, mask, per_head)
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-6)
    # Padded positions get exactly no attention, valid ones some.
    assert torch.all(weights[1, :, :, 2:] == 0)
    assert torch.all(weights[1, :, :, :, 3] == 0)
    assert torch.all(weights[1, :, :, :2, :3] > 0)
    assert torch.all(weights[0] > 0)
    if per_head:  # UP-DETR's reference: each head's map sums to 1
        torch.testing.assert_close(weights.sum((3, 4)), torch.ones(2, 3, 2))
    else:  # facebookresearch/detr: heads and positions together sum to 1
        torch.testing.assert_close(weights.sum((2, 3, 4)), torch.ones(2, 3))


def test_default_is_the_per_head_softmax():
    """Unless told otherwise, each head's map is normalised on its own (the
    UP-DETR reference's ``flatten(3)``)."""
    attn = MHAttentionMap(8, 8, 2)
    attn.init_weights()
    torch.nn.init.normal_(attn.q_linear.bias)
    query, memory, mask = _inputs()
    weights = attn(query, memory, mask)
    torch.testing.assert_close(
        weights,
        _reference_formula(attn, query, memory, mask, True),
        rtol=1e-5,
        atol=1e-6)
    torch.testing.assert_close(weights.sum((3, 4)), torch.ones(2, 3, 2))
    # The joint form differs: the heads' totals are not 1 each.
    joint = _reference_formula(attn, query, memory, mask, False)
    assert (joint.sum((3, 4)) - 1).abs().max() > 0.1


def test_attention_map_init_and_bad_heads():
    attn = MHAttentionMap(8, 8, 2)
    attn.q_linear.bias.data.fill_(1.)
    attn.init_weights()
    assert torch.all(attn.q_linear.bias == 0)
    assert torch.all(attn.k_linear.bias == 0)
    with pytest.raises(ValueError, match='divisible'):
        MHAttentionMap(8, 8, 3)
