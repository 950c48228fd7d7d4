"""``tools/dist_train.sh`` and ``tools/dist_test.sh`` with 2 CPU processes.

torchrun starts 2 processes that train with gloo. The demo config
(``configs/updetr/pretrain_demo_cpu.py``) trains for 2 iterations, batch 1
per process, on small images. A hook module that the test writes makes each
rank dump its weights before and after training and the ids of the images
it trained on, and print a marker line. The run must exit with 0, both
ranks must report a world size of 2 and a DDP-wrapped model, they must have
trained on different images and still end with the same weights (the
gradients were all-reduced), the weights must have moved, and the final
checkpoint must hold those weights. Then ``tools/dist_test.sh`` runs that
checkpoint on 4 photos with 2 processes and ``--out``: each photo must be
predicted once.
"""
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path

import mmengine
import pytest
import torch
from mmengine.config import Config

from mmdet_updetr.testing import get_config_path

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = 'updetr/pretrain_demo_cpu.py'
MAX_ITERS = 2
WORLD_SIZE = 2
NUM_TEST_IMAGES = 4
SMALL_SCALE = (160, 120)
MARKER = 'UPDETR_TEST_RANK_DONE'

HOOK_MODULE = '''\
"""Dumps each rank's weights and image ids for test_dist_train.py."""
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    """Save the weights before and after training and the image ids."""

    def before_train(self, runner):
        self.img_ids = []
        self._save(runner, 'init', self._state(runner))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.img_ids += [s.img_id for s in data_batch['data_samples']]

    def after_train(self, runner):
        self._save(runner, 'final', self._state(runner))
        self._save(runner, 'img_ids', self.img_ids)
        print(f'{MARKER} rank={runner.rank} '
              f'world_size={runner.world_size} iter={runner.iter} '
              f'wrapper={type(runner.model).__name__}', flush=True)

    @staticmethod
    def _state(runner):
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    @staticmethod
    def _save(runner, name, obj):
        torch.save(obj, osp.join(runner.work_dir,
                                 f'rank{runner.rank}_{name}.pth'))
'''.replace('{MARKER}', MARKER)


