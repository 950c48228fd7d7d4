"""Tests of the reference -> mmdet-updetr checkpoint key map."""
import pytest
import torch

from tools.model_converters import (PRETEXT_CLASS_ROWS,
                                    add_num_batches_tracked,
                                    convert_reference_state_dict,
                                    map_reference_key, reference_keys)

# One key of every kind, as the reference (dddzg/up-detr) names it.
EXPECTED = {
    'backbone.0.body.conv1.weight': 'backbone.conv1.weight',
    'backbone.0.body.bn1.running_mean': 'backbone.bn1.running_mean',
    'backbone.0.body.layer3.1.bn2.weight': 'backbone.layer3.1.bn2.weight',
    'backbone.0.body.layer4.0.downsample.0.weight':
    'backbone.layer4.0.downsample.0.weight',
    'backbone.0.body.layer4.0.downsample.1.running_var':
    'backbone.layer4.0.downsample.1.running_var',
    'input_proj.weight': 'neck.convs.0.conv.weight',
    'input_proj.bias': 'neck.convs.0.conv.bias',
    'query_embed.weight': 'query_embedding.weight',
    'transformer.encoder.layers.5.self_attn.in_proj_weight':
    'encoder.layers.5.self_attn.attn.in_proj_weight',
    'transformer.encoder.layers.0.self_attn.out_proj.bias':
    'encoder.layers.0.self_attn.attn.out_proj.bias',
    'transformer.encoder.layers.1.linear1.weight':
    'encoder.layers.1.ffn.layers.0.0.weight',
    'transformer.encoder.layers.1.linear2.bias':
    'encoder.layers.1.ffn.layers.1.bias',
    'transformer.encoder.layers.2.norm1.weight':
    'encoder.layers.2.norms.0.weight',
    'transformer.encoder.layers.2.norm2.bias': 'encoder.layers.2.norms.1.bias',
    'transformer.encoder.norm.weight': 'encoder.post_norm.weight',
    'transformer.decoder.layers.3.self_attn.in_proj_bias':
    'decoder.layers.3.self_attn.attn.in_proj_bias',
    'transformer.decoder.layers.3.multihead_attn.in_proj_weight':
    'decoder.layers.3.cross_attn.attn.in_proj_weight',
    'transformer.decoder.layers.3.multihead_attn.out_proj.weight':
    'decoder.layers.3.cross_attn.attn.out_proj.weight',
    'transformer.decoder.layers.10.linear1.bias':
    'decoder.layers.10.ffn.layers.0.0.bias',
    'transformer.decoder.layers.4.norm1.bias': 'decoder.layers.4.norms.0.bias',
    'transformer.decoder.layers.4.norm2.weight':
    'decoder.layers.4.norms.1.weight',
    'transformer.decoder.layers.4.norm3.weight':
    'decoder.layers.4.norms.2.weight',
    'transformer.decoder.norm.bias': 'decoder.post_norm.bias',
    'class_embed.weight': 'bbox_head.fc_cls.weight',
    'bbox_embed.layers.0.weight': 'bbox_head.reg_ffn.layers.0.0.weight',
    'bbox_embed.layers.1.bias': 'bbox_head.reg_ffn.layers.1.bias',
    'bbox_embed.layers.2.weight': 'bbox_head.fc_reg.weight',
    'patch2query.weight': 'patch2query.weight',
    'feature_align.layers.0.bias': 'bbox_head.feature_align.layers.0.bias',
    'feature_align.layers.1.weight': 'bbox_head.feature_align.layers.1.weight',
}


@pytest.mark.parametrize('key', sorted(EXPECTED))
def test_map_reference_key(key):
    assert map_reference_key(key) == EXPECTED[key]


@pytest.mark.parametrize(
    'key',
    [
        'transformer.encoder.layers.0.norm3.weight',  # encoder has 2 norms
        'transformer.encoder.layers.0.multihead_attn.in_proj_weight',
        'bbox_embed.layers.3.weight',
        'feature_align.layers.2.weight',
        'module.input_proj.weight',
        'input_proj.weight_extra'
    ])
