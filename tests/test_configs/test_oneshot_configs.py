"""The one-shot VOC configs: model, recipe, data, optimizer."""
import argparse
import copy
from pathlib import Path

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper

from mmdet_updetr.testing import (check_finetune_recipe, get_config_path,
                                  get_tiny_cfg)

REPO = Path(__file__).resolve().parents[2]
ONESHOT = [
    f'updetr/{role}_voc0712_{epochs}e.py'
    for role in ('oneshot', 'detr_oneshot') for epochs in (150, 300)
]


def _load(name):
    return Config.fromfile(get_config_path(name))


@pytest.mark.parametrize('name', ONESHOT)
def test_model_and_recipe(name):
    cfg = _load(name)
    pretrain = _load('updetr/pretrain_in1k.py').model
    model = cfg.model
    assert model.type == 'OneShotUPDETR'
    assert model.num_patches == 1 and model.mask_ratio == 0
    assert not model.freeze_backbone
    for key in ('encoder', 'neck', 'positional_encoding', 'num_queries',
                'patch_feat_dims'):
        assert model[key] == pretrain[key], key
    # One group of queries: the plain pre-norm decoder, nothing to mask.
    assert model.decoder.type == 'PreNormDetrTransformerDecoder'
    assert dict(model.decoder, type='GroupMaskedDecoder') == pretrain.decoder
    assert model.bbox_head.type == 'UPDETRHead'
    assert model.bbox_head.loss_rec is None
    assert model.bbox_head.bg_cls_weight == 0.1
    check_finetune_recipe(cfg, name)
    if name.startswith('updetr/oneshot'):
        assert model.init_cfg == dict(
            type='UPDETRPretrained',
            checkpoint='work_dirs/pretrain_in1k/epoch_60.pth',
            keep_classifier=True)
        assert model.backbone.init_cfg is None
    else:
        assert model.get('init_cfg') is None
        assert model.backbone.init_cfg.type == 'Pretrained'


def test_data():
    cfg = _load('updetr/oneshot_voc0712_300e.py')
    train = cfg.train_dataloader.dataset
    assert train.type == 'OneShotVOCDataset'
    assert train.unseen_classes == ('aeroplane', 'cat', 'cow', 'sheep')
    assert [d.data_prefix.sub_data_root
            for d in train.dataset.datasets] == ['VOC2007/', 'VOC2012/']
    assert [t.type for t in train.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'LoadOneShotQuery',
        'RandomFlip', 'RandomChoice', 'PackUPDETRInputs'
    ]
    assert train.pipeline[2].augment and train.pipeline[2].patch_size == 128
    test = cfg.test_dataloader.dataset
    assert test.test_mode and test.num_draws == 5
    assert test.dataset.ann_file == 'VOC2007/ImageSets/Main/test.txt'
    query = [t for t in test.pipeline if t.type == 'LoadOneShotQuery'][0]
    assert not query.augment
    pack = test.pipeline[-1]
    assert {'oneshot_class', 'oneshot_draw'} <= set(pack.meta_keys)
    assert cfg.test_evaluator.type == 'OneShotVOCMetric'
    assert cfg.test_evaluator.iou_thr == 0.5


def _query_loaders(cfg):
    return [
        t for loader in (cfg.train_dataloader, cfg.val_dataloader,
                         cfg.test_dataloader) for t in loader.dataset.pipeline
        if t.type == 'LoadOneShotQuery'
    ]


@pytest.mark.parametrize('name', ONESHOT)
def test_coae_protocol(name):
    """Table 3 compares with CoAE: its pool, crop, class draw and AP."""
    cfg = _load(name)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        assert loader.dataset.query_min_size == 0
        assert loader.dataset.query_exclude_difficult is False
    assert cfg.train_dataloader.dataset.class_sampling == 'inverse_frequency'
    loaders = _query_loaders(cfg)
    assert len(loaders) == 3 and all(t.pad_to_square for t in loaders)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.eval_mode == '11points'


#: The README's options for our easier protocol (evaluation, training).
OURS_TEST = ('test_dataloader.dataset.query_exclude_difficult=True '
             'test_dataloader.dataset.query_min_size=32 '
             'test_dataloader.dataset.pipeline.3.pad_to_square=False '
             'test_evaluator.eval_mode=area')
OURS_TRAIN = ('train_dataloader.dataset.query_exclude_difficult=True '
              'train_dataloader.dataset.query_min_size=32 '
              'train_dataloader.dataset.class_sampling=uniform '
              'train_dataloader.dataset.pipeline.2.pad_to_square=False')


def test_readme_options_give_our_protocol():
    cfg = _load('updetr/oneshot_voc0712_300e.py')
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(['--cfg-options'] +
                             (OURS_TEST + ' ' + OURS_TRAIN).split())
    cfg.merge_from_dict(args.cfg_options)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.query_min_size == 32
        assert loader.dataset.query_exclude_difficult is True
    assert cfg.train_dataloader.dataset.class_sampling == 'uniform'
    assert cfg.test_evaluator.eval_mode == 'area'
    train, val, test = _query_loaders(cfg)
    assert train.pad_to_square is False and test.pad_to_square is False
    assert val.pad_to_square is True  # validation while training: CoAE's
    readme = (REPO / 'README.md').read_text()
    # The README gives them (commands with line continuations).
    words = ' '.join(readme.replace('\\\n', ' ').split())
    assert OURS_TEST in words and OURS_TRAIN in words


def test_optimizer_lrs_of_the_tiny_model():
    cfg = get_tiny_cfg('updetr/oneshot_voc0712_150e.py', num_patches=1)
    cfg.model.init_cfg = None
    model = MODELS.build(copy.deepcopy(cfg.model))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {
        names[id(p)]: g['lr']
        for g in optim_wrapper.optimizer.param_groups
        for p in g['params'] if p.requires_grad
    }
    assert {lr for n, lr in lrs.items() if n.startswith('backbone.')} == {5e-5}
    assert lrs['patch2query.weight'] == 1e-4
    assert lrs['bbox_head.fc_cls.weight'] == 1e-4
    assert 'backbone.layer4.1.conv2.weight' in lrs
