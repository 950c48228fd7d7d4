# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Distributed training and testing on a CPU-only torch.

mmengine 0.10.7 cannot start a distributed run without CUDA: its launchers
(``mmengine.dist.init_dist``) call ``torch.cuda.set_device`` whatever the
backend, and the Runner's default DDP wrapper passes
``device_ids=[local_rank]``, which DDP refuses for CPU modules.

:func:`setup_cpu_dist` works around both before the Runner is built: it
initialises the process group with the gloo backend itself (the Runner then
skips its own initialisation) and configures the DDP wrapper with
``device_ids=None``. Where CUDA is available it changes nothing but
``cfg.launcher``: mmengine handles that case. ``tools/train.py`` and
``tools/test.py`` both call it, and :func:`teardown_cpu_dist` at the end.
"""
import datetime
import os
import subprocess
from typing import Optional, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

#: The launchers of mmdet's tools; 'none' runs a single process.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
#: torch.distributed's default port, mmengine's default for slurm and mpi.
DEFAULT_PORT = '29500'


def _pytorch_rank() -> Tuple[int, int]:
    """Rank and world size set by ``torchrun`` (or
    ``torch.distributed.launch``)."""
    return int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])


def _slurm_rank() -> Tuple[int, int]:
    """Rank and world size of a ``srun`` task; sets the variables of the
    ``env://`` rendezvous as mmengine's slurm launcher does."""
    rank = int(os.environ['SLURM_PROCID'])
    world_size = int(os.environ['SLURM_NTASKS'])
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', DEFAULT_PORT)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    return rank, world_size


def _mpi_rank() -> Tuple[int, int]:
    """Rank and world size of an Open MPI process (``mpirun``)."""
    if 'MASTER_ADDR' not in os.environ:
        raise KeyError('The environment variable MASTER_ADDR is not set')
    os.environ.setdefault('MASTER_PORT', DEFAULT_PORT)
    os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']
    return (int(os.environ['OMPI_COMM_WORLD_RANK']),
            int(os.environ['OMPI_COMM_WORLD_SIZE']))


_RANK_GETTERS = dict(pytorch=_pytorch_rank, slurm=_slurm_rank, mpi=_mpi_rank)


def init_cpu_process_group(launcher: str,
                           timeout: Optional[float] = None) -> None:
    """Initialise the default process group with the gloo backend.

    Unlike ``mmengine.dist.init_dist``, no CUDA call is made. Rank, world
    size and rendezvous address come from the launcher's environment
    variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``
    for 'pytorch'; ``SLURM_*`` or ``OMPI_COMM_WORLD_*`` otherwise, which are
    translated into ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``).

    Args:
        launcher (str): 'pytorch', 'slurm' or 'mpi'.
        timeout (float, optional): Timeout of collective operations in
            seconds; torch's default when None.
    """
    if launcher not in _RANK_GETTERS:
        raise ValueError(f'Invalid launcher type: {launcher}')
    rank, world_size = _RANK_GETTERS[launcher]()
    os.environ['RANK'] = str(rank)
    os.environ['WORLD_SIZE'] = str(world_size)
    kwargs = dict(backend='gloo', rank=rank, world_size=world_size)
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(**kwargs)


def teardown_cpu_dist() -> None:
    """End a run set up by :func:`setup_cpu_dist`: wait for every rank,
    then destroy the gloo process group.

    Call it when the Runner has finished. A rank that exits while another
    still holds its gloo connections can abort at exit ("terminate called
    without an active exception") after a successful run. Does nothing
    without a gloo process group (single process, or mmengine's own CUDA
    set-up).
    """
    if torch_dist.is_initialized() and torch_dist.get_backend() == 'gloo':
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def setup_cpu_dist(cfg: Config, launcher: str) -> bool:
    """Prepare a config for a distributed run on a CPU-only torch.

    Sets ``cfg.launcher``. If the launcher is not 'none' and CUDA is not
    available: sets ``env_cfg.dist_cfg.backend`` to 'gloo', sets
    ``cfg.model_wrapper_cfg`` to ``MMDistributedDataParallel`` with
    ``device_ids=None`` unless the config has a ``model_wrapper_cfg``
    (``find_unused_parameters`` from the config, as in mmengine's default
    wrapper; DDP's default buffer broadcast from rank 0 is kept, as torch
    deprecates ``broadcast_buffers=False``), and initialises the process
    group with gloo (see :func:`init_cpu_process_group`) unless one exists.
    Call it before the Runner is built.

    Args:
        cfg (:obj:`Config`): The run's config, modified in place.
        launcher (str): One of :data:`LAUNCHERS`.

    Returns:
        bool: Whether the CPU distributed set-up was applied.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, '
                         f'got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist_cfg['backend'] = 'gloo'
    cfg.merge_from_dict(dict(env_cfg=dict(dist_cfg=dist_cfg)))
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not torch_dist.is_initialized():
        init_cpu_process_group(launcher, dist_cfg.get('timeout'))
    return True
