from .updetr_head import UPDETRHead

__all__ = ['UPDETRHead']
