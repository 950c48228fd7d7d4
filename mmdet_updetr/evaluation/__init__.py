from .oneshot_voc_metric import OneShotVOCMetric, episodes_ap, match_episode

__all__ = ['OneShotVOCMetric', 'episodes_ap', 'match_episode']
