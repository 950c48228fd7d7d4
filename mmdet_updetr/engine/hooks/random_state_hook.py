# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Random draws that a resumed run repeats exactly."""
import logging
import os
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..random_state import get_random_state, sample_random, set_random_state
from .resumable_checkpoint_hook import RANK_STATES_KEY


class SeededFetch:
    """A dataset's ``__getitems__`` that loads each sample under its own
    random stream, seeded from ``(seed, epoch, index)``.

    torch's data loader fetches a batch with ``dataset.__getitems__``
    when the dataset has one, in the main process or in a worker. The epoch
    is read from a tensor in shared memory, which the main process updates
    and persistent workers see.

    Args:
        dataset: The dataset (``dataset[index]`` loads a sample).
        seed (int): The run's seed.
        epoch (torch.Tensor): A shared int64 scalar, the current epoch.
    """

    def __init__(self, dataset, seed: int, epoch: torch.Tensor) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = epoch

    def __call__(self, indices: Sequence[int]) -> List:
        epoch = int(self.epoch)
        samples = []
        for index in indices:
            with sample_random(self.seed, epoch, index):
                samples.append(self.dataset[index])
        return samples


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Resumed runs draw the same random numbers as the runs they continue.

    - **Each rank's generators in the checkpoint**: Python's, numpy's and
      torch's (CPU and every CUDA device) states are this hook's
      ``rank_state_dict``, which ``ResumableCheckpointHook`` saves per rank;
      a resumed run restores its rank's states just before its first
      iteration, where the interrupted run stood after the checkpoint.
    - **Data drawn per sample**: the training dataset loads each sample
      with the generators seeded from ``(seed, epoch, index)`` (see
      :class:`SeededFetch`), in the main process or in any data-loader
      worker, and the caller's generators are left as they were. Each
      epoch draws fresh query patches and augmentations; a resumed epoch
      draws the same ones as the first time, whatever the number of
      workers, their prefetching or the batches skipped on resume.
    - **Nothing else draws between a checkpoint and the next iteration**:
      the training data loader gets a generator of its own (creating an
      iterator draws its workers' base seed from it, not from torch's
      global generator), and validation runs with the generators saved
      before it and restored after it.

    Put it in ``custom_hooks``, with ``ResumableCheckpointHook`` as the
    checkpoint hook (without it, the states are not saved and the hook
    warns on resume).
    """

    # Restores the state before any other hook's ``before_train_iter``.
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._resume: Optional[Tuple[int, dict]] = None
        self._outer_state: Optional[dict] = None

    def before_run(self, runner: Runner) -> None:
        """With deterministic algorithms on, make cuBLAS deterministic.

        torch refuses cuBLAS matrix products in deterministic mode unless
        ``CUBLAS_WORKSPACE_CONFIG`` is ``:4096:8`` or ``:16:8``; it is set
        here (unless set already), before the run's first product.
        """
        if torch.are_deterministic_algorithms_enabled():
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')

    def before_train(self, runner: Runner) -> None:
        """Seed the training data per sample; give the loader a generator."""
        loader = runner.train_dataloader
        if loader.generator is None:
            loader.generator = torch.Generator().manual_seed(runner.seed)
        dataset = loader.dataset
        dataset.__getitems__ = SeededFetch(dataset, runner.seed, self._epoch)

    def before_train_epoch(self, runner: Runner) -> None:
        """Tell the loading processes the epoch."""
        self._epoch.fill_(runner.epoch)

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Restore the checkpoint's state before the first resumed
        iteration."""
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == runner.iter:
            set_random_state(resume[1])
            print_log(
                f'Random state of rank {get_rank()} restored as it was at '
                f'iteration {runner.iter}.',
                logger='current')

    def rank_state_dict(self, runner: Runner) -> dict:
        """This rank's generators (see :func:`get_random_state`)."""
        return get_random_state()

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Keep this rank's saved state for the first resumed iteration."""
        resuming = getattr(runner, '_resume', False)
        states = checkpoint.get(RANK_STATES_KEY)
        name = type(self).__name__
        problem = None
        if not states or name not in states[0]:
            problem = ('the checkpoint holds no random states (it was '
                       'not saved with ResumableCheckpointHook and '
                       'RandomStateHook)')
        elif len(states) != get_world_size():
            problem = (f'it was saved by {len(states)} processes, this run '
                       f'has {get_world_size()}')
        if problem is None:
            self._resume = (checkpoint['meta']['iter'],
                            states[get_rank()][name])
        elif resuming:
            print_log(
                f'The random state is not restored: {problem}. The resumed '
                'run draws other random numbers than the interrupted one.',
                logger='current',
                level=logging.WARNING)

    def before_val(self, runner: Runner) -> None:
        """Save the generators: validation must not shift training's."""
        self._outer_state = get_random_state()

    def after_val(self, runner: Runner) -> None:
        """Restore the generators saved before validation."""
        if self._outer_state is not None:
            set_random_state(self._outer_state)
            self._outer_state = None
