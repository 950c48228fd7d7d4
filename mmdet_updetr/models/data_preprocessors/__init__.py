from .patch_augmentation import (AUG_PARAM_NAMES, NUM_AUG_PARAMS,
                                 augment_patches)
from .updetr_data_preprocessor import UPDETRDataPreprocessor

__all__ = [
    'UPDETRDataPreprocessor', 'augment_patches', 'AUG_PARAM_NAMES',
    'NUM_AUG_PARAMS'
]
