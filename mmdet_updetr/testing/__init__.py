from ._utils import get_config_path, get_tiny_cfg, tiny_model_cfg
from ._voc import VOC_CLASSES, class_colour, write_tiny_voc

__all__ = [
    'get_config_path', 'get_tiny_cfg', 'tiny_model_cfg', 'VOC_CLASSES',
    'class_colour', 'write_tiny_voc'
]
