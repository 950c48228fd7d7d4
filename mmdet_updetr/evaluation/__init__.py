from .oneshot_voc_metric import OneShotVOCMetric, episodes_ap

__all__ = ['OneShotVOCMetric', 'episodes_ap']
