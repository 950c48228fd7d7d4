"""End to end: fine-tune on a tiny VOC set from a tiny pre-training run.

``configs/updetr/finetune_voc0712_150e.py`` with its model shrunk
(``get_tiny_cfg``), its data pointed at a VOC-format set written here (with
DETR's augmentation at small scales), initialised by ``UPDETRPretrained``
from the checkpoint of a tiny pre-training run, trains one epoch (2
iterations), is evaluated (COCO-style and VOC metrics), and its checkpoint
is evaluated again by ``tools/test.py CONFIG CKPT``.
"""
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner

from mmdet_updetr.testing import tiny_voc_finetune_cfg

REPO = Path(__file__).resolve().parents[2]
METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75',
           'pascal_voc/mAP')
PRETEXT_PREFIXES = ('patch2query.', 'bbox_head.feature_align.')


def _table(log_text, kind):
    """Keys in the ``| <kind> | <key> |`` rows of UPDETRPretrained's table."""
    return set(re.findall(rf'\| {kind} \| (\S+) \|', log_text))


@pytest.fixture(scope='module')
def finetuned(tiny_pretrain_checkpoint, tmp_path_factory):
    """Train, then test; returns the runner, its metrics and the config."""
    cfg = tiny_voc_finetune_cfg(
        tmp_path_factory.mktemp('finetune'), tiny_pretrain_checkpoint)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    return runner, metrics, cfg


def test_metrics_present_and_finite(finetuned):
    _, metrics, _ = finetuned
    for key in METRICS:
        assert math.isfinite(metrics[key]) and 0 <= metrics[key] <= 1, key


def test_log_names_the_dropped_pretext_keys(finetuned,
                                            tiny_pretrain_checkpoint):
    runner = finetuned[0]
    log_text = (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()
    pretrain = torch.load(tiny_pretrain_checkpoint, weights_only=True)
    pretext = {
        k
        for k in pretrain['state_dict'] if k.startswith(PRETEXT_PREFIXES)
    }
    assert len(pretext) == 6  # patch2query + 2-layer feature_align
    assert _table(log_text, 'dropped') == pretext
    assert _table(log_text, 'newly initialised') == {
        'bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias'
    }


def test_starts_from_the_pretraining_weights(finetuned,
                                             tiny_pretrain_checkpoint):
    """Two AdamW steps (lr 1e-4) move a weight by well under 1e-2."""
    model = finetuned[0].model
    pretrain = torch.load(
        tiny_pretrain_checkpoint, weights_only=True)['state_dict']
    for key in ('query_embedding.weight', 'encoder.layers.0.ffn.layers.1.'
                'weight', 'bbox_head.fc_reg.bias'):
        ours = model.state_dict()[key]
        assert (ours - pretrain[key]).abs().max() < 1e-2, key
        assert not ours.equal(pretrain[key]), key  # and it trained


def _load_test_tool():
    spec = importlib.util.spec_from_file_location('mmdet_updetr_test_tool',
                                                  REPO / 'tools' / 'test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools_test_evaluates_the_checkpoint(finetuned, tmp_path, monkeypatch):
    """``tools/test.py CONFIG CKPT`` gives the metrics of the trained model
    and, with ``--show-dir``, draws its detections (DetLocalVisualizer)."""
    runner, metrics, cfg = finetuned
    config = tmp_path / 'tiny_finetune_voc.py'
    cfg.dump(str(config))
    work_dir = tmp_path / 'test'
    monkeypatch.setattr(sys, 'argv', [
        'test.py',
        str(config),
        str(Path(cfg.work_dir) / 'epoch_1.pth'), '--work-dir',
        str(work_dir), '--show-dir', 'shown'
    ])
    _load_test_tool().main()
    (json_file, ) = work_dir.glob('*/*.json')
    tested = json.loads(json_file.read_text())
    for key in METRICS:
        assert tested[key] == pytest.approx(metrics[key]), key
    shown = list(work_dir.glob('*/shown/*.jpg'))
    assert len(shown) == 2
