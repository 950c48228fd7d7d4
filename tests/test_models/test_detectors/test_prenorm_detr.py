"""``PreNormDETR``, the fine-tuning model, and its split from ``UPDETR``:
no pretext parts, and the same state-dict keys and outputs as before."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

from mmdet_updetr.models.detectors import PreNormDETR
from mmdet_updetr.models.layers import PreNormDetrTransformerDecoder
from mmdet_updetr.testing import build_tiny_model, get_tiny_cfg, tiny_batch

CONFIG = '_base_/models/prenorm_detr_r50.py'

PRETEXT_ATTRIBUTES = ('num_patches', 'group_size', 'patch_feat_dims',
                      'mask_ratio', 'freeze_backbone', 'query_shuffle',
                      'patch2query')

#: The tiny fine-tuning model's keys outside the CNN, in state-dict order,
#: as the detector built them before the split (commit 1ce6d7c, an UPDETR
#: with num_patches=0): checkpoints written then must load now.
DETR_KEYS = [
    'neck.convs.0.conv.weight', 'neck.convs.0.conv.bias',
    'bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias',
    'bbox_head.reg_ffn.layers.0.0.weight', 'bbox_head.reg_ffn.layers.0.0.bias',
    'bbox_head.reg_ffn.layers.1.weight', 'bbox_head.reg_ffn.layers.1.bias',
    'bbox_head.fc_reg.weight', 'bbox_head.fc_reg.bias',
    'encoder.layers.0.self_attn.attn.in_proj_weight',
    'encoder.layers.0.self_attn.attn.in_proj_bias',
    'encoder.layers.0.self_attn.attn.out_proj.weight',
    'encoder.layers.0.self_attn.attn.out_proj.bias',
    'encoder.layers.0.ffn.layers.0.0.weight',
    'encoder.layers.0.ffn.layers.0.0.bias',
    'encoder.layers.0.ffn.layers.1.weight',
    'encoder.layers.0.ffn.layers.1.bias', 'encoder.layers.0.norms.0.weight',
    'encoder.layers.0.norms.0.bias', 'encoder.layers.0.norms.1.weight',
    'encoder.layers.0.norms.1.bias', 'encoder.post_norm.weight',
    'encoder.post_norm.bias', 'decoder.layers.0.self_attn.attn.in_proj_weight',
    'decoder.layers.0.self_attn.attn.in_proj_bias',
    'decoder.layers.0.self_attn.attn.out_proj.weight',
    'decoder.layers.0.self_attn.attn.out_proj.bias',
    'decoder.layers.0.cross_attn.attn.in_proj_weight',
    'decoder.layers.0.cross_attn.attn.in_proj_bias',
    'decoder.layers.0.cross_attn.attn.out_proj.weight',
    'decoder.layers.0.cross_attn.attn.out_proj.bias',
    'decoder.layers.0.ffn.layers.0.0.weight',
    'decoder.layers.0.ffn.layers.0.0.bias',
    'decoder.layers.0.ffn.layers.1.weight',
    'decoder.layers.0.ffn.layers.1.bias', 'decoder.layers.0.norms.0.weight',
    'decoder.layers.0.norms.0.bias', 'decoder.layers.0.norms.1.weight',
    'decoder.layers.0.norms.1.bias', 'decoder.layers.0.norms.2.weight',
    'decoder.layers.0.norms.2.bias', 'decoder.post_norm.weight',
    'decoder.post_norm.bias', 'query_embedding.weight'
]
#: The tiny pre-training model's: the same plus the pretext's modules.
UPDETR_KEYS = DETR_KEYS[:10] + [
    f'bbox_head.feature_align.layers.{i}.{p}' for i in (0, 1)
    for p in ('weight', 'bias')
] + DETR_KEYS[10:] + ['patch2query.weight', 'patch2query.bias']

#: Fixed-seed outputs of the tiny models before the split (commit 1ce6d7c):
#: the last decoder layer's hidden_states[:, :3, :4] (first values) in eval
#: mode, and the losses of one training forward.
BEFORE = {
    'updetr/detr_voc0712_150e.py':
    ([0.17648546, -0.92664558, 0.29415771, 0.53432137], {
        'loss_cls': 2.9082158,
        'loss_bbox': 4.7879658,
        'loss_iou': 2.5967953
    }),
    'updetr/pretrain_in1k.py':
    ([0.50721502, 0.13314646, -0.99473387, 1.95630825], {
        'loss_cls': 0.56856925,
        'loss_bbox': 3.6346838,
        'loss_iou': 1.9404427,
        'loss_rec': 1.9767959
    }),
}


def _model(**overrides):
    return build_tiny_model(CONFIG, **overrides)


def test_has_no_pretext_attributes_or_parameters():
    model = _model()
    assert type(model) is PreNormDETR
    for name in PRETEXT_ATTRIBUTES:
        assert not hasattr(model, name), name
    assert type(model.decoder) is PreNormDetrTransformerDecoder
    assert not hasattr(model.decoder, 'group_size')
    assert not any(
        k.startswith(('patch2query.', 'bbox_head.feature_align.'))
        for k in model.state_dict())
    assert model.encoder.normalize_before and model.decoder.normalize_before
    # DETR's CNN set-up: stem and layer1 frozen, the rest trains.
    assert model.backbone.layer4[0].conv1.weight.requires_grad
    assert not model.backbone.layer1[0].conv1.weight.requires_grad
    # No pretext arguments are taken.
    with pytest.raises(TypeError, match='num_patches'):
        _model(num_patches=2)


def test_decoder_gets_no_self_attention_mask():
    model = _model().eval()
    masks = []
    model.decoder.layers[0].self_attn.register_forward_pre_hook(
        lambda module, args, kwargs: masks.append(kwargs['attn_mask']),
        with_kwargs=True)
    with torch.no_grad():
        model.predict(*tiny_batch())
    assert masks == [None]


def test_without_pretext_is_detr_with_the_same_transformer():
    head = dict(get_tiny_cfg(CONFIG).model.bbox_head, num_classes=3)
    assert head['type'] == 'DETRHead'
    model = _model(bbox_head=head).train()
    assert not hasattr(model, 'patch2query')
    assert model.encoder.normalize_before
    inputs, samples = tiny_batch(2)
    for sample in samples:
        del sample.query_patches
        sample.gt_instances.labels = torch.tensor([2, 1])
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_iou'} <= set(losses)
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert 'pred_group_instances' not in results[0]
    assert len(results[0].pred_instances) == 10


@pytest.mark.parametrize('name, keys',
                         [('updetr/detr_voc0712_150e.py', DETR_KEYS),
                          ('updetr/pretrain_in1k.py', UPDETR_KEYS)])
def test_same_keys_and_outputs_as_before_the_split(name, keys):
    """The tiny fine-tuning (``PreNormDETR``) and pre-training (``UPDETR``)
    models, built and run from fixed seeds, give the keys and numbers that
    the single ``UPDETR`` class gave before the split."""
    cfg = get_tiny_cfg(name)
    cfg.model.update(data_preprocessor=None)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    state_dict = model.state_dict()
    cnn = ['backbone.' + k for k in ResNet(depth=18).state_dict()]
    assert list(state_dict) == cnn + keys
    generator = torch.Generator().manual_seed(3)
    num_patches = cfg.model.get('num_patches', 0)
    inputs, samples = tiny_batch(num_patches, generator=generator)
    hidden, losses = BEFORE[name]
    with torch.no_grad():
        out = model.eval().forward_transformer(
            model.extract_feat(inputs), samples)['hidden_states']
    torch.testing.assert_close(
        out[-1, 0, 0, :4], torch.tensor(hidden), atol=1e-5, rtol=1e-5)
    torch.manual_seed(5)
    got = model.train().loss(inputs, samples)
    assert {
        k: float(v)
        for k, v in got.items()
    } == pytest.approx(
        losses, abs=1e-5, rel=1e-5)


def test_cnn_runs_channels_last_and_gives_contiguous_features():
    model = _model().eval()
    assert model.channels_last
    assert model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    plain = _model(channels_last=False).eval()
    plain.load_state_dict(model.state_dict())
    assert plain.backbone.conv1.weight.is_contiguous()
    inputs, _ = tiny_batch()
    feats = model.forward_backbone(inputs)
    expected = plain.backbone(inputs)
    for feat, value in zip(feats, expected):
        assert feat.is_contiguous()  # the transformer flattens it
        # The same convolutions, summed in another order.
        torch.testing.assert_close(feat, value, rtol=1e-5, atol=1e-5)
    # Without channels_last: exactly the plain CNN's features.
    for feat, value in zip(plain.forward_backbone(inputs), expected):
        assert torch.equal(feat, value)
