from .updetr import UPDETR
from .updetr_oneshot import OneShotUPDETR
from .updetr_panoptic import UPDETRPanoptic

__all__ = ['UPDETR', 'OneShotUPDETR', 'UPDETRPanoptic']
