"""``SkippingBatchSampler`` and the loop's data loader config."""
from mmengine.dataset import DefaultSampler

from mmdet_updetr.engine.runner import (SkippingBatchSampler,
                                        skipping_dataloader_cfg)


class _Sizes:
    """A dataset of images of alternating orientation."""

    def __len__(self):
        return 10

    def get_data_info(self, idx):
        return dict(width=10 + idx % 2 * 20, height=20)


def _batches(sampler):
    return [list(batch) for batch in sampler]


def test_skip_leaves_out_the_first_batches_once():
    sampler = DefaultSampler(list(range(10)), shuffle=True, seed=1)
    batches = SkippingBatchSampler(sampler, batch_size=3)
    full = _batches(batches)
    assert len(batches) == 4 and len(full) == 4
    batches.skip(2)
    assert _batches(batches) == full[2:]
    assert _batches(batches) == full  # only once


def test_skip_any_batch_sampler():
    """mmdet's AspectRatioBatchSampler groups indices across the sampler's
    order: the skipped run gives the same remaining batches."""
    sampler = DefaultSampler(_Sizes(), shuffle=True, seed=2)
    batches = SkippingBatchSampler(
        sampler, 2, batch_sampler=dict(type='AspectRatioBatchSampler'))
    full = _batches(batches)
    batches.skip(3)
    assert _batches(batches) == full[3:]
    assert batches.sampler is sampler  # DistSamplerSeedHook's path


def test_dataloader_cfg_wraps_the_configured_batch_sampler():
    cfg = dict(
        batch_size=2,
        drop_last=True,
        sampler=dict(type='DefaultSampler'),
        batch_sampler=dict(type='AspectRatioBatchSampler'))
    wrapped = skipping_dataloader_cfg(cfg)
    assert wrapped['batch_sampler'] == dict(
        type=SkippingBatchSampler,
        batch_sampler=dict(type='AspectRatioBatchSampler'),
        drop_last=True)
    assert 'drop_last' not in wrapped and cfg['drop_last'] is True
