from .detr_fusion_head import DETRFusionHead

__all__ = ['DETRFusionHead']
