"""Resume on torch >= 2.6 (weights_only loading), refusal of strangers'
checkpoints, and safe checkpoints as an explicit step (``conftest.py``
takes it for the tests, as the tools do)."""
import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import Runner, load_checkpoint

from demo.query_patch_demo import build_pipeline
from mmdet_updetr.engine import SAFE_GLOBALS
from mmdet_updetr.testing import tiny_pretrain_cfg
from mmdet_updetr.visualization import draw_query_patch_detection


class _Snapshot(Hook):
    """Records the state the runner starts training from."""

    def before_train(self, runner) -> None:
        model = runner.model
        self.iter, self.epoch = runner.iter, runner.epoch
        self.weights = {k: v.clone() for k, v in model.state_dict().items()}
        self.optim = copy.deepcopy(runner.optim_wrapper.state_dict())


def _run(cfg, hook=None):
    runner = Runner.from_cfg(cfg)
    if hook is not None:
        runner.register_hook(hook)
    runner.train()
    return runner


def test_train_one_epoch_then_resume_to_two(tmp_path):
    cfg = tiny_pretrain_cfg(tmp_path, max_epochs=1)
    first = _run(cfg)
    ckpt_path = os.path.join(cfg.work_dir, 'epoch_1.pth')
    iters_per_epoch = len(first.train_dataloader)
    assert first.iter == iters_per_epoch
    ckpt = torch.load(ckpt_path, weights_only=True)  # no UnpicklingError

    cfg = tiny_pretrain_cfg(tmp_path, max_epochs=2)
    cfg.resume, cfg.load_from = True, ckpt_path
    snap = _Snapshot()
    second = _run(cfg, snap)
    # The run continued from the checkpoint: iteration count, weights and
    # the AdamW moments are those of epoch 1.
    assert (snap.iter, snap.epoch) == (iters_per_epoch, 1)
    for key, value in ckpt['state_dict'].items():
        assert torch.equal(snap.weights[key], value), key
    saved, resumed = ckpt['optimizer']['state'], snap.optim['state']
    assert saved.keys() == resumed.keys() and len(saved) > 0
    for idx in saved:
        for name in ('exp_avg', 'exp_avg_sq', 'step'):
            assert torch.equal(saved[idx][name], resumed[idx][name])
    assert second.iter == 2 * iters_per_epoch and second.epoch == 2
    final = torch.load(
        os.path.join(cfg.work_dir, 'epoch_2.pth'), weights_only=True)
    assert final['meta']['iter'] == 2 * iters_per_epoch
    changed = [
        k for k, v in final['state_dict'].items()
        if not torch.equal(v, ckpt['state_dict'][k])
    ]
    assert any(k.startswith('decoder.') for k in changed)

    # The trained model reads out one box and score per query patch (the
    # paper's Fig. 7), and the demo draws it beside the patches.
    pipeline = build_pipeline(cfg, num_patches=2)
    img_path = first.train_dataloader.dataset[0]['data_samples'].img_path
    data = pipeline(dict(img_path=img_path, img_id=0))
    result = second.model.test_step(pseudo_collate([data]))[0]
    group = result.pred_group_instances
    assert group.labels.tolist() == [0, 1]
    assert torch.all((group.scores > 0) & (group.scores < 1))
    img = cv2.imread(img_path)
    h, w = img.shape[:2]
    assert torch.all(group.bboxes[:, 2] <= w) and torch.all(
        group.bboxes[:, 3] <= h)
    gt = data['data_samples'].gt_instances.bboxes.numpy()
    canvas = draw_query_patch_detection(
        img,
        group.bboxes.detach().numpy(), group.scores.tolist(), gt,
        data['data_samples'].query_patches.numpy().transpose(0, 2, 3, 1))
    assert canvas.shape[0] == h and canvas.shape[1] > w


def test_message_hub_round_trip_without_unsafe_globals(tmp_path):
    hub = MessageHub.get_instance('ckpt-test')
    hub.update_scalar('train/loss', 2.0)
    hub.update_scalar('train/loss', 4.0)
    import numpy as np
    hub.update_info('eta', np.float64(12.5))
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': hub.state_dict()}, path)
    state = torch.load(path, weights_only=True)['message_hub']
    buffer = state['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == 3.0 and buffer.current() == 4.0
    assert type(state['runtime_info']['eta']) is float
    assert set(SAFE_GLOBALS) == {
        HistoryBuffer, __import__('collections').Counter
    }


class _Payload:
    """An object that runs a command when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_checkpoint_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Payload(marker)}, path)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(pickle.UnpicklingError, match='os.system|system'):
        load_checkpoint(model, str(path))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the default stays weights_only
    assert not marker.exists()


#: Prints, as JSON, what ``enable_safe_checkpoints`` changes: before and
#: after ``import mmdet_updetr`` (and its registration into mmdet), and
#: after the call. The baseline imports what the package builds on first
#: (torch allow-lists its own classes as its modules load).
_PROBE = """
import json
import torch
import mmdet.datasets, mmdet.engine, mmdet.evaluation, mmdet.models
import mmengine.runner
from mmengine.logging import HistoryBuffer, MessageHub

def name(obj):
    if isinstance(obj, tuple):  # (global, the name it is allowed under)
        obj = obj[0]
    return '%s.%s' % (getattr(obj, '__module__', None), obj.__qualname__)

def state():
    return dict(
        getstate=name(HistoryBuffer.__getstate__),
        setstate=name(HistoryBuffer.__setstate__),
        state_dict=name(MessageHub.state_dict),
        safe_globals=sorted(
            map(name, torch.serialization.get_safe_globals())))

states = dict(fresh=state())
import mmdet_updetr
from mmdet.utils import register_all_modules
register_all_modules()
states['imported'] = state()
from mmdet_updetr.engine import enable_safe_checkpoints
enable_safe_checkpoints()
states['enabled'] = state()
print(json.dumps(states))
"""


def test_import_patches_nothing_until_the_one_call():
    """In a fresh process: importing the package leaves mmengine's pickling
    and torch's allow-list alone; ``enable_safe_checkpoints()`` sets them."""
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env['PYTHONPATH'] = repo + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run([sys.executable, '-c', _PROBE],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = json.loads(proc.stdout.strip().splitlines()[-1])
    assert states['imported'] == states['fresh']
    ours = 'mmdet_updetr.engine.checkpoint.'
    assert states['enabled']['getstate'] == ours + '_history_getstate'
    assert states['enabled']['setstate'] == ours + '_history_setstate'
    assert states['enabled']['state_dict'] == ours + '_message_hub_state_dict'
    added = set(states['enabled']['safe_globals']) - set(
        states['fresh']['safe_globals'])
    assert added == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'collections.Counter'
    }
