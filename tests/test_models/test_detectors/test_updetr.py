import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmdet_updetr.models.layers import group_attention_mask
from mmdet_updetr.testing import (build_tiny_model, get_config_path,
                                  get_tiny_cfg, tiny_batch)

CONFIG = '_base_/models/updetr_r50.py'


def _model(**overrides):
    return build_tiny_model(CONFIG, **overrides)


def test_config_values_come_from_the_model():
    model = _model(num_queries=12, num_patches=3)
    assert model.decoder.num_queries == 12 and model.decoder.num_patches == 3
    assert model.bbox_head.bg_cls_weight == 3 / 12
    assert model.patch2query.in_features == 512
    assert model.encoder.normalize_before and model.decoder.normalize_before


def test_patch_features_land_on_their_group():
    model = _model().eval()  # N=10, M=2: queries 0-4 patch 0, 5-9 patch 1
    inputs, samples = tiny_batch(2)
    captured = {}

    def spy(module, args, kwargs):
        captured['query_pos'] = kwargs['query_pos']

    model.decoder.register_forward_pre_hook(spy, with_kwargs=True)
    with torch.no_grad():
        model.predict(inputs, samples)
        # Independent patch features: one image at a time, pooled by hand.
        for i, sample in enumerate(samples):
            for p in range(2):
                feat = model.backbone(sample.query_patches[p:p + 1])[-1]
                query = model.patch2query(feat.mean(dim=(2, 3)))[0]
                for q in range(5 * p, 5 * p + 5):
                    added = (
                        captured['query_pos'][i, q] -
                        model.query_embedding.weight[q])
                    torch.testing.assert_close(
                        added, query, atol=1e-5, rtol=1e-4)


def test_patch_dropout_rate_and_eval():
    model = _model(mask_ratio=0.3).train()
    feats = torch.randn(4, 2, 512) + 3
    dropped = torch.stack(
        [model.patch_queries(feats).abs().sum(-1) == 0 for _ in range(200)])
    assert abs(dropped.float().mean().item() - 0.3) < 0.02
    # Drawn per query: queries of one group are not all dropped together.
    assert (dropped.float().mean(-1) % 1).any()
    model.eval()
    assert torch.all(model.patch_queries(feats).abs().sum(-1) > 1e-3)


def test_frozen_cnn_is_bit_identical_after_a_step():
    model = _model().train()
    assert not model.backbone.training  # BatchNorm in eval mode
    cfg = Config.fromfile(get_config_path('_base_/schedules/pretrain_60e.py'))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    in_optim = {
        id(p)
        for g in optim.optimizer.param_groups
        for p in g['params']
    }
    assert not in_optim & {id(p) for p in model.backbone.parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs, samples = tiny_batch(2)
    optim.update_params(sum(model.loss(inputs, samples).values()))
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith('backbone.'):
            assert torch.equal(value, after[key]), key
    for key in ('patch2query.weight', 'query_embedding.weight',
                'neck.convs.0.conv.weight', 'bbox_head.fc_cls.weight'):
        assert not torch.equal(before[key], after[key]), key


def test_trainable_cnn_gets_gradients():
    model = _model(freeze_backbone=False).train()
    inputs, samples = tiny_batch(2)
    sum(model.loss(inputs, samples).values()).backward()
    assert model.backbone.layer4[0].downsample[0].weight.grad.abs().sum() > 0


def test_predict_with_fewer_patches_than_groups():
    model = _model().eval()
    inputs, samples = tiny_batch(1)
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert len(results[0].pred_instances) == 5
    assert results[0].pred_group_instances.labels.tolist() == [0]
    with pytest.raises(ValueError, match='3 query patches'):
        samples[0].query_patches = torch.randn(3, 3, 32, 32)
        samples[1].query_patches = torch.randn(3, 3, 32, 32)
        model.predict(inputs, samples)


def test_missing_patches_is_a_clear_error():
    model = _model().eval()
    inputs, samples = tiny_batch(2)
    del samples[0].query_patches
    del samples[1].query_patches
    with pytest.raises(KeyError, match='QueryPatchTransform'):
        model.predict(inputs, samples)


def test_query_shuffle_permutes_the_queries_in_training():
    model = _model(query_shuffle=True, mask_ratio=0.)
    decoder_inputs, _ = model.train().pre_decoder(torch.randn(2, 6, 32))
    pos = decoder_inputs['query_pos'][0]
    weight = model.query_embedding.weight
    perm = [(weight == row).all(1).nonzero().item() for row in pos]
    assert sorted(perm) == list(range(10)) and perm != list(range(10))
    decoder_inputs, _ = model.eval().pre_decoder(torch.randn(2, 6, 32))
    assert torch.equal(decoder_inputs['query_pos'][0], weight)


def test_num_patches_must_divide_num_queries():
    with pytest.raises(ValueError, match="type='PreNormDETR'"):
        _model(num_patches=0)
    with pytest.raises(ValueError, match=r'num_patches \(3\) must be'):
        _model(num_patches=3)  # N = 10


@pytest.mark.parametrize('decoder, expected', [
    ('GroupMaskedDecoder', group_attention_mask(10, 5)),
    ('PreNormDetrTransformerDecoder', None),
])
def test_decoder_type_chooses_the_group_mask(decoder, expected):
    """The group mask (N=10, M=2), or none for the "no attention mask"
    ablation; only the group-masked decoder is given N and M."""
    model = _model(
        decoder=dict(get_tiny_cfg(CONFIG).model.decoder, type=decoder)).eval()
    assert hasattr(model.decoder, 'num_patches') == (expected is not None)
    masks = []
    model.decoder.layers[0].self_attn.register_forward_pre_hook(
        lambda module, args, kwargs: masks.append(kwargs['attn_mask']),
        with_kwargs=True)
    inputs, samples = tiny_batch(2)
    with torch.no_grad():
        model.predict(inputs, samples)
    assert len(masks) == 1
    if expected is None:
        assert masks[0] is None
    else:
        assert torch.equal(masks[0], expected)


def test_frozen_cnn_builds_no_autograd_graph():
    inputs, _ = tiny_batch(2)
    frozen = _model().train().forward_backbone(inputs)[-1]
    assert not frozen.requires_grad and frozen.grad_fn is None
    trainable = _model(freeze_backbone=False).train()
    assert trainable.forward_backbone(inputs)[-1].grad_fn is not None


def test_cnn_autocasts_and_patch_features_stay_float32():
    model = _model().train()
    inputs, samples = tiny_batch(2)
    with torch.autocast('cpu', torch.bfloat16):
        img_feats = model.forward_backbone(inputs)[-1]
        patch_feats = model.extract_patch_feat(samples)
    assert img_feats.dtype == torch.bfloat16
    # The reconstruction targets: pooled in float32.
    assert patch_feats.dtype == torch.float32
    torch.testing.assert_close(
        patch_feats, model.extract_patch_feat(samples), rtol=0.02, atol=0.02)
