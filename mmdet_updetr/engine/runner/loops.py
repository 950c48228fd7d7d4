# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""An epoch-based training loop that resumes in the middle of an epoch."""
import copy
import logging
from typing import Iterator, List, Optional, Sequence

from mmdet.registry import DATA_SAMPLERS, LOOPS
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import BatchSampler, Sampler


class SkippingBatchSampler(Sampler):
    """A batch sampler that can leave out the first batches of one epoch.

    It wraps the batch sampler the config asks for (torch's
    ``BatchSampler`` when none), and after :meth:`skip` drops that many
    batches at the start of the next iteration over it. Only indices are
    drawn for the dropped batches: no image is loaded, and any batch
    sampler (mmdet's ``AspectRatioBatchSampler`` included) gives the same
    remaining batches as in the uninterrupted epoch.

    Args:
        sampler (Sampler): The sampler (``DefaultSampler`` ...).
        batch_size (int): Samples per batch.
        batch_sampler (dict, optional): The config's batch sampler, built
            with ``sampler`` and ``batch_size``. Defaults to None: torch's
            ``BatchSampler``.
        drop_last (bool): ``drop_last`` of torch's ``BatchSampler``.
            Defaults to False.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 batch_sampler: Optional[dict] = None,
                 drop_last: bool = False) -> None:
        self.sampler = sampler  # DistSamplerSeedHook calls its set_epoch
        self.batch_size = batch_size
        if batch_sampler is None:
            self.batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        else:
            self.batch_sampler = DATA_SAMPLERS.build(
                batch_sampler,
                default_args=dict(sampler=sampler, batch_size=batch_size))
        self._skip = 0

    def skip(self, num_batches: int) -> None:
        """Leave out ``num_batches`` batches at the start of the next
        iteration (once)."""
        self._skip = num_batches

    def __iter__(self) -> Iterator[List[int]]:
        skip, self._skip = self._skip, 0
        for i, batch in enumerate(self.batch_sampler):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.batch_sampler)


def skipping_dataloader_cfg(dataloader: dict) -> dict:
    """A copy of a data loader config whose batch sampler is a
    :class:`SkippingBatchSampler` around the configured one."""
    cfg = copy.deepcopy(dataloader)
    cfg['batch_sampler'] = dict(
        type=SkippingBatchSampler,
        batch_sampler=cfg.pop('batch_sampler', None),
        drop_last=cfg.pop('drop_last', False))
    return cfg


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes in the middle of an epoch.

    mmengine's loop restarts the epoch of a checkpoint saved inside it
    (e.g. by ``ResumableCheckpointHook(iter_interval=...)``), training its
    first batches twice. This loop continues at the next batch instead: the
    batch sampler skips the batches already trained (their images are not
    loaded) and the hooks see the same ``batch_idx`` as in the
    uninterrupted epoch, so logging and checkpoint intervals line up.

    Args:
        runner (Runner): The runner.
        dataloader (dict | DataLoader): The training data loader; a config
            dict, whose batch sampler is wrapped in a
            :class:`SkippingBatchSampler`.
        *args, **kwargs: Arguments of ``EpochBasedTrainLoop``
            (``max_epochs``, ``val_begin``, ``val_interval``, ...).
    """

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        if isinstance(dataloader, dict):
            # UP-DETR: a batch sampler that can skip the trained batches.
            dataloader = skipping_dataloader_cfg(dataloader)
        super().__init__(runner, dataloader, *args, **kwargs)
        self._trained_batches = 0

    def run_epoch(self) -> None:
        """Iterate over the rest of the current epoch."""
        done = self._iter - self._epoch * len(self.dataloader)
        if done > 0 and self._skip_batches(done):
            self._trained_batches = done
        try:
            super().run_epoch()
        finally:
            self._trained_batches = 0

    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """Train one batch; ``idx`` counts from the epoch's first batch."""
        # UP-DETR: the batches skipped on resume keep their place.
        super().run_iter(idx + self._trained_batches, data_batch)

    def _skip_batches(self, done: int) -> bool:
        """Make the batch sampler skip the ``done`` trained batches."""
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if done > len(self.dataloader) or not isinstance(
                batch_sampler, SkippingBatchSampler):
            print_log(
                f'Resumed at iteration {self._iter} in epoch '
                f'{self._epoch + 1}, but its {len(self.dataloader)} batches '
                'cannot be skipped (the data loader was built before the '
                'loop, or its length changed): the epoch restarts.',
                logger='current',
                level=logging.WARNING)
            return False
        batch_sampler.skip(done)
        print_log(
            f'Resumed in the middle of epoch {self._epoch + 1}: its first '
            f'{done} of {len(self.dataloader)} batches are skipped.',
            logger='current')
        return True
