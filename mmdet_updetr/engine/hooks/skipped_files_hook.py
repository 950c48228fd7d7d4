# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Skipped images counted on every rank and reported per epoch."""
from collections import Counter
from typing import Callable, List, Optional, Tuple

from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmdet_updetr.datasets.transforms.loading import pop_skipped_images
from .resumable_checkpoint_hook import RANK_STATES_KEY

#: The batch key under which the loading processes send their skips.
SKIPPED_KEY = 'skipped_images'
#: The message hub key of the files already named in the log.
_NAMED_KEY = 'skipped_files_named'


class CollateWithSkips:
    """A ``collate_fn`` that also sends the images skipped while loading
    the batch, under ``batch['skipped_images']`` as ``(path, reason)``
    pairs (for collated batches that are dicts).

    Args:
        collate_fn (Callable): The data loader's ``collate_fn``.
    """

    def __init__(self, collate_fn: Callable) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples: list):
        batch = self.collate_fn(samples)
        skipped = pop_skipped_images()
        if isinstance(batch, dict):
            batch[SKIPPED_KEY] = skipped
        return batch


@HOOKS.register_module()
class SkippedFilesHook(Hook):
    """Count the images skipped on every rank; report them per epoch.

    ``SafeLoadImageFromFile`` skips bad files (truncated, empty, not
    images, too small) with a warning, but on ranks other than 0 mmengine's
    logger shows only errors, and data-loader workers are processes of
    their own. With this hook each batch carries the skips made while
    loading it (see :class:`CollateWithSkips`); at the end of each epoch
    the ranks' skips are gathered and rank 0 logs their total and names
    each skipped file once per run (also after a resume: the named files
    are kept in the message hub, and the skips of a half-done epoch in the
    checkpoint, per rank, through ``ResumableCheckpointHook``).

    Args:
        max_names (int): At most this many new files are named per epoch
            (the count is always complete). Defaults to 100.
    """

    # Takes the skips out of the batch before other hooks and the model.
    priority = 'VERY_HIGH'

    def __init__(self, max_names: int = 100) -> None:
        self.max_names = max_names
        self._skips: List[Tuple[str, str]] = []
        self._resume: Optional[Tuple[int, list]] = None

    def before_train(self, runner: Runner) -> None:
        """Make the training batches carry their skips."""
        loader = runner.train_dataloader
        if not isinstance(loader.collate_fn, CollateWithSkips):
            loader.collate_fn = CollateWithSkips(loader.collate_fn)

    def before_train_epoch(self, runner: Runner) -> None:
        """Start the epoch's count (with a resumed epoch's first part)."""
        pop_skipped_images()  # validation's, if it loaded in this process
        resume, self._resume = self._resume, None
        self._skips = []
        if resume is not None and resume[0] == runner.iter:
            self._skips = [tuple(skip) for skip in resume[1]]

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Take the batch's skips out of it."""
        if isinstance(data_batch, dict):
            self._skips += data_batch.pop(SKIPPED_KEY, [])

    def after_train_epoch(self, runner: Runner) -> None:
        """Gather every rank's skips; rank 0 logs them."""
        skips = [s for rank in all_gather_object(self._skips) for s in rank]
        self._skips = []
        if not skips or not is_main_process():
            return
        named = set(runner.message_hub.get_info(_NAMED_KEY) or [])
        counts = Counter(path for path, _ in skips)
        reasons = dict(skips)
        new = [path for path in sorted(counts) if path not in named]
        lines = [f'  {p}: {reasons[p]}' for p in new[:self.max_names]]
        if len(new) > self.max_names:
            lines.append(f'  ... and {len(new) - self.max_names} more')
        print_log(
            f'Epoch {runner.epoch + 1}: {len(skips)} images skipped on all '
            f'ranks ({len(counts)} files, {len(new)} not reported before)' +
            (':\n' + '\n'.join(lines) if lines else ''),
            logger='current')
        runner.message_hub.update_info(_NAMED_KEY, sorted(named | set(new)))

    def rank_state_dict(self, runner: Runner) -> dict:
        """This rank's skips so far in the epoch."""
        return dict(skips=[list(skip) for skip in self._skips])

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Keep this rank's skips of a half-done epoch for its resume."""
        states = checkpoint.get(RANK_STATES_KEY) or []
        name = type(self).__name__
        if get_rank() < len(states) and name in states[get_rank()]:
            self._resume = (checkpoint['meta']['iter'],
                            states[get_rank()][name]['skips'])
