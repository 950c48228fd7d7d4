"""Tests of ``tools/analysis_tools/benchmark_pretrain.py``.

Its ``main`` runs on a tiny pre-training config for 2 timed iterations on
small images; the figures it returns and prints must be positive and
finite, and the iterations must really train the model.
"""
import importlib.util
import math
from pathlib import Path

import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmdet_updetr.testing import get_tiny_cfg

REPO = Path(__file__).resolve().parents[2]
BATCH_SIZE, NUM_PATCHES = 2, 2


@pytest.fixture(scope='module')
def tool():
    """The tool's module, loaded from its file (``tools/analysis_tools``
    is no package)."""
    path = REPO / 'tools' / 'analysis_tools' / 'benchmark_pretrain.py'
    spec = importlib.util.spec_from_file_location('benchmark_pretrain', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_config(tmp_path) -> str:
    """The R50 pre-training config with a tiny model, as a file."""
    cfg = get_tiny_cfg('updetr/pretrain_in1k.py', num_patches=NUM_PATCHES)
    # A checkpoint that is absent: the tool must not try to load it.
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'absent.pth'))
    path = tmp_path / 'tiny_pretrain.py'
    cfg.dump(str(path))
    return str(path)


KEYS = {
    'sec_per_iter', 'sec_per_iter_std', 'sec_per_iter_min', 'imgs_per_sec',
    'peak_mem_mib', 'mem_before_mib', 'syncs_per_iter', 'params_m',
    'trainable_params_m'
}


def test_benchmark_pretrain_main(tool, tiny_config, capsys):
    runs = tool.main([
        tiny_config, '--batch-size',
        str(BATCH_SIZE), '--iters', '2', '--warmup', '1', '--device', 'cpu',
        '--img-size', '96', '128', '--amp', '--reference'
    ])
    assert list(runs) == ['fp32', 'amp', 'reference (re-impl.)']
    for results in runs.values():
        assert set(results) == KEYS
        for name, value in results.items():
            assert math.isfinite(value) and value >= 0, name
            assert value > 0 or name == 'sec_per_iter_std', name
        assert results['sec_per_iter_min'] <= results['sec_per_iter']
        expected = BATCH_SIZE / results['sec_per_iter']
        assert results['imgs_per_sec'] == pytest.approx(expected)
        assert results['peak_mem_mib'] >= results['mem_before_mib']
        # The CNN is frozen in pre-training: fewer trainable parameters.
        assert results['trainable_params_m'] < results['params_m']
        # At least the Hungarian matching's cost matrix goes to the host.
        assert results['syncs_per_iter'] >= 1
    # The re-implementation at the same shape: as many trainable
    # parameters, but for its 3-way classifier (ours is 2-way).
    assert runs['reference (re-impl.)']['trainable_params_m'] == \
        pytest.approx(runs['fp32']['trainable_params_m'], rel=0.01)

    out = capsys.readouterr().out
    assert 'backbone init_cfg' in out and 'set to None' in out
    for results in runs.values():
        assert f'{results["sec_per_iter"]:.3f}' in out
        assert f'{results["imgs_per_sec"]:.2f}' in out
    assert 'peak RSS' in out and '96 x 128' in out
    ratio = runs['amp']['sec_per_iter'] / runs['reference (re-impl.)'][
        'sec_per_iter']
    assert 'time vs reference' in out and f'{ratio:.2f}x' in out


def test_finetune_config_times_detection_batches(tool, tmp_path, capsys):
    cfg = get_tiny_cfg('updetr/finetune_voc0712_150e.py')
    cfg.model.init_cfg = None
    path = tmp_path / 'tiny_finetune.py'
    cfg.dump(str(path))
    runs = tool.main([
        str(path), '--iters', '1', '--warmup', '0', '--device', 'cpu',
        '--img-size', '64', '96', '--num-boxes', '3'
    ])
    assert list(runs) == ['fp32'] and set(runs['fp32']) == KEYS
    # Fine-tuning trains the CNN (but its stem and first stage).
    assert runs['fp32']['trainable_params_m'] > 11
    assert '- / 10' in capsys.readouterr().out
    with pytest.raises(ValueError, match='pre-training config'):
        tool.main([str(path), '--reference', '--device', 'cpu'])


def test_make_det_batch_form(tool):
    pack = TRANSFORMS.build(dict(type='PackDetInputs'))
    batch = tool.make_det_batch(pack, 2, (50, 70), 4, 20)
    for img, sample in zip(batch['inputs'], batch['data_samples']):
        assert img.shape == (3, 50, 70)
        boxes = sample.gt_instances.bboxes.tensor
        assert boxes.shape == (4, 4)
        assert (boxes[:, 2:] - boxes[:, :2] > 0).all()
        assert (boxes[:, 2] <= 70).all() and (boxes[:, 3] <= 50).all()
        labels = sample.gt_instances.labels
        assert ((labels >= 0) & (labels < 20)).all()


def test_count_syncs_counts_the_calls_that_wait_for_a_device(tool):
    x = torch.arange(4.)
    with tool.count_syncs('cpu') as counts:
        x.sum().item()
        (x > 1).nonzero()
        torch.nonzero(x)
        bool(x[0] > 0)
        x.tolist()
        x + 1  # no sync
    assert counts == dict(item=1, nonzero=2, __bool__=1, tolist=1, total=5)
    # Patched only inside the context.
    assert torch.Tensor.item is torch._C.TensorBase.item


def test_make_batch_form(tool, tiny_config):
    """Synthetic batches: images of the size asked, M patches of the
    configured size inside them, one box per patch."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(tiny_config)
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='QueryPatchTransform', num_patches=7, patch_size=40)
    ]
    patch_transform = tool.build_patch_transform(cfg, NUM_PATCHES)
    pack = TRANSFORMS.build(dict(type='PackUPDETRInputs'))
    batch = tool.make_batch(patch_transform, pack, 3, (50, 70))
    assert len(batch['inputs']) == 3
    for img, sample in zip(batch['inputs'], batch['data_samples']):
        assert img.shape == (3, 50, 70) and img.dtype == torch.uint8
        assert sample.query_patches.shape == (NUM_PATCHES, 3, 40, 40)
        boxes = sample.gt_instances.bboxes.tensor
        assert boxes.shape == (NUM_PATCHES, 4)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 70).all()
        assert (boxes[:, 3] <= 50).all()
        assert sample.query_patch_aug.shape[0] == NUM_PATCHES


def test_train_step_trains(tool, tiny_config):
    """The timed iterations run the optimizer: the weights change."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(tiny_config)
    model = tool.build_model(cfg, 'cpu')
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.patch2query.weight.detach().clone()
    patch_transform = tool.build_patch_transform(cfg, NUM_PATCHES)
    pack = TRANSFORMS.build(dict(type='PackUPDETRInputs'))

    def next_batch() -> dict:
        return tool.make_batch(patch_transform, pack, 1, (64, 80))

    seconds = tool.time_iterations(model, optim_wrapper, next_batch, 2, 'cpu')
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert not torch.equal(before, model.patch2query.weight)