def _free_port() -> int:
    """A TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _small_images(cfg: Config) -> None:
    """Resize the training images to at most ``SMALL_SCALE`` before
    packing."""
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    pipeline = dataset.pipeline
    pack = [t['type'] for t in pipeline].index('PackUPDETRInputs')
    pipeline.insert(pack,
                    dict(type='Resize', scale=SMALL_SCALE, keep_ratio=True))


def _test_loop(cfg: Config) -> None:
    """A test loop over ``NUM_TEST_IMAGES`` demo photos."""
    pipeline = [
        dict(type='SafeLoadImageFromFile'),
        dict(
            type='QueryPatchTransform',
            num_patches=cfg.model.num_patches,
            augment=False),
        dict(type='Resize', scale=SMALL_SCALE, keep_ratio=True),
        dict(
            type='PackUPDETRInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor'))
    ]
    cfg.test_dataloader = dict(
        batch_size=1,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='DemoPhotoDataset',
            test_mode=True,
            indices=NUM_TEST_IMAGES,
            pipeline=pipeline))
    cfg.test_cfg = dict(type='TestLoop')
    # The pretext has no metric; tools/test.py --out adds the dump.
    cfg.test_evaluator = []


def _write_config(path: Path) -> Path:
    """The demo config, shortened to ``MAX_ITERS`` iterations, with a
    test loop."""
    cfg = Config.fromfile(get_config_path(DEMO_CONFIG))
    cfg.custom_imports = dict(
        imports=['mmdet_updetr', 'dump_rank_state_hook'],
        allow_failed_imports=False)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS)
    cfg.param_scheduler = []
    cfg.train_dataloader.update(
        batch_size=1, num_workers=0, persistent_workers=False)
    _small_images(cfg)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    _test_loop(cfg)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=MAX_ITERS, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.custom_hooks = [dict(type='DumpRankStateHook')]
    cfg.randomness = dict(seed=0)
    config = path / 'tiny_dist_pretrain.py'
    cfg.dump(str(config))
    return config


def _run_tool(path: Path, script: str, *args:
              str) -> subprocess.CompletedProcess:
    """``tools/<script> args`` in ``path``, on a free port."""
    env = dict(os.environ)
    env.update(
        PORT=str(_free_port()),
        PATH=osp.dirname(sys.executable) + os.pathsep + env.get('PATH', ''),
        PYTHONPATH=str(path) + os.pathsep + env.get('PYTHONPATH', ''),
        OMP_NUM_THREADS='1')
    return subprocess.run(
        ['bash', str(REPO / 'tools' / script), *args],
        cwd=path,  # the demo photos are written under path/data
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> Path:
    """The folder of the runs, with the hook module and the config."""
    path = tmp_path_factory.mktemp('dist')
    (path / 'dump_rank_state_hook.py').write_text(HOOK_MODULE)
    _write_config(path)
    return path


@pytest.fixture(scope='module')
def train_run(run_dir) -> subprocess.CompletedProcess:
    """``tools/dist_train.sh CONFIG 2 --work-dir run_dir/work_dir``."""
    proc = _run_tool(run_dir, 'dist_train.sh',
                     str(run_dir / 'tiny_dist_pretrain.py'), str(WORLD_SIZE),
                     '--work-dir', str(run_dir / 'work_dir'))
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc


def _load(run_dir: Path, rank: int, name: str):
    return torch.load(
        run_dir / 'work_dir' / f'rank{rank}_{name}.pth', weights_only=True)


def _assert_same_weights(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_dist_train_both_ranks_finish(train_run):
    for rank in range(WORLD_SIZE):
        marker = (f'{MARKER} rank={rank} world_size={WORLD_SIZE} '
                  f'iter={MAX_ITERS} wrapper=MMDistributedDataParallel')
        assert marker in train_run.stdout, train_run.stdout[-6000:]
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in train_run.stdout


def test_dist_train_ranks_agree(train_run, run_dir):
    # Each rank trained on its own images ...
    ids = [_load(run_dir, rank, 'img_ids') for rank in range(WORLD_SIZE)]
    assert all(len(rank_ids) == MAX_ITERS for rank_ids in ids)
    assert not set(ids[0]) & set(ids[1]), ids
    # ... and yet the ranks agree on the weights, which have moved.
    final = [_load(run_dir, rank, 'final') for rank in range(WORLD_SIZE)]
    _assert_same_weights(final[0], final[1])
    init = _load(run_dir, 0, 'init')
    moved = [k for k in init if not torch.equal(init[k], final[0][k])]
    assert any(k.startswith('decoder.') for k in moved), moved
    # The checkpoint saved at the end holds them.
    ckpt = torch.load(
        run_dir / 'work_dir' / f'iter_{MAX_ITERS}.pth',
        map_location='cpu',
        weights_only=True)
    _assert_same_weights(ckpt['state_dict'], final[0])


def test_dist_test_on_the_checkpoint(train_run, run_dir):
    out = run_dir / 'predictions.pkl'
    proc = _run_tool(run_dir, 'dist_test.sh',
                     str(run_dir / 'tiny_dist_pretrain.py'),
                     str(run_dir / 'work_dir' / f'iter_{MAX_ITERS}.pth'),
                     str(WORLD_SIZE), '--work-dir',
                     str(run_dir / 'test_work_dir'), '--out', str(out))
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert f'Iter(test) [{NUM_TEST_IMAGES // WORLD_SIZE}/' in proc.stdout
    results = mmengine.load(str(out))
    # The ranks' results are gathered: every photo once, in order.
    assert [r['img_id'] for r in results] == list(range(NUM_TEST_IMAGES))
    for result in results:
        boxes = result['pred_instances']['bboxes']
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        assert len(boxes) > 0 and torch.isfinite(boxes).all()
