from .matched_detr_head import MatchedDETRHead
from .panoptic_detr_head import PanopticDETRHead
from .updetr_head import UPDETRHead

__all__ = ['MatchedDETRHead', 'UPDETRHead', 'PanopticDETRHead']
