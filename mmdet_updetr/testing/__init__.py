from ._panoptic import (TINY_PANOPTIC_CATEGORIES, TINY_PANOPTIC_METAINFO,
                        tiny_panoptic_cfg, tiny_panoptic_model_cfg,
                        write_tiny_coco_panoptic)
from ._utils import (build_tiny_model, get_config_path, get_tiny_cfg,
                     tiny_batch, tiny_model_cfg)
from ._voc import VOC_CLASSES, class_colour, write_tiny_voc

__all__ = [
    'get_config_path', 'get_tiny_cfg', 'tiny_model_cfg', 'build_tiny_model',
    'tiny_batch', 'VOC_CLASSES', 'class_colour', 'write_tiny_voc',
    'TINY_PANOPTIC_CATEGORIES', 'TINY_PANOPTIC_METAINFO', 'tiny_panoptic_cfg',
    'tiny_panoptic_model_cfg', 'write_tiny_coco_panoptic'
]
