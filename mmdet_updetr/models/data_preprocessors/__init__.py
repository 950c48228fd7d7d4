from .updetr_data_preprocessor import UPDETRDataPreprocessor

__all__ = ['UPDETRDataPreprocessor']
