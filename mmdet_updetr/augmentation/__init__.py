# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""The query-patch augmentation, shared by the data and the model layers.

Its draw runs in the dataset transforms (``mmdet_updetr.datasets``), its
batched apply in the data preprocessor (``mmdet_updetr.models``); both
import it from here, and it imports neither of them.
"""
from .patch_augmentation import (AUG_COL, AUG_PARAM_NAMES, IDENTITY_AUG_PARAMS,
                                 NUM_AUG_PARAMS, QueryPatchAugmentation,
                                 augment_patches, autocast_off,
                                 identity_aug_params)

__all__ = [
    'QueryPatchAugmentation', 'augment_patches', 'identity_aug_params',
    'AUG_PARAM_NAMES', 'AUG_COL', 'NUM_AUG_PARAMS', 'IDENTITY_AUG_PARAMS',
    'autocast_off'
]
