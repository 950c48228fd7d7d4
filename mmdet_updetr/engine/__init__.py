from .atomic_backend import (ATOMIC_BACKEND, AtomicLocalBackend,
                             checkpoint_problem)
from .bf16_optim_wrapper import BF16AmpOptimWrapper
from .checkpoint import SAFE_GLOBALS, enable_safe_checkpoints
from .dist import init_cpu_process_group, setup_cpu_dist, teardown_cpu_dist
from .hooks import (QueryPatchVisHook, RandomStateHook,
                    ResumableCheckpointHook, SafeCheckpointHook,
                    SkippedFilesHook)
from .optim_wrapper_constructor import FrozenAwareOptimWrapperConstructor
from .random_state import (get_random_state, sample_random, sample_seeds,
                           set_random_state)
from .runner import ResumableEpochBasedTrainLoop, SkippingBatchSampler

__all__ = [
    'SAFE_GLOBALS', 'enable_safe_checkpoints', 'SafeCheckpointHook',
    'init_cpu_process_group', 'setup_cpu_dist', 'teardown_cpu_dist',
    'FrozenAwareOptimWrapperConstructor', 'ATOMIC_BACKEND',
    'AtomicLocalBackend', 'checkpoint_problem', 'ResumableCheckpointHook',
    'RandomStateHook', 'SkippedFilesHook', 'get_random_state',
    'set_random_state', 'sample_seeds', 'sample_random',
    'ResumableEpochBasedTrainLoop', 'SkippingBatchSampler',
    'QueryPatchVisHook', 'BF16AmpOptimWrapper'
]
