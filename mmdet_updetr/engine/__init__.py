from .bf16_optim_wrapper import BF16AmpOptimWrapper
from .checkpoint import SAFE_GLOBALS, enable_safe_checkpoints
from .dist import init_cpu_process_group, setup_cpu_dist, teardown_cpu_dist
from .hooks import SafeCheckpointHook
from .optim_wrapper_constructor import FrozenAwareOptimWrapperConstructor

__all__ = [
    'SAFE_GLOBALS', 'enable_safe_checkpoints', 'SafeCheckpointHook',
    'init_cpu_process_group', 'setup_cpu_dist', 'teardown_cpu_dist',
    'FrozenAwareOptimWrapperConstructor', 'BF16AmpOptimWrapper'
]
