from .amp import float32_losses
from .deterministic import bilinear_resize, exact_nondeterministic_ops
from .pretrained_init import UPDETRPretrainedInit, describe_mismatch

__all__ = [
    'UPDETRPretrainedInit', 'describe_mismatch', 'bilinear_resize',
    'exact_nondeterministic_ops', 'float32_losses'
]
