import pytest
import torch

from mmdet_updetr.models.layers import (GroupMaskedDecoder,
                                        PreNormDetrTransformerDecoder,
                                        group_attention_mask)


def _layer_cfg(dims=16):
    attn = dict(embed_dims=dims, num_heads=2, dropout=0.0, batch_first=True)
    return dict(
        self_attn_cfg=attn,
        cross_attn_cfg=dict(attn),
        ffn_cfg=dict(embed_dims=dims, feedforward_channels=32, ffn_drop=0.))


def _decoder(num_queries=6, num_patches=3, **kwargs):
    decoder = GroupMaskedDecoder(
        num_layers=2,
        layer_cfg=_layer_cfg(),
        num_queries=num_queries,
        num_patches=num_patches,
        **kwargs)
    return decoder.eval()


def test_group_mask_literal_n6_m3():
    blocked = group_attention_mask(6, group_size=2)
    expected = torch.tensor([
        [0, 0, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 1],
        [1, 1, 0, 0, 1, 1],
        [1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
    ]).bool()
    assert blocked.dtype == torch.bool
    assert torch.equal(blocked, expected)


def test_group_mask_no_fully_blocked_row_when_m_exceeds_group_size():
    # N=100, M=20: 20 groups of 5. The reference's loop over range(N // M)
    # would leave 15 groups fully blocked (NaN after softmax).
    blocked = group_attention_mask(100, group_size=5)
    allowed_per_row = (~blocked).sum(dim=1)
    assert torch.all(allowed_per_row == 5)
    assert not blocked.all(dim=1).any()


def test_decoder_with_mask_equals_decoding_each_group_alone():
    decoder = _decoder()
    query = torch.randn(2, 6, 16)
    query_pos = torch.randn(2, 6, 16)
    memory = torch.randn(2, 12, 16)
    memory_pos = torch.randn(2, 12, 16)
    pad = torch.zeros(2, 12, dtype=torch.bool)
    pad[1, 9:] = True
    args = dict(
        key=memory, value=memory, key_pos=memory_pos, key_padding_mask=pad)
    full = decoder(query=query, query_pos=query_pos, **args)
    assert full.shape == (2, 2, 6, 16)
    for g in range(3):
        sl = slice(2 * g, 2 * g + 2)
        alone = decoder(query=query[:, sl], query_pos=query_pos[:, sl], **args)
        torch.testing.assert_close(full[:, :, sl], alone, atol=1e-6, rtol=1e-5)
    # Without the mask the groups see each other and the outputs change.
    unmasked = PreNormDetrTransformerDecoder(
        num_layers=2, layer_cfg=_layer_cfg()).eval()
    unmasked.load_state_dict(decoder.state_dict())
    free = unmasked(query=query, query_pos=query_pos, **args)
    assert not torch.allclose(free, full, atol=1e-4)


def test_decoder_slices_mask_for_fewer_patches():
    decoder = _decoder()
    memory = torch.randn(1, 5, 16)
    out = decoder(
        query=torch.randn(1, 4, 16),
        query_pos=torch.randn(1, 4, 16),
        key=memory,
        value=memory,
        key_pos=torch.zeros(1, 5, 16),
        key_padding_mask=None)
    assert out.shape == (2, 1, 4, 16)
    with pytest.raises(ValueError, match='k \\* 2'):
        decoder(
            query=torch.randn(1, 3, 16),
            query_pos=torch.randn(1, 3, 16),
            key=memory,
            value=memory,
            key_pos=None,
            key_padding_mask=None)


def test_num_patches_must_divide_num_queries():
    with pytest.raises(ValueError, match='must divide'):
        _decoder(num_queries=10, num_patches=3)
