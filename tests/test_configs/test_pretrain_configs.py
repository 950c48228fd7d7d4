"""The pre-training configs: the paper's run, its ablations, the demo."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from mmdet_updetr.models.layers import GroupMaskedDecoder
from mmdet_updetr.testing import get_config_path, get_tiny_cfg

PRETRAIN = sorted(
    osp.relpath(p, osp.dirname(get_config_path('updetr/pretrain_in1k.py')))
    for p in glob.glob(
        osp.join(
            osp.dirname(get_config_path('updetr/pretrain_in1k.py')),
            'pretrain_*.py')))

#: Each ablation and the model keys it changes from pretrain_in1k_15e.py.
ABLATIONS = {
    'pretrain_in1k_15e_m1.py': {
        'num_patches': 1
    },
    'pretrain_in1k_15e_norec.py': {
        'bbox_head.loss_rec': None
    },
    'pretrain_in1k_15e_cnn.py': {
        'freeze_backbone': False
    },
    'pretrain_in1k_15e_cnn_norec.py': {
        'freeze_backbone': False,
        'bbox_head.loss_rec': None
    },
    'pretrain_in1k_15e_nomask.py': {
        'decoder.type': 'PreNormDetrTransformerDecoder'
    },
}


def _load(name):
    return Config.fromfile(get_config_path(f'updetr/{name}'))


def _flat(cfg, prefix=''):
    """A nested config as ``{'a.b.c': value}``."""
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def test_every_pretraining_config_is_listed():
    assert set(ABLATIONS) | {
        'pretrain_in1k.py', 'pretrain_in1k_15e.py', 'pretrain_demo_cpu.py',
        'pretrain_in1k_val.py'
    } == set(PRETRAIN)


def _val_crop(cfg):
    crops = [
        t for t in cfg.val_dataloader.dataset.pipeline
        if t['type'] == 'QueryPatchTransform'
    ]
    assert len(crops) == 1
    return crops[0]


def test_in1k_validates_only_with_a_held_out_folder():
    plain, val = _load('pretrain_in1k.py'), _load('pretrain_in1k_val.py')
    # Today's run has no validation; the _val config adds only that.
    assert plain.val_dataloader is None and plain.val_cfg is None
    assert plain.val_evaluator is None
    assert val.model == plain.model
    assert val.train_dataloader == plain.train_dataloader
    assert val.val_evaluator == dict(type='PatchLocalisationMetric')
    assert val.val_cfg == dict(type='ValLoop')
    assert val.train_cfg.val_interval == 1
    dataset = val.val_dataloader.dataset
    assert dataset.data_prefix == dict(img_path='val/') and dataset.test_mode
    crop = _val_crop(val)
    assert crop['deterministic'] and crop['augment'] is False
    assert crop['num_patches'] == val.model.num_patches
    hooks = [h['type'] for h in val.custom_hooks]
    assert hooks[0] == 'SafeCheckpointHook'
    assert hooks[-1] == 'QueryPatchVisHook'


def test_demo_validates_on_held_out_photos():
    cfg = _load('pretrain_demo_cpu.py')
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.val_dataloader.dataset.test_mode
    assert cfg.val_evaluator.type == 'PatchLocalisationMetric'
    crop = _val_crop(cfg)
    assert crop['deterministic'] and crop['augment'] is False
    assert crop['num_patches'] == cfg.model.num_patches
    assert 'QueryPatchVisHook' in [h['type'] for h in cfg.custom_hooks]


@pytest.mark.parametrize('name', PRETRAIN)
def test_pipeline_crops_as_many_patches_as_the_model_has_groups(name):
    cfg = _load(name)
    crops = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] == 'QueryPatchTransform'
    ]
    assert len(crops) == 1
    assert crops[0]['num_patches'] == cfg.model.num_patches
    assert cfg.model.num_queries % cfg.model.num_patches == 0
    # Mapped onto the same resize as the paper's run.
    resize = cfg.train_dataloader.dataset.pipeline[2]
    assert resize['type'] == 'RandomChoiceResize'


@pytest.mark.parametrize('name', [n for n in PRETRAIN if 'demo' not in n])
def test_header_and_batch(name):
    cfg = _load(name)
    header = open(get_config_path(f'updetr/{name}')).read().split('_base_')[0]
    epochs = cfg.train_cfg.max_epochs
    assert '8 GPUs x 32 images' in header and f'{epochs} epochs' in header
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 8 * 32
    assert epochs in (60, 15)
    drop = {60: 40, 15: 10}[epochs]
    assert f'epoch {drop}' in header
    assert cfg.param_scheduler[0].milestones == [drop]


def test_ablation_base_changes_only_the_schedule():
    full, short = _load('pretrain_in1k.py'), _load('pretrain_in1k_15e.py')
    assert full.model == short.model
    assert full.train_dataloader == short.train_dataloader
    assert full.optim_wrapper == short.optim_wrapper


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_each_ablation_changes_exactly_its_keys(name):
    base = _flat(_load('pretrain_in1k_15e.py').model.to_dict())
    ablation = _flat(_load(name).model.to_dict())
    missing = object()
    changed = {
        k: ablation.get(k, missing)
        for k in set(base) | set(ablation)
        if base.get(k, missing) != ablation.get(k, missing)
    }
    # A module set to None (loss_rec=None) takes its sub-keys away.
    nones = [k for k, v in changed.items() if v is None]
    changed = {
        k: v
        for k, v in changed.items()
        if not (v is missing and any(k.startswith(f'{n}.') for n in nones))
    }
    assert changed == ABLATIONS[name]


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_models_build_as_intended(name):
    cfg = get_tiny_cfg(f'updetr/{name}', num_patches=2)
    model = MODELS.build(cfg.model)
    expected = ABLATIONS[name]
    assert model.bbox_head.with_rec == ('bbox_head.loss_rec' not in expected)
    assert hasattr(model.bbox_head, 'feature_align') == \
        model.bbox_head.with_rec
    assert model.freeze_backbone == expected.get('freeze_backbone', True)
    assert all(not p.requires_grad for p in model.backbone.parameters()) == \
        model.freeze_backbone
    masked = 'decoder.type' not in expected
    assert isinstance(model.decoder, GroupMaskedDecoder) == masked
