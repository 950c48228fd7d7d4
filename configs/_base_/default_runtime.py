# Runtime of every config: mmdet's, plus checkpoints that load with
# torch.load(weights_only=True) and runs that resume exactly: atomic
# checkpoint saves, each rank's random state (and skipped images) in the
# checkpoints, per-sample random streams for the data, and skipped images
# counted on every rank. The schedules' ResumableEpochBasedTrainLoop
# continues a checkpoint saved inside an epoch at the next batch.
_base_ = 'mmdet::_base_/default_runtime.py'
# (configs import mmdet_updetr with custom_imports, which registers the hooks)

default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
custom_hooks = [
    dict(type='SafeCheckpointHook'),
    dict(type='RandomStateHook'),
    dict(type='SkippedFilesHook')
]
