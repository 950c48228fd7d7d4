from .demo_photos import DemoPhotoDataset
from .transforms import (PackUPDETRInputs, QueryPatchTransform,
                         SafeLoadImageFromFile)
from .unlabeled_dataset import UnlabeledImageDataset

__all__ = [
    'UnlabeledImageDataset', 'DemoPhotoDataset', 'SafeLoadImageFromFile',
    'QueryPatchTransform', 'PackUPDETRInputs'
]
