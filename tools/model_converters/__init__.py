"""Converters of the reference implementations' checkpoints.

Scripts, run as ``python tools/model_converters/<name>.py SRC DST`` from
any folder: ``updetr_to_mmdet.py`` (pre-training), ``detr_to_mmdet.py``
(COCO detectors), ``panoptic_to_mmdet.py`` (panoptic models). Their shared
code, imported from here (``from tools.model_converters import ...``) by
the scripts and the tests alike:

- ``reference_keys``: the reference / DETR key map and COCO class rows;
- ``panoptic_keys``: the panoptic (``DETRsegm``) key map and class rows;
- ``reference_checkpoint``: the command line and the weights-only loading.
"""
from .panoptic_keys import (COCO_PANOPTIC_CATEGORY_IDS, PANOPTIC_KEY_RULES,
                            PANOPTIC_REFERENCE_NUM_OUTPUTS,
                            convert_panoptic_state_dict, map_panoptic_key,
                            panoptic_class_rows)
from .reference_checkpoint import (converter_arg_parser, get_model_state_dict,
                                   load_reference_checkpoint)
from .reference_keys import (COCO_CATEGORY_IDS, COCO_REFERENCE_NUM_OUTPUTS,
                             DETR_KEY_RULES, PRE_NORM_KEY, PRETEXT_CLASS_ROWS,
                             PRETEXT_KEY_RULES, add_num_batches_tracked,
                             coco_class_rows, convert_reference_state_dict,
                             map_reference_key, select_class_rows)

__all__ = [
    'DETR_KEY_RULES', 'PRETEXT_KEY_RULES', 'PRETEXT_CLASS_ROWS',
    'map_reference_key', 'select_class_rows', 'add_num_batches_tracked',
    'convert_reference_state_dict', 'COCO_CATEGORY_IDS',
    'COCO_REFERENCE_NUM_OUTPUTS', 'PRE_NORM_KEY', 'coco_class_rows',
    'COCO_PANOPTIC_CATEGORY_IDS', 'PANOPTIC_KEY_RULES',
    'PANOPTIC_REFERENCE_NUM_OUTPUTS', 'convert_panoptic_state_dict',
    'map_panoptic_key', 'panoptic_class_rows', 'converter_arg_parser',
    'get_model_state_dict', 'load_reference_checkpoint'
]
