from .query_patch_vis_hook import QueryPatchVisHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['QueryPatchVisHook', 'SafeCheckpointHook']
