# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""mmengine's CheckpointHook, made safe to kill and able to save inside an
epoch."""
import glob
import logging
import os
import os.path as osp
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..atomic_backend import ATOMIC_BACKEND, TMP_PREFIX, checkpoint_problem

#: The checkpoint key of the states that each rank keeps for itself.
RANK_STATES_KEY = 'rank_states'
#: The message hub key of the newest ``iter_{n}.pth``.
_ITER_CKPT_KEY = 'last_iter_ckpt'


class _DeferredRemoval:
    """A file backend that records removals instead of doing them."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.removed: List[str] = []

    def remove(self, path: str) -> None:
        self.removed.append(path)

    def rmtree(self, path: str) -> None:
        self.removed.append(path)

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints a killed run resumes exactly.

    On top of mmengine's hook (same arguments, same files):

    - **Atomic saves**: local checkpoints are written to a temporary file
      and renamed (see :class:`~mmdet_updetr.engine.AtomicLocalBackend`);
      ``last_checkpoint`` names the new file only after that, and the
      checkpoints that ``max_keep_ckpts`` drops are removed only then (the
      parent removes them first). A run killed while saving resumes from
      the previous checkpoint.
    - **Checkpoints inside an epoch**: with ``by_epoch=True``,
      ``iter_interval`` also saves ``iter_{n}.pth`` every ``iter_interval``
      iterations (not at an epoch's end, where the epoch checkpoint is
      due); only the newest of them is kept. ``ResumableEpochBasedTrainLoop``
      continues such a checkpoint's epoch at the next batch.
    - **Each rank's state**: every hook of the runner with a
      ``rank_state_dict(runner)`` method (``RandomStateHook``,
      ``SkippedFilesHook``) contributes a state per rank; they are gathered
      to rank 0 and saved under ``checkpoint['rank_states']`` (a list
      indexed by rank of ``{hook class name: state}``).
    - **Resume checks**: before a resume, the checkpoint file is checked;
      a truncated or corrupt one stops the run with an error naming it,
      and an automatic resume (``--resume`` without a file) whose
      ``last_checkpoint`` is unusable falls back to the newest good
      checkpoint in the work directory.

    Args:
        iter_interval (int, optional): Save ``iter_{n}.pth`` every this
            many iterations in epoch-based training. Defaults to None.
        **kwargs: Arguments of ``CheckpointHook``.

    Examples:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='ResumableCheckpointHook', interval=1,
        ...     iter_interval=1000, max_keep_ckpts=3))
    """

    def __init__(self,
                 *args,
                 iter_interval: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.iter_interval = iter_interval
        self._rank_states: Optional[list] = None
        self._last_iter_ckpt: Optional[str] = None

    def before_run(self, runner: Runner) -> None:
        """Check the checkpoint a resume will load (see the class)."""
        # UP-DETR: local checkpoints are written atomically.
        out_dir = self.out_dir or runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in str(out_dir)):
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        if getattr(runner, '_resume', False):
            self._check_resume_file(runner)

    def _check_resume_file(self, runner: Runner) -> None:
        """Refuse a broken resume file; repair an automatic resume."""
        path = runner._load_from
        if path is not None:
            if '://' not in str(path):
                problem = checkpoint_problem(path)
                if problem is not None:
                    raise RuntimeError(
                        f'Cannot resume from {path}: {problem}. Resume from '
                        'an earlier checkpoint (--resume '
                        f'{osp.dirname(path) or "."}/<file>.pth), or '
                        'remove this file and resume with --resume alone, '
                        'which takes the newest good checkpoint.')
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.isfile(pointer):
            return  # nothing to resume: mmengine starts from scratch
        with open(pointer) as f:
            path = f.read().strip()
        if path and checkpoint_problem(path) is None:
            return
        fallback = newest_good_checkpoint(runner.work_dir)
        print_log(
            f'{pointer} names {path!r}, which cannot be loaded; resuming '
            f'from {fallback} instead.',
            logger='current',
            level=logging.WARNING)
        if fallback is None:
            raise RuntimeError(
                f'{pointer} names {path!r}, which cannot be loaded, and '
                f'{runner.work_dir} holds no other good checkpoint. Remove '
                f'{pointer} to start from scratch.')
        runner._load_from = fallback

    def before_train(self, runner: Runner) -> None:
        """Remove temporary files a killed save left (rank 0)."""
        super().before_train(runner)
        self._last_iter_ckpt = runner.message_hub.get_info(_ITER_CKPT_KEY)
        if is_main_process() and '://' not in str(self.out_dir):
            for tmp in glob.glob(osp.join(self.out_dir, TMP_PREFIX + '*')):
                os.remove(tmp)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Save as the parent does, and ``iter_{n}.pth`` inside epochs."""
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if (self.by_epoch and self.iter_interval
                and self.every_n_train_iters(runner, self.iter_interval)
                and not self.end_of_epoch(runner.train_dataloader, batch_idx)):
            self._save_iter_checkpoint(runner)

    def _save_iter_checkpoint(self, runner: Runner) -> None:
        """Save ``iter_{n}.pth`` in the middle of an epoch."""
        step = runner.iter + 1
        runner.logger.info(f'Saving checkpoint at {step} iterations')
        previous = self._last_iter_ckpt
        runner.message_hub.update_info(
            _ITER_CKPT_KEY,
            self.file_backend.join_path(self.out_dir, f'iter_{step}.pth'))
        filename_tmpl, keep = self.filename_tmpl, self.max_keep_ckpts
        # The epoch checkpoints' bookkeeping is left alone.
        self.filename_tmpl, self.max_keep_ckpts = 'iter_{}.pth', -1
        try:
            self._save_checkpoint_with_step(
                runner, step, meta=dict(epoch=runner.epoch, iter=step))
        finally:
            self.filename_tmpl, self.max_keep_ckpts = filename_tmpl, keep
        self._last_iter_ckpt = self.last_ckpt
        if (previous and previous != self.last_ckpt and is_main_process()
                and self.file_backend.isfile(previous)):
            self.file_backend.remove(previous)

    def _save_checkpoint_with_step(self, runner: Runner, step: int,
                                   meta: dict) -> None:
        """Gather the ranks' states, save, then remove dropped files."""
        # UP-DETR: a collective, before rank 0 alone saves.
        self._rank_states = all_gather_object({
            type(hook).__name__:
            hook.rank_state_dict(runner)
            for hook in runner.hooks if hasattr(hook, 'rank_state_dict')
        })
        backend = self.file_backend
        self.file_backend = _DeferredRemoval(backend)
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
            removed = self.file_backend.removed
        finally:
            self.file_backend = backend
            self._rank_states = None
        # UP-DETR: old files go once the new one and last_checkpoint exist.
        for path in removed:
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):
                backend.rmtree(path)

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Add the gathered ranks' states to the checkpoint (rank 0)."""
        if self._rank_states is not None:
            checkpoint[RANK_STATES_KEY] = self._rank_states


def newest_good_checkpoint(work_dir: str) -> Optional[str]:
    """The most recently written loadable ``*.pth`` file in ``work_dir``."""
    paths = sorted(
        glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    for path in paths:
        if checkpoint_problem(path) is None:
            return path
    return None
