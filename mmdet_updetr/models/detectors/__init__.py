from .updetr import UPDETR

__all__ = ['UPDETR']
