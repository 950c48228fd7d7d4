"""Killed runs resume exactly (issue 15): real processes, killed with SIGKILL.

The tiny pre-training config (6 photos, 2 per batch: 3 iterations per epoch,
2 epochs, seed 0) runs through ``tools/train.py`` with the configs' hooks
(``ResumableCheckpointHook`` with ``iter_interval=2``: ``iter_2.pth`` and
``iter_4.pth`` inside the epochs, ``epoch_{1,2}.pth`` at their ends). A
hook that the test writes kills the process with SIGKILL before a given
iteration, or while the checkpoint of a given iteration is being saved
(after its temporary file is written, before the rename). The run is then
resumed with ``--resume`` and must end with the same weights, bit for bit,
as the uninterrupted run, and log the same losses at every iteration.
"""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmdet_updetr.testing import tiny_pretrain_cfg

REPO = Path(__file__).resolve().parents[2]
ITERS_PER_EPOCH = 3
MAX_EPOCHS = 2

KILL_HOOK = '''\
"""SIGKILL the process at a chosen point, for test_exact_resume.py."""
import os
import signal

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

import mmdet_updetr.engine.atomic_backend as atomic_backend


def _kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillHook(Hook):
    """Kill rank 0 before iteration ``at_iter + 1`` or, with
    ``during_save``, between writing and renaming the checkpoint of
    iteration ``at_iter``."""

    def __init__(self, at_iter, during_save=False):
        self.at_iter = at_iter
        self.during_save = during_save

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if (not self.during_save and runner.iter == self.at_iter
                and runner.rank == 0):
            _kill()

    def before_save_checkpoint(self, runner, checkpoint):
        if self.during_save and checkpoint['meta']['iter'] == self.at_iter:
            atomic_backend.os.replace = _kill
'''


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def _write_config(path: Path,
                  name: str,
                  kill=None,
                  num_workers=0,
                  world_size=1) -> str:
    """The tiny config, optionally with the kill hook; returns its path."""
    cfg = tiny_pretrain_cfg(path, max_epochs=MAX_EPOCHS, num_images=6)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'INFO'
    cfg.custom_imports = dict(
        imports=['mmdet_updetr', 'kill_hook'], allow_failed_imports=False)
    cfg.default_hooks.checkpoint = dict(
        type='ResumableCheckpointHook',
        interval=1,
        iter_interval=2 if world_size == 1 else 1)
    cfg.train_dataloader.update(
        num_workers=num_workers, persistent_workers=num_workers > 0)
    if kill is not None:
        cfg.custom_hooks = cfg.custom_hooks + [dict(type='KillHook', **kill)]
    config = str(path / f'{name}.py')
    cfg.dump(config)
    return config


def _train(path: Path,
           config: str,
           work_dir: str,
           *args: str,
           world_size: int = 1) -> subprocess.CompletedProcess:
    """``tools/train.py`` (or ``tools/dist_train.sh``) in ``path``."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=_free_port())
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO), str(path), env.get('PYTHONPATH', '')])
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    if world_size == 1:
        cmd = [sys.executable, str(REPO / 'tools' / 'train.py')]
    else:
        cmd = ['bash', str(REPO / 'tools' / 'dist_train.sh')]
    cmd += [config] + ([str(world_size)] if world_size > 1 else [])
    return subprocess.run(
        cmd + ['--work-dir', work_dir, *args],
        cwd=path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600)


def _losses(work_dir: str) -> dict:
    """``{iteration: {loss name: value}}`` from every log of the work dir
    (an iteration logged by two runs must agree)."""
    logged = {}
    for log in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        for line in open(log):
            entry = json.loads(line)
            losses = {k: v for k, v in entry.items() if k.startswith('loss')}
            if losses:
                assert logged.setdefault(entry['iter'], losses) == losses
    return logged


def _weights(work_dir: str, name: str = 'epoch_2.pth') -> dict:
    return torch.load(
        osp.join(work_dir, name), map_location='cpu',
        weights_only=True)['state_dict']


def max_weight_difference(first: dict, second: dict) -> float:
    """The largest absolute difference between two state dicts."""
    assert first.keys() == second.keys()
    return max((first[k].double() - second[k].double()).abs().max().item()
               for k in first if first[k].numel())


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('exact_resume')
    (path / 'kill_hook.py').write_text(KILL_HOOK)
    return path


@pytest.fixture(scope='module')
def reference(run_dir) -> str:
    """The uninterrupted run's work dir."""
    work_dir = str(run_dir / 'reference')
    proc = _train(run_dir, _write_config(run_dir, 'reference'), work_dir)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert sorted(_losses(work_dir)) == list(range(1, 7))
    return work_dir


