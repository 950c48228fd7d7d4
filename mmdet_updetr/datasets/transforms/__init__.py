from .formatting import PackUPDETRInputs
from .loading import SafeLoadImageFromFile
from .oneshot_query import LoadOneShotQuery
from .panoptic import PanopticStuffToInstances
from .query_patch import QueryPatchTransform

__all__ = [
    'PackUPDETRInputs', 'QueryPatchTransform', 'SafeLoadImageFromFile',
    'LoadOneShotQuery', 'PanopticStuffToInstances'
]
