"""UP-DETR for MMDetection 3.x.

Importing this package registers its modules into mmdet's registries and
makes the runs' checkpoints loadable by ``torch.load(weights_only=True)``.
Configs load it with ``custom_imports = dict(imports=['mmdet_updetr'])``.
"""
from . import datasets, evaluation, models  # noqa: F401,E402,I001
from .engine import enable_safe_checkpoints
from .version import __version__

enable_safe_checkpoints()

__all__ = ['__version__', 'datasets', 'evaluation', 'models']
