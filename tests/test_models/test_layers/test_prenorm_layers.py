import torch
from mmdet.models.layers import (DetrTransformerDecoder,
                                 DetrTransformerDecoderLayer,
                                 DetrTransformerEncoder)

from mmdet_updetr.models.layers import (PreNormDetrTransformerDecoder,
                                        PreNormDetrTransformerDecoderLayer,
                                        PreNormDetrTransformerEncoder)

DIMS = 16


def _layer_cfg(with_cross=False):
    attn = dict(embed_dims=DIMS, num_heads=2, dropout=0.0, batch_first=True)
    cfg = dict(
        self_attn_cfg=attn,
        ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=32, ffn_drop=0.))
    if with_cross:
        cfg['cross_attn_cfg'] = dict(attn)
    return cfg


def _attn(module, query, key, value, **kwargs):
    """The wrapped nn.MultiheadAttention (sequence first) called directly."""
    query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    out = module.attn(query, key, value, need_weights=False, **kwargs)[0]
    return out.transpose(0, 1)


def _ffn(ffn, x):
    return ffn.layers[1](ffn.layers[0](x))


def _randomise(module):
    for p in module.parameters():
        p.data.normal_(0, 0.3)
    return module


def test_prenorm_encoder_follows_reference_order():
    encoder = _randomise(
        PreNormDetrTransformerEncoder(num_layers=1,
                                      layer_cfg=_layer_cfg())).eval()
    x, pos = torch.randn(2, 7, DIMS), torch.randn(2, 7, DIMS)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[0, 5:] = True
    layer = encoder.layers[0]
    # forward_pre of the reference's TransformerEncoderLayer, then the
    # encoder's final norm.
    n = layer.norms[0](x)
    y = x + _attn(layer.self_attn, n + pos, n + pos, n, key_padding_mask=pad)
    y = y + _ffn(layer.ffn, layer.norms[1](y))
    expected = encoder.post_norm(y)
    out = encoder(query=x, query_pos=pos, key_padding_mask=pad)
    torch.testing.assert_close(out, expected)


def test_prenorm_decoder_layer_follows_reference_order():
    layer = _randomise(
        PreNormDetrTransformerDecoderLayer(**_layer_cfg(True))).eval()
    tgt, qpos = torch.randn(2, 4, DIMS), torch.randn(2, 4, DIMS)
    mem, mpos = torch.randn(2, 6, DIMS), torch.randn(2, 6, DIMS)
    mask = torch.tensor([[False, True, True, True]] * 2 +
                        [[True, True, False, False]] * 2)
    n = layer.norms[0](tgt)
    y = tgt + _attn(layer.self_attn, n + qpos, n + qpos, n, attn_mask=mask)
    y = y + _attn(layer.cross_attn, layer.norms[1](y) + qpos, mem + mpos, mem)
    expected = y + _ffn(layer.ffn, layer.norms[2](y))
    out = layer(
        tgt,
        key=mem,
        value=mem,
        query_pos=qpos,
        key_pos=mpos,
        self_attn_mask=mask)
    torch.testing.assert_close(out, expected)


def test_postnorm_encoder_keeps_mmdet_layout_and_output():
    ours = PreNormDetrTransformerEncoder(
        num_layers=2, layer_cfg=_layer_cfg(), normalize_before=False).eval()
    mmdet = DetrTransformerEncoder(num_layers=2, layer_cfg=_layer_cfg()).eval()
    assert ours.state_dict().keys() == mmdet.state_dict().keys()
    mmdet.load_state_dict(_randomise(ours).state_dict())
    x, pos = torch.randn(1, 5, DIMS), torch.randn(1, 5, DIMS)
    torch.testing.assert_close(
        ours(query=x, query_pos=pos, key_padding_mask=None),
        mmdet(query=x, query_pos=pos, key_padding_mask=None))
    prenorm = PreNormDetrTransformerEncoder(
        num_layers=2, layer_cfg=_layer_cfg())
    extra = set(prenorm.state_dict()) - set(mmdet.state_dict())
    assert extra == {'post_norm.weight', 'post_norm.bias'}
    # Pre-norm really differs from post-norm on the same weights.
    prenorm.load_state_dict(ours.state_dict(), strict=False)
    assert not torch.allclose(
        prenorm.eval()(query=x, query_pos=pos, key_padding_mask=None),
        ours(query=x, query_pos=pos, key_padding_mask=None))


def test_decoder_keeps_mmdet_keys_and_postnorm_output():
    mmdet = DetrTransformerDecoder(
        num_layers=2, layer_cfg=_layer_cfg(True)).eval()
    prenorm = PreNormDetrTransformerDecoder(
        num_layers=2, layer_cfg=_layer_cfg(True)).eval()
    postnorm = PreNormDetrTransformerDecoder(
        num_layers=2, layer_cfg=_layer_cfg(True),
        normalize_before=False).eval()
    # One layout for both: mmdet's post-norm checkpoints load either way.
    assert list(prenorm.state_dict()) == list(mmdet.state_dict())
    assert list(postnorm.state_dict()) == list(mmdet.state_dict())
    assert type(postnorm.layers[0]) is DetrTransformerDecoderLayer
    assert type(prenorm.layers[0]) is PreNormDetrTransformerDecoderLayer
    mmdet.load_state_dict(_randomise(postnorm).state_dict())
    prenorm.load_state_dict(postnorm.state_dict())
    query, pos = torch.randn(1, 4, DIMS), torch.randn(1, 4, DIMS)
    mem, mpos = torch.randn(1, 6, DIMS), torch.randn(1, 6, DIMS)
    args = dict(key=mem, value=mem, key_pos=mpos, key_padding_mask=None)
    expected = mmdet(query, query_pos=pos, **args)
    torch.testing.assert_close(
        postnorm(query, query_pos=pos, **args), expected)
    assert not torch.allclose(prenorm(query, query_pos=pos, **args), expected)
