"""``ResumableCheckpointHook``: atomic saves, checkpoints inside epochs,
each rank's state in the checkpoint, resume checks. (Runs killed with
SIGKILL: ``tests/test_engine/test_exact_resume.py``.)"""
import glob
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import Runner

from mmdet_updetr.engine import AtomicLocalBackend, checkpoint_problem
from mmdet_updetr.engine.hooks import ResumableCheckpointHook
from mmdet_updetr.testing import tiny_pretrain_cfg


def test_atomic_put_keeps_the_old_file_when_the_write_fails(
        tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', path)

    def fail(fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', fail)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'new content', path)
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['ckpt.pth']  # no temporary file left
    monkeypatch.undo()
    backend.put(b'new', path)
    assert path.read_bytes() == b'new'


def test_checkpoint_problem(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(1000.))), good)
    data = good.read_bytes()
    assert checkpoint_problem(str(good)) is None
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    assert 'truncated' in checkpoint_problem(str(tmp_path / 'cut.pth'))
    flipped = bytearray(data)
    start = data.index(b'\x00\x00\x80?')  # the float 1.0 of the weights
    flipped[start + 2] ^= 0xFF
    (tmp_path / 'flipped.pth').write_bytes(bytes(flipped))
    assert 'CRC' in checkpoint_problem(str(tmp_path / 'flipped.pth'))
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert 'empty' in checkpoint_problem(str(tmp_path / 'empty.pth'))
    assert 'not exist' in checkpoint_problem(str(tmp_path / 'no.pth'))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """2 epochs of 3 iterations, epoch checkpoints (1 kept) and one every
    2 iterations."""
    cfg = tiny_pretrain_cfg(
        tmp_path_factory.mktemp('ckpt_hook'), max_epochs=2, num_images=6)
    cfg.default_hooks.checkpoint = dict(
        type='ResumableCheckpointHook',
        interval=1,
        iter_interval=2,
        max_keep_ckpts=1)
    Runner.from_cfg(cfg).train()
    return cfg.work_dir


def test_files_of_a_run(run):
    """iter_2, epoch_1, iter_4, epoch_2 were saved; max_keep_ckpts keeps
    one epoch checkpoint and only the newest iter_*.pth is kept."""
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(run, '*.pth')))
    assert names == ['epoch_2.pth', 'iter_4.pth']
    with open(osp.join(run, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(run, 'epoch_2.pth')
    ckpt = torch.load(osp.join(run, 'iter_4.pth'), weights_only=True)
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 4)


def test_each_ranks_state_is_in_the_checkpoint(run):
    ckpt = torch.load(osp.join(run, 'iter_4.pth'), weights_only=True)
    states = ckpt['rank_states']
    assert len(states) == 1  # one process
    assert set(states[0]) == {'RandomStateHook', 'SkippedFilesHook'}
    random_state = states[0]['RandomStateHook']
    assert random_state['torch'].dtype == torch.uint8
    assert len(random_state['numpy'][1]) == 624
    assert states[0]['SkippedFilesHook'] == dict(skips=[])


def _resume_runner(work_dir, load_from=None):
    return SimpleNamespace(
        _resume=True, _load_from=load_from, work_dir=work_dir)


def test_auto_resume_falls_back_to_the_newest_good_checkpoint(tmp_path):
    older, newer = tmp_path / 'epoch_1.pth', tmp_path / 'iter_4.pth'
    torch.save(dict(a=1), older)
    torch.save(dict(a=2), newer)
    os.utime(older, (1, 1))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    runner = _resume_runner(str(tmp_path))
    ResumableCheckpointHook()._check_resume_file(runner)
    assert runner._load_from == str(newer)
    # A truncated newest file is passed over.
    newer.write_bytes(newer.read_bytes()[:50])
    runner = _resume_runner(str(tmp_path))
    ResumableCheckpointHook()._check_resume_file(runner)
    assert runner._load_from == str(older)


def test_a_named_broken_file_is_refused(tmp_path):
    bad = tmp_path / 'iter_4.pth'
    bad.write_bytes(b'PK\x03\x04 cut short')
    with pytest.raises(
            RuntimeError, match=f'Cannot resume from {bad}: it '
            'is truncated'):
        ResumableCheckpointHook()._check_resume_file(
            _resume_runner(str(tmp_path), str(bad)))
