from .query_patch_vis_hook import QueryPatchVisHook
from .random_state_hook import RandomStateHook, SeededFetch
from .resumable_checkpoint_hook import (RANK_STATES_KEY,
                                        ResumableCheckpointHook,
                                        newest_good_checkpoint)
from .safe_checkpoint_hook import SafeCheckpointHook
from .skipped_files_hook import SKIPPED_KEY, CollateWithSkips, SkippedFilesHook

__all__ = [
    'QueryPatchVisHook', 'SafeCheckpointHook', 'ResumableCheckpointHook',
    'RANK_STATES_KEY', 'newest_good_checkpoint', 'RandomStateHook',
    'SeededFetch', 'SkippedFilesHook', 'CollateWithSkips', 'SKIPPED_KEY'
]
