from .formatting import PackUPDETRInputs
from .loading import SafeLoadImageFromFile
from .query_patch import QueryPatchTransform

__all__ = ['PackUPDETRInputs', 'QueryPatchTransform', 'SafeLoadImageFromFile']
