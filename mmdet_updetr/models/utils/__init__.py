from .amp import float32_losses
from .pretrained_init import UPDETRPretrainedInit, describe_mismatch

__all__ = ['UPDETRPretrainedInit', 'describe_mismatch', 'float32_losses']
