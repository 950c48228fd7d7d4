"""The detection fine-tuning configs: recipe, shared architecture, optimizer.
"""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmdet_updetr.testing import (check_finetune_recipe, get_config_path,
                                  get_tiny_cfg)

DETECTION = [
    f'updetr/{role}_{data}_{epochs}e.py' for role in ('finetune', 'detr')
    for data in ('voc0712', 'coco') for epochs in (150, 300)
]
ALL = DETECTION + ['updetr/finetune_custom_coco.py']


def _load(name):
    return Config.fromfile(get_config_path(name))


@pytest.fixture(scope='module')
def pretrain_model():
    return _load('updetr/pretrain_in1k.py').model


@pytest.mark.parametrize('name', ALL)
def test_architecture_is_the_pretraining_one(name, pretrain_model):
    """Transformer, queries, neck and CNN come from the pre-training model
    config; only the pretext and the head differ."""
    model = _load(name).model
    assert model.type == 'PreNormDETR'
    pretext = ('num_patches', 'patch_feat_dims', 'mask_ratio',
               'freeze_backbone', 'query_shuffle')
    assert not set(pretext) & set(model) and set(pretext) <= set(
        pretrain_model)
    for key in ('encoder', 'neck', 'positional_encoding', 'num_queries'):
        assert model[key] == pretrain_model[key], key
    assert model.decoder.type == 'PreNormDetrTransformerDecoder'
    decoder = dict(model.decoder, type='GroupMaskedDecoder')
    assert decoder == pretrain_model.decoder
    assert model.encoder.normalize_before and model.decoder.normalize_before
    backbone = {k: v for k, v in model.backbone.items() if k != 'init_cfg'}
    assert backbone == {
        k: v
        for k, v in pretrain_model.backbone.items() if k != 'init_cfg'
    }
    assert model.bbox_head.type == 'DETRHead'
    assert 'loss_rec' not in model.bbox_head


@pytest.mark.parametrize('name', DETECTION)
def test_recipe(name):
    cfg = _load(name)
    check_finetune_recipe(cfg, name)
    assert cfg.model.bbox_head.num_classes == (20 if 'voc' in name else 80)
    assert cfg.model.test_cfg.max_per_img == 100
    if name.startswith('updetr/finetune'):
        assert cfg.model.init_cfg.type == 'UPDETRPretrained'
        assert cfg.model.backbone.init_cfg is None
    else:
        assert cfg.model.get('init_cfg') is None
        # The paper's baselines: "DETR (SwAV CNN)".
        assert cfg.model.backbone.init_cfg.checkpoint == \
            'checkpoints/swav_800ep_pretrain.pth.tar'


def test_data():
    voc = _load('updetr/detr_voc0712_150e.py')
    years = [
        d.data_prefix.sub_data_root
        for d in voc.train_dataloader.dataset.datasets
    ]
    assert years == ['VOC2007/', 'VOC2012/']
    test_set = voc.test_dataloader.dataset
    assert test_set.ann_file == 'VOC2007/ImageSets/Main/test.txt'
    assert [m.type for m in voc.test_evaluator] == ['CocoMetric', 'VOCMetric']
    coco = _load('updetr/detr_coco_150e.py')
    assert coco.train_dataloader.dataset.ann_file.endswith(
        'instances_train2017.json')
    assert coco.test_evaluator.ann_file.endswith('instances_val2017.json')
    # DETR's augmentation: flip, then multi-scale or resize-crop-resize.
    for cfg in (voc.train_dataloader.dataset.datasets[0],
                coco.train_dataloader.dataset):
        types = [t.type for t in cfg.pipeline]
        assert types == [
            'LoadImageFromFile', 'LoadAnnotations', 'RandomFlip',
            'RandomChoice', 'PackDetInputs'
        ]
        crop = cfg.pipeline[3].transforms[1][1]
        assert crop.crop_size == (384, 600)
        scales = cfg.pipeline[3].transforms[0][0].scales
        assert scales == [(s, 1333) for s in range(480, 801, 32)]


def test_full_r50_model_parameters():
    """DETR-R50's size: the reference counts 41,302,368 trainable
    parameters with 92 classes, post-norm; ours: 81 classes (-11 x 257),
    pre-norm (+512, the encoder's final norm)."""
    model = MODELS.build(_load('updetr/detr_coco_150e.py').model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 41_302_368 - 11 * 257 + 512


def test_optimizer_has_two_learning_rates():
    cfg = get_tiny_cfg('updetr/finetune_voc0712_150e.py')
    cfg.model.init_cfg = None
    model = MODELS.build(copy.deepcopy(cfg.model))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {}
    for group in optim_wrapper.optimizer.param_groups:
        assert group['weight_decay'] == pytest.approx(1e-4)
        for param in group['params']:
            if param.requires_grad:
                lrs[names[id(param)]] = group['lr']
    backbone = {lr for n, lr in lrs.items() if n.startswith('backbone.')}
    others = {lr for n, lr in lrs.items() if not n.startswith('backbone.')}
    assert backbone == {5e-5}
    assert others == {1e-4}
    # layer2-4 train (stem and layer1 frozen, as in DETR); so does the head.
    assert 'backbone.layer4.1.conv2.weight' in lrs
    assert 'backbone.layer1.0.conv1.weight' not in lrs
    assert 'bbox_head.fc_cls.weight' in lrs
    assert len(lrs) == sum(p.requires_grad for p in model.parameters())
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)
