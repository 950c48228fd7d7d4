from .checkpoint import SAFE_GLOBALS, enable_safe_checkpoints

__all__ = ['SAFE_GLOBALS', 'enable_safe_checkpoints']
