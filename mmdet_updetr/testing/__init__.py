from ._utils import get_config_path, get_tiny_cfg, tiny_model_cfg

__all__ = ['get_config_path', 'get_tiny_cfg', 'tiny_model_cfg']
