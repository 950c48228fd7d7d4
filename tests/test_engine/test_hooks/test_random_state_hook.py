"""``RandomStateHook``: per-sample data streams, the restore point, and
cuBLAS under deterministic algorithms. (Whole runs killed and resumed:
``tests/test_engine/test_exact_resume.py``.)"""
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmdet_updetr.engine import get_random_state
from mmdet_updetr.engine.hooks import RandomStateHook, SeededFetch


class _RandomDataset:
    """Each sample is a draw of every generator."""

    def __getitem__(self, idx):
        return (idx, float(np.random.rand()), float(torch.rand(1)))


def test_samples_draw_by_epoch_and_index_not_by_batch():
    epoch = torch.zeros((), dtype=torch.int64)
    fetch = SeededFetch(_RandomDataset(), seed=0, epoch=epoch)
    together = fetch([0, 1, 2, 3])
    apart = fetch([2, 3]) + fetch([0, 1])
    assert sorted(together) == sorted(apart)
    epoch.fill_(1)
    assert all(a != b for a, b in zip(fetch([0, 1, 2, 3]), together))


def _runner(iter_):
    return SimpleNamespace(iter=iter_, _resume=True)


def test_state_restored_only_at_the_resumed_iteration():
    hook = RandomStateHook()
    saved = get_random_state()
    expected = float(torch.rand(1))
    checkpoint = dict(
        meta=dict(iter=4),
        rank_states=[dict(RandomStateHook=saved, SkippedFilesHook={})])
    hook.after_load_checkpoint(_runner(4), checkpoint)
    torch.rand(5)
    hook.before_train_iter(_runner(4), 1)
    assert float(torch.rand(1)) == expected
    # A checkpoint loaded to start another run (load_from) is not applied,
    # not even when that run reaches its iteration.
    hook.after_load_checkpoint(_runner(0), checkpoint)
    hook.before_train_iter(_runner(0), 0)
    after = get_random_state()
    hook.before_train_iter(_runner(4), 4)
    assert torch.equal(get_random_state()['torch'], after['torch'])


def test_validation_does_not_shift_the_training_stream():
    hook = RandomStateHook()
    before = get_random_state()
    hook.before_val(None)
    torch.rand(10)
    np.random.rand(10)
    hook.after_val(None)
    assert torch.equal(get_random_state()['torch'], before['torch'])
    assert get_random_state()['numpy'] == before['numpy']


@pytest.mark.parametrize('deterministic', [False, True])
def test_cublas_workspace_set_in_deterministic_mode(monkeypatch,
                                                    deterministic):
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    monkeypatch.setattr(torch, 'are_deterministic_algorithms_enabled',
                        lambda: deterministic)
    RandomStateHook().before_run(None)
    assert os.environ.get('CUBLAS_WORKSPACE_CONFIG') == (
        ':4096:8' if deterministic else None)
