"""``SafeCheckpointHook``: safe checkpoints in runs that other scripts start.

mmengine's ``Runner.train`` / ``val`` / ``test`` call ``before_run`` before
``load_or_resume``: a toy runner records the order, and mmdet's own
``tools/train.py`` (which does not call ``enable_safe_checkpoints``) trains
our tiny pre-training config, which lists the hook, then resumes it in a
fresh process: without the hook, or with the hook acting after the load,
the resume fails with ``UnpicklingError``.
"""
import ast
import glob
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import mmdet
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from mmdet_updetr.engine.hooks import safe_checkpoint_hook
from mmdet_updetr.testing import get_config_path, tiny_pretrain_cfg

REPO = Path(__file__).resolve().parents[3]
HOOK = dict(type='SafeCheckpointHook')


def _top_level_assignments(path: str) -> dict:
    """``{name: source of the value}`` of a config file's assignments."""
    tree = ast.parse(Path(path).read_text())
    return {
        target.id: ast.unparse(node.value)
        for node in tree.body if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name)
    }


def test_every_config_lists_the_hook():
    """Our base runtime config lists the hook; each config inherits it
    from there, through a sibling config (checked in the same loop) or
    directly, and none replaces ``custom_hooks``; parsed, not loaded, to
    stay fast."""
    runtime = get_config_path('_base_/default_runtime.py')
    hooks = _top_level_assignments(runtime)['custom_hooks']
    assert "dict(type='SafeCheckpointHook')" in hooks
    folder = osp.dirname(get_config_path('updetr/pretrain_in1k.py'))
    configs = sorted(glob.glob(osp.join(folder, '*.py')))
    assert len(configs) > 20
    roots = 0
    for path in configs:
        assigned = _top_level_assignments(path)
        # Only extended (pre-training adds its pictures' hook), never
        # replaced.
        hooks = assigned.get('custom_hooks', '_base_.custom_hooks +')
        assert hooks.startswith('_base_.custom_hooks +'), path
        base = ast.literal_eval(assigned['_base_'])
        if isinstance(base, str) and base.startswith('./'):
            assert osp.isfile(osp.join(folder, base)), path
        else:
            roots += 1
            assert '../_base_/default_runtime.py' in base, path
    assert roots == 9


class _ToyModel(BaseModel):
    """y = w x + b on 2-vectors; the loss pulls y to 0."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else list(out)


class _CountMetric(BaseMetric):
    """Counts the predictions."""

    def process(self, data_batch, data_samples) -> None:
        self.results += [1 for _ in data_samples]

    def compute_metrics(self, results) -> dict:
        return dict(count=len(results))


def _toy_runner(work_dir: Path, max_epochs: int = 1, **kwargs) -> Runner:
    data = [dict(inputs=torch.tensor([float(i), 1.])) for i in range(4)]
    loader = DataLoader(data, batch_size=2, collate_fn=pseudo_collate)
    loops = dict(
        train_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        val_dataloader=loader,
        val_cfg=dict(),
        val_evaluator=[_CountMetric()],
        test_dataloader=loader,
        test_cfg=dict(),
        test_evaluator=[_CountMetric()])
    loops.update(kwargs)
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        custom_hooks=[HOOK],
        default_scope='mmdet',
        log_level='WARNING',
        **loops)


@pytest.fixture
def events(monkeypatch):
    """'enable' when the hook takes the step, 'load' when the runner loads
    a checkpoint (``load_checkpoint``, which ``resume`` calls too)."""
    events = []
    monkeypatch.setattr(safe_checkpoint_hook, 'enable_safe_checkpoints',
                        lambda: events.append('enable'))
    load = Runner.load_checkpoint

    def load_and_record(runner, *args, **kwargs):
        events.append('load')
        return load(runner, *args, **kwargs)

    monkeypatch.setattr(Runner, 'load_checkpoint', load_and_record)
    return events


def test_hook_enables_before_the_runner_loads(tmp_path, events):
    _toy_runner(tmp_path / 'train').train()
    assert events == ['enable']
    ckpt = str(tmp_path / 'train' / 'epoch_1.pth')
    assert osp.isfile(ckpt)

    events.clear()
    resumed = _toy_runner(
        tmp_path / 'train', max_epochs=2, resume=True, load_from=ckpt)
    resumed.train()
    assert events == ['enable', 'load']
    assert (resumed.epoch, resumed.iter) == (2, 4)

    for mode in ('val', 'test'):
        events.clear()
        metrics = getattr(_toy_runner(tmp_path / mode, load_from=ckpt), mode)()
        assert metrics == dict(count=4)
        assert events == ['enable', 'load'], mode


def _mmdet_train(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """mmdet's own ``tools/train.py`` in a fresh process."""
    tool = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run([sys.executable, str(tool), *args],
                          cwd=cwd,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)


def test_mmdets_own_train_tool_resumes_our_config(tmp_path):
    configs = {}
    for epochs in (1, 2):
        cfg = tiny_pretrain_cfg(tmp_path, max_epochs=epochs)
        assert HOOK in cfg.custom_hooks  # from configs/updetr/
        configs[epochs] = str(tmp_path / f'tiny_{epochs}e.py')
        cfg.dump(configs[epochs])
    work_dir = cfg.work_dir

    first = _mmdet_train(tmp_path, configs[1])
    assert first.returncode == 0, first.stdout[-3000:]
    # Written with the step taken: it loads without the getattr global.
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=True)
    iters_per_epoch = ckpt['meta']['iter']
    assert ckpt['meta']['epoch'] == 1 and iters_per_epoch > 0

    second = _mmdet_train(tmp_path, configs[2], '--resume', '--cfg-options',
                          'log_level=INFO')
    assert second.returncode == 0, second.stdout[-3000:]
    assert f'resumed epoch: 1, iter: {iters_per_epoch}' in second.stdout
    final = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=True)
    assert final['meta']['iter'] == 2 * iters_per_epoch
