# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Test support, the one home of it (as ``mmdet.testing`` is mmdet's): tiny
configs, models and Runner configs, data writers (VOC, COCO, COCO panoptic,
good and bad image files) and recipe checks.

Only tests import this package; nothing else in ``mmdet_updetr`` does, and
it imports nothing from ``tests/``. Pytest fixtures stay in the
``conftest.py`` files and call into it; ``tests/reference/`` holds the
oracles (re-implementations of the reference code), not support.
"""
from ._coco import write_tiny_coco
from ._images import (encode, exif_rotated_jpeg, smooth_image, truncated_jpeg,
                      write_good_and_bad)
from ._imports import imported_modules
from ._panoptic import (TINY_PANOPTIC_CATEGORIES, TINY_PANOPTIC_METAINFO,
                        tiny_panoptic_cfg, tiny_panoptic_model_cfg,
                        write_tiny_coco_panoptic)
from ._recipe import check_finetune_recipe
from ._runs import (TINY_ONESHOT_CLASSES, small_scales, tiny_finetune_cfg,
                    tiny_oneshot_cfg, tiny_pretrain_cfg, tiny_voc_finetune_cfg)
from ._utils import (build_tiny_model, get_config_path, get_tiny_cfg,
                     tiny_batch, tiny_model_cfg)
from ._voc import VOC_CLASSES, class_colour, write_tiny_voc

__all__ = [
    'get_config_path', 'get_tiny_cfg', 'tiny_model_cfg', 'build_tiny_model',
    'tiny_batch', 'VOC_CLASSES', 'class_colour', 'write_tiny_voc',
    'write_tiny_coco', 'TINY_PANOPTIC_CATEGORIES', 'TINY_PANOPTIC_METAINFO',
    'tiny_panoptic_cfg', 'tiny_panoptic_model_cfg', 'write_tiny_coco_panoptic',
    'smooth_image', 'encode', 'exif_rotated_jpeg', 'truncated_jpeg',
    'write_good_and_bad', 'check_finetune_recipe', 'tiny_pretrain_cfg',
    'small_scales', 'tiny_finetune_cfg', 'tiny_voc_finetune_cfg',
    'TINY_ONESHOT_CLASSES', 'tiny_oneshot_cfg', 'imported_modules'
]
