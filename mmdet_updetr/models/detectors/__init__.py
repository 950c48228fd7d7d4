from .prenorm_detr import PreNormDETR
from .updetr import UPDETR
from .updetr_oneshot import OneShotUPDETR
from .updetr_panoptic import UPDETRPanoptic

__all__ = ['PreNormDETR', 'UPDETR', 'OneShotUPDETR', 'UPDETRPanoptic']
