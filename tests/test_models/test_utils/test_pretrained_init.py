"""Fine-tuning from a pre-training checkpoint: ``UPDETRPretrained``."""
import re

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MMLogger

from mmdet_updetr.testing import get_tiny_cfg

PRETEXT_KEYS = [
    'patch2query.weight', 'patch2query.bias',
    'bbox_head.feature_align.layers.0.weight',
    'bbox_head.feature_align.layers.0.bias',
    'bbox_head.feature_align.layers.1.weight',
    'bbox_head.feature_align.layers.1.bias'
]


def finetune_model_cfg(checkpoint, **init_args):
    """The VOC fine-tuning model (DETRHead, 20 classes), shrunk as the tiny
    pre-training run's, starting from ``checkpoint``."""
    model = get_tiny_cfg('updetr/finetune_voc0712_150e.py').model
    model.init_cfg = dict(
        type='UPDETRPretrained', checkpoint=checkpoint, **init_args)
    return model


def load_state_dict(path):
    return torch.load(path, weights_only=True)['state_dict']


def log_of(tmp_path, name):
    """A fresh current MMLogger writing to a file; returns the file."""
    log_file = tmp_path / f'{name}.log'
    MMLogger.get_instance(name, log_file=str(log_file), log_level='INFO')
    return log_file


def test_finetune_init_loads_drops_and_logs(tiny_pretrain_checkpoint,
                                            tmp_path):
    ckpt = load_state_dict(tiny_pretrain_checkpoint)
    log_file = log_of(tmp_path, 'finetune_init')
    model = MODELS.build(finetune_model_cfg(tiny_pretrain_checkpoint))
    model.init_weights()
    ours = model.state_dict()
    # Everything but the classifier comes from the checkpoint, including
    # the transformer that DETR.init_weights re-draws (xavier) first.
    for key, value in ours.items():
        if key.startswith('bbox_head.fc_cls.'):
            continue
        assert torch.equal(value, ckpt[key]), key
    assert ours['bbox_head.fc_cls.weight'].shape == (21, 32)
    assert not any(k.startswith('patch2query') for k in ours)
    log = log_file.read_text()
    dropped = re.findall(r'\| dropped \| (\S+) \|', log)
    new = re.findall(r'\| newly initialised \| (\S+) \|', log)
    # Exactly the pretext keys are dropped; the 2-way classifier is
    # replaced by a new one.
    assert sorted(dropped) == sorted(PRETEXT_KEYS)
    assert new == ['bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias']
    loaded = re.search(r'\| loaded \((\d+) keys\) \|', log)
    assert int(loaded.group(1)) == len(ours) - 2


def test_keep_classifier_for_one_shot(tiny_pretrain_checkpoint, tmp_path):
    ckpt = load_state_dict(tiny_pretrain_checkpoint)
    log_file = log_of(tmp_path, 'oneshot_init')
    cfg = get_tiny_cfg('updetr/pretrain_demo_cpu.py', num_patches=1).model
    cfg.bbox_head.loss_rec = None
    cfg.init_cfg = dict(
        type='UPDETRPretrained',
        checkpoint=tiny_pretrain_checkpoint,
        keep_classifier=True)
    model = MODELS.build(cfg)
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt[key]), key
    dropped = re.findall(r'\| dropped \| (\S+) \|', log_file.read_text())
    assert sorted(dropped) == sorted(PRETEXT_KEYS[2:])


@pytest.mark.parametrize('change, message', [
    (lambda m: [
        m.encoder.update(normalize_before=False),
        m.decoder.update(normalize_before=False)
    ], 'the checkpoint is pre-norm'),
    (lambda m: m.encoder.update(num_layers=2),
     'the checkpoint has 1 encoder layers, this model 2'),
    (lambda m: m.update(num_queries=20),
     r"query_embedding.weight: checkpoint \(10, 32\), model \(20, 32\)"),
])
def test_mismatched_checkpoint_explains(tiny_pretrain_checkpoint, change,
                                        message):
    cfg = finetune_model_cfg(tiny_pretrain_checkpoint)
    change(cfg)
    cfg.test_cfg.max_per_img = cfg.num_queries
    model = MODELS.build(cfg)
    with pytest.raises(ValueError, match=message) as err:
        model.init_weights()
    assert tiny_pretrain_checkpoint in str(err.value)


def test_post_norm_checkpoint_into_pre_norm(tiny_pretrain_checkpoint,
                                            tmp_path):
    ckpt = load_state_dict(tiny_pretrain_checkpoint)
    post_norm = {
        k: v
        for k, v in ckpt.items() if not k.startswith('encoder.post_norm')
    }
    path = str(tmp_path / 'post_norm.pth')
    torch.save({'state_dict': post_norm}, path)
    model = MODELS.build(finetune_model_cfg(path))
    with pytest.raises(ValueError, match='the checkpoint is post-norm'):
        model.init_weights()


def test_not_a_state_dict(tmp_path):
    path = str(tmp_path / 'odd.pth')
    torch.save({'model': {'args': 'not a tensor'}}, path)
    model = MODELS.build(finetune_model_cfg(path))
    with pytest.raises(ValueError, match='model_converters'):
        model.init_weights()
