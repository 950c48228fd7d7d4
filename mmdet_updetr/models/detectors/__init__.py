from .updetr import UPDETR
from .updetr_oneshot import OneShotUPDETR

__all__ = ['UPDETR', 'OneShotUPDETR']
