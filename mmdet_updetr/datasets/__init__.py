from .demo_photos import DemoPhotoDataset
from .oneshot_voc import OneShotVOCDataset
from .transforms import (LoadOneShotQuery, PackUPDETRInputs,
                         QueryPatchTransform, SafeLoadImageFromFile)
from .unlabeled_dataset import UnlabeledImageDataset

__all__ = [
    'UnlabeledImageDataset', 'DemoPhotoDataset', 'SafeLoadImageFromFile',
    'QueryPatchTransform', 'PackUPDETRInputs', 'OneShotVOCDataset',
    'LoadOneShotQuery'
]