def test_unknown_keys_do_not_map(key):
    assert map_reference_key(key) is None


def test_pretext_keys_only_with_pretext():
    assert map_reference_key('patch2query.bias', pretext=False) is None
    assert map_reference_key('input_proj.bias', pretext=False) == \
        'neck.convs.0.conv.bias'


def _tiny_reference_state_dict(num_outputs=3):
    return {
        'backbone.0.body.bn1.weight': torch.rand(4),
        'backbone.0.body.bn1.running_var': torch.rand(4),
        'class_embed.weight': torch.arange(num_outputs * 2.).view(-1, 2),
        'class_embed.bias': torch.arange(float(num_outputs)),
        'patch2query.weight': torch.rand(2, 4),
    }


def test_convert_maps_pretext_class_rows_by_value():
    src = _tiny_reference_state_dict()
    out = convert_reference_state_dict(src)
    assert PRETEXT_CLASS_ROWS == (1, 2)
    assert out['bbox_head.fc_cls.bias'].tolist() == [1., 2.]
    assert out['bbox_head.fc_cls.weight'].tolist() == [[2., 3.], [4., 5.]]
    assert out['patch2query.weight'] is src['patch2query.weight']
    assert out['backbone.bn1.num_batches_tracked'].dtype == torch.long
    assert len(out) == len(src) + 1


def test_convert_with_explicit_class_rows():
    src = _tiny_reference_state_dict(num_outputs=5)
    del src['patch2query.weight']
    out = convert_reference_state_dict(
        src, pretext=False, class_rows=[3, 0, 4])
    assert out['bbox_head.fc_cls.bias'].tolist() == [3., 0., 4.]
    out = convert_reference_state_dict(src, pretext=False)
    assert out['bbox_head.fc_cls.bias'].tolist() == [0., 1., 2., 3., 4.]
    with pytest.raises(ValueError, match='do not fit'):
        convert_reference_state_dict(src, pretext=False, class_rows=[5])


def test_convert_names_every_unknown_key():
    src = _tiny_reference_state_dict()
    src['foo.weight'] = torch.zeros(1)
    src['transformer.decoder.layers.0.norm4.bias'] = torch.zeros(1)
    with pytest.raises(KeyError) as err:
        convert_reference_state_dict(src)
    assert 'foo.weight' in str(err.value)
    assert 'transformer.decoder.layers.0.norm4.bias' in str(err.value)
    with pytest.raises(KeyError, match='patch2query.weight'):
        convert_reference_state_dict(
            _tiny_reference_state_dict(), pretext=False)


def test_convert_needs_both_classifier_tensors():
    src = {'class_embed.bias': torch.zeros(3)}
    with pytest.raises(KeyError, match='fc_cls.weight'):
        convert_reference_state_dict(src)


def test_convert_rejects_two_keys_onto_one(monkeypatch):
    rules = reference_keys.DETR_KEY_RULES + (
        (r'^extra_norm\.(weight)$', r'decoder.post_norm.\1'), )
    monkeypatch.setattr(reference_keys, 'DETR_KEY_RULES', rules)
    src = {
        'transformer.decoder.norm.weight': torch.zeros(1),
        'extra_norm.weight': torch.zeros(1)
    }
    with pytest.raises(KeyError, match='extra_norm.weight'):
        convert_reference_state_dict(src, pretext=False)


def test_add_num_batches_tracked_keeps_existing():
    state = {
        'backbone.bn1.running_var': torch.ones(2),
        'backbone.bn2.running_var': torch.ones(2),
        'backbone.bn2.num_batches_tracked': torch.tensor(7),
    }
    assert add_num_batches_tracked(state) == [
        'backbone.bn1.num_batches_tracked'
    ]
    assert state['backbone.bn2.num_batches_tracked'].item() == 7
    assert state['backbone.bn1.num_batches_tracked'].item() == 0
