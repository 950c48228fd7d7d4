from .query_patch import PATCH_COLORS, draw_query_patch_detection

__all__ = ['PATCH_COLORS', 'draw_query_patch_detection']
