from .pretrained_init import UPDETRPretrainedInit, describe_mismatch

__all__ = ['UPDETRPretrainedInit', 'describe_mismatch']
