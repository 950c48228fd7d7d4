"""Tests of :func:`mmdet_updetr.engine.setup_cpu_dist`.

Single-process process groups (world size 1) with each launcher's
environment variables; the two-process run through ``tools/dist_train.sh``
is ``tests/test_tools/test_dist_train.py``.
"""
import os
import socket

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from mmdet_updetr.engine import setup_cpu_dist, teardown_cpu_dist

# Set by the launchers or by setup_cpu_dist; restored after each test.
DIST_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
             'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_LOCALID',
             'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
             'OMPI_COMM_WORLD_LOCAL_RANK')


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


@pytest.fixture
def clean_env(monkeypatch):
    """No distributed variables, no CUDA, no process group afterwards."""
    for name in DIST_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield monkeypatch
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _cfg(**kwargs) -> Config:
    env_cfg = dict(
        mp_cfg=dict(mp_start_method='fork'),
        dist_cfg=dict(backend='nccl', timeout=60))
    return Config(dict(env_cfg=env_cfg, **kwargs))


def _assert_gloo_group() -> None:
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert torch_dist.get_world_size() == 1 and torch_dist.get_rank() == 0


def test_launcher_none_changes_nothing(clean_env):
    cfg = _cfg()
    assert setup_cpu_dist(cfg, 'none') is False
    assert cfg.launcher == 'none'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


def test_cuda_left_to_mmengine(clean_env):
    clean_env.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _cfg()
    assert setup_cpu_dist(cfg, 'pytorch') is False
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


def test_unknown_launcher(clean_env):
    with pytest.raises(ValueError, match='launcher'):
        setup_cpu_dist(_cfg(), 'torchrun')


def test_pytorch_launcher_on_cpu(clean_env):
    clean_env.setenv('RANK', '0')
    clean_env.setenv('WORLD_SIZE', '1')
    clean_env.setenv('LOCAL_RANK', '0')
    clean_env.setenv('MASTER_ADDR', '127.0.0.1')
    clean_env.setenv('MASTER_PORT', _free_port())
    cfg = _cfg(find_unused_parameters=True)
    assert setup_cpu_dist(cfg, 'pytorch') is True
    _assert_gloo_group()
    assert cfg.launcher == 'pytorch'
    # gloo, the other settings kept
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    assert cfg.env_cfg.mp_cfg.mp_start_method == 'fork'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        find_unused_parameters=True)
    # As the Runner builds it: its default device_ids=[LOCAL_RANK] is
    # overridden, so DDP accepts the CPU module.
    model = MODEL_WRAPPERS.build(
        cfg.model_wrapper_cfg,
        default_args=dict(module=nn.Linear(2, 2), device_ids=[0]))
    assert model.device_ids is None
    # A second call (test after train, say) keeps the group.
    assert setup_cpu_dist(cfg, 'pytorch') is True
    _assert_gloo_group()


def test_model_wrapper_cfg_kept(clean_env):
    clean_env.setenv('RANK', '0')
    clean_env.setenv('WORLD_SIZE', '1')
    clean_env.setenv('MASTER_ADDR', '127.0.0.1')
    clean_env.setenv('MASTER_PORT', _free_port())
    wrapper = dict(type='MMSeparateDistributedDataParallel')
    cfg = _cfg(model_wrapper_cfg=wrapper)
    setup_cpu_dist(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == wrapper


def test_slurm_launcher_on_cpu(clean_env):
    clean_env.setenv('SLURM_PROCID', '0')
    clean_env.setenv('SLURM_NTASKS', '1')
    clean_env.setenv('SLURM_NODELIST', 'node-[1-4]')
    clean_env.setenv('SLURM_LOCALID', '0')
    clean_env.setenv('MASTER_ADDR', '127.0.0.1')  # no scontrol here
    clean_env.setenv('MASTER_PORT', _free_port())
    assert setup_cpu_dist(_cfg(), 'slurm') is True
    _assert_gloo_group()
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK']) == ('0', '1', '0')


def test_mpi_launcher_on_cpu(clean_env):
    clean_env.setenv('OMPI_COMM_WORLD_RANK', '0')
    clean_env.setenv('OMPI_COMM_WORLD_SIZE', '1')
    clean_env.setenv('OMPI_COMM_WORLD_LOCAL_RANK', '0')
    clean_env.setenv('MASTER_ADDR', '127.0.0.1')
    clean_env.setenv('MASTER_PORT', _free_port())
    assert setup_cpu_dist(_cfg(), 'mpi') is True
    _assert_gloo_group()


def test_mpi_needs_master_addr(clean_env):
    clean_env.setenv('OMPI_COMM_WORLD_RANK', '0')
    clean_env.setenv('OMPI_COMM_WORLD_SIZE', '1')
    clean_env.setenv('OMPI_COMM_WORLD_LOCAL_RANK', '0')
    with pytest.raises(KeyError, match='MASTER_ADDR'):
        setup_cpu_dist(_cfg(), 'mpi')
    assert not torch_dist.is_initialized()


def test_teardown_destroys_the_gloo_group(clean_env):
    """The tools end a CPU run by waiting for every rank and destroying the
    group (a rank used to abort at exit, "terminate called without an
    active exception")."""
    clean_env.setenv('RANK', '0')
    clean_env.setenv('WORLD_SIZE', '1')
    clean_env.setenv('MASTER_ADDR', '127.0.0.1')
    clean_env.setenv('MASTER_PORT', _free_port())
    setup_cpu_dist(_cfg(), 'pytorch')
    _assert_gloo_group()
    teardown_cpu_dist()
    assert not torch_dist.is_initialized()
    teardown_cpu_dist()  # nothing left to do: no error
