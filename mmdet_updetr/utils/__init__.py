from .pretrained_init import UPDETRPretrainedInit, describe_mismatch
from .reference_keys import (DETR_KEY_RULES, PRETEXT_CLASS_ROWS,
                             PRETEXT_KEY_RULES, add_num_batches_tracked,
                             convert_reference_state_dict, map_reference_key,
                             select_class_rows)

__all__ = [
    'DETR_KEY_RULES', 'PRETEXT_KEY_RULES', 'PRETEXT_CLASS_ROWS',
    'map_reference_key', 'select_class_rows', 'add_num_batches_tracked',
    'convert_reference_state_dict', 'UPDETRPretrainedInit', 'describe_mismatch'
]
