from .oneshot_voc_metric import OneShotVOCMetric, episodes_ap, match_episode
from .patch_localisation_metric import (PatchLocalisationMetric,
                                        patch_localisation)

__all__ = [
    'OneShotVOCMetric', 'episodes_ap', 'match_episode',
    'PatchLocalisationMetric', 'patch_localisation'
]
