from .panoptic_fusion_heads import DETRFusionHead

__all__ = ['DETRFusionHead']