def _kill_and_resume(run_dir, name, kill, num_workers=0, resume=()):
    """Run with the kill hook (must die by SIGKILL), then resume."""
    work_dir = str(run_dir / name)
    killed = _train(run_dir,
                    _write_config(run_dir, name + '_kill', kill, num_workers),
                    work_dir)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-5000:]
    resumed = _train(run_dir, _write_config(run_dir, name, None, num_workers),
                     work_dir, '--resume', *resume)
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    return work_dir, killed, resumed


def test_killed_mid_epoch_resumes_exactly(run_dir, reference):
    """Killed before iteration 5 (the 2nd of epoch 2); ``iter_4.pth`` is
    the newest checkpoint: the resumed run skips the epoch's first batch
    and trains iterations 5 and 6 only."""
    work_dir, killed, resumed = _kill_and_resume(run_dir, 'mid_epoch',
                                                 dict(at_iter=4))
    assert 'first 1 of 3 batches are skipped' in resumed.stdout
    assert 'Random state of rank 0 restored' in resumed.stdout
    assert max_weight_difference(_weights(reference),
                                 _weights(work_dir)) == 0.0
    assert _losses(work_dir) == _losses(reference)
    resumed_logs = [
        log for log in glob.glob(
            osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
        if '"iter": 6' in open(log).read()
    ]
    assert len(resumed_logs) == 1
    entries = [json.loads(line) for line in open(resumed_logs[0])]
    # (validation lines carry 'step', not 'iter')
    iters = [entry['iter'] for entry in entries if 'iter' in entry]
    assert iters == [5, 6]


def test_two_workers_across_epoch_boundary(run_dir, reference):
    """With 2 persistent data-loader workers, killed before iteration 3
    and resumed from ``iter_2.pth``: the resumed run finishes epoch 1 and
    trains epoch 2, and matches the reference, which loaded its data in
    the main process (each sample draws from its own stream)."""
    work_dir, _, resumed = _kill_and_resume(
        run_dir, 'workers', dict(at_iter=2), num_workers=2)
    assert 'first 2 of 3 batches are skipped' in resumed.stdout
    assert max_weight_difference(_weights(reference),
                                 _weights(work_dir)) == 0.0
    assert _losses(work_dir) == _losses(reference)


def test_killed_while_saving_resumes_from_the_previous_checkpoint(
        run_dir, reference):
    """Killed between writing ``iter_4.pth``'s temporary file and renaming
    it: no ``iter_4.pth`` exists, ``last_checkpoint`` still names
    ``epoch_1.pth``, and ``--resume`` continues from there exactly."""
    work_dir = str(run_dir / 'during_save')
    killed = _train(
        run_dir,
        _write_config(run_dir, 'during_save_kill',
                      dict(at_iter=4, during_save=True)), work_dir)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-5000:]
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))
    assert len(glob.glob(osp.join(work_dir, '.tmp-iter_4.pth.*'))) == 1
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'epoch_1.pth')
    resumed = _train(run_dir, _write_config(run_dir, 'during_save'), work_dir,
                     '--resume')
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    assert max_weight_difference(_weights(reference),
                                 _weights(work_dir)) == 0.0
    assert _losses(work_dir) == _losses(reference)
    assert not glob.glob(osp.join(work_dir, '.tmp-*'))  # cleaned up


def test_truncated_checkpoint_is_refused_with_its_name(run_dir, reference):
    """A checkpoint cut short, given to ``--resume``: a clear error naming
    the file, before anything is loaded."""
    truncated = run_dir / 'truncated.pth'
    data = Path(reference, 'iter_4.pth').read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    work_dir = str(run_dir / 'truncated')
    proc = _train(run_dir, _write_config(run_dir, 'truncated'), work_dir,
                  '--resume', str(truncated))
    assert proc.returncode != 0
    assert f'Cannot resume from {truncated}: it is truncated' in proc.stdout


def test_gloo_two_processes_resume_exactly(run_dir):
    """2 processes (gloo), 2 iterations per epoch: killed before the last
    iteration, resumed from ``iter_3.pth``; same weights and losses as the
    uninterrupted 2-process run."""
    runs = {}
    for name, kill in (('gloo_reference', None), ('gloo', dict(at_iter=3))):
        work_dir = str(run_dir / name)
        config = _write_config(run_dir, name + '_first', kill, world_size=2)
        first = _train(run_dir, config, work_dir, world_size=2)
        if kill is None:
            assert first.returncode == 0, first.stdout[-5000:]
        else:
            assert first.returncode != 0
            assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
            config = _write_config(run_dir, name, None, world_size=2)
            resumed = _train(
                run_dir, config, work_dir, '--resume', world_size=2)
            assert resumed.returncode == 0, resumed.stdout[-5000:]
            assert 'first 1 of 2 batches are skipped' in resumed.stdout
        runs[name] = work_dir
    assert max_weight_difference(
        _weights(runs['gloo_reference']), _weights(runs['gloo'])) == 0.0
    losses = _losses(runs['gloo'])
    assert sorted(losses) == [1, 2, 3, 4]
    assert losses == _losses(runs['gloo_reference'])
