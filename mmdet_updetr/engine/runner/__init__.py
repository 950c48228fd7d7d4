from .loops import (ResumableEpochBasedTrainLoop, SkippingBatchSampler,
                    skipping_dataloader_cfg)

__all__ = [
    'ResumableEpochBasedTrainLoop', 'SkippingBatchSampler',
    'skipping_dataloader_cfg'
]
