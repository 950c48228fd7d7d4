"""UP-DETR for MMDetection 3.x.

Importing this package registers its modules into mmdet's registries and
changes nothing else. Configs load it with ``custom_imports =
dict(imports=['mmdet_updetr'])``. Checkpoints that load with
``torch.load(weights_only=True)`` are an explicit step, which our tools
take: :func:`mmdet_updetr.engine.enable_safe_checkpoints`, or the
``SafeCheckpointHook`` that our configs list.
"""
from . import datasets, engine, evaluation, models, visualization  # noqa
from .version import __version__

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models',
    'visualization'
]
