# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""The query crop of one-shot detection: an object from another image."""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get
from mmengine.utils import to_2tuple

from mmdet_updetr.augmentation import QueryPatchAugmentation
from .query_patch import crop_patches


def pad_to_square(crop: np.ndarray, pad_val: int = 0) -> np.ndarray:
    """Pad a crop to a square, centred, as CoAE pads its query crops.

    The side is the crop's longer side; the crop sits at offset
    ``side // 2 - size // 2`` along its shorter side (CoAE's ``crop`` in
    ``lib/model/utils/blob.py``), the rest is ``pad_val`` (CoAE: zeros,
    black pixels, before normalisation). Unlike CoAE's code, a crop whose
    longer side is odd keeps its last row or column.

    Args:
        crop (np.ndarray): Image crop (h, w, c).
        pad_val (int): Value of the padding. Defaults to 0.

    Returns:
        np.ndarray: The (side, side, c) square, ``crop``'s dtype.
    """
    height, width = crop.shape[:2]
    side = max(height, width)
    top, left = side // 2 - height // 2, side // 2 - width // 2
    square = np.full((side, side) + crop.shape[2:], pad_val, crop.dtype)
    square[top:top + height, left:left + width] = crop
    return square


@TRANSFORMS.register_module()
class LoadOneShotQuery(BaseTransform):
    """Load the query image of a one-shot pair and crop its query object.

    :class:`~mmdet_updetr.datasets.OneShotVOCDataset` names, per sample, the
    image and the ground-truth box of the query object (``query_img_path``,
    ``query_bbox``). This transform reads that image, crops the box, pads it
    to a square with black (CoAE's query crop, :func:`pad_to_square`; with
    ``pad_to_square=False`` the box is stretched instead), resizes it to
    ``patch_size`` with :func:`crop_patches`, and draws its augmentation
    with the pre-training patches' :class:`QueryPatchAugmentation` (one
    patch): SimCLR-style colour jitter, grayscale and Gaussian blur, drawn
    here under ``cache_randomness`` and applied by
    :class:`UPDETRDataPreprocessor`. So
    :class:`PackUPDETRInputs` and the data preprocessor work unchanged, with
    ``M = 1``.

    Required Keys:

    - query_img_path (str): The image holding the query object.
    - query_bbox (list[float] | np.ndarray): Its box, absolute
      ``[x1, y1, x2, y2]`` in that image.

    Added Keys:

    - query_patches (np.uint8): (1, ph, pw, 3) BGR crop.
    - query_patch_aug (np.float32): (1, P) augmentation parameters, the
      identity with ``augment=False``.

    Args:
        patch_size (int | tuple[int, int]): Output size of the crop, an int
            for a square or ``(w, h)``. Defaults to 128.
        augment (bool | dict): True: draw the default augmentation
            (training); False: the crop is left as it is (testing); a dict:
            the arguments of :class:`QueryPatchAugmentation`.
            Defaults to True.
        pad_to_square (bool): Pad the box's crop to a square (black,
            centred) before resizing it, keeping the object's aspect ratio,
            as CoAE (Hsieh et al., NeurIPS 2019), whose protocol the paper's
            Table 3 follows. False stretches the box to ``patch_size``.
            Defaults to True.
        interpolation (str): Interpolation of the resize. Defaults to
            'bilinear'.
        backend_args (dict, optional): File backend of the query image.
            Defaults to None.
    """

    def __init__(self,
                 patch_size: Union[int, Tuple[int, int]] = 128,
                 augment: Union[bool, dict] = True,
                 pad_to_square: bool = True,
                 interpolation: str = 'bilinear',
                 backend_args: Optional[dict] = None) -> None:
        self.patch_size = tuple(to_2tuple(patch_size))
        self.augmentation = QueryPatchAugmentation.from_cfg(augment)
        self.pad_to_square = pad_to_square
        self.interpolation = interpolation
        self.backend_args = backend_args

    @staticmethod
    def crop_box(bbox: Sequence[float], width: int, height: int) -> np.ndarray:
        """Integer crop window of a box: floor / ceil, clipped, >= 1 px.

        Args:
            bbox (Sequence[float]): Absolute ``[x1, y1, x2, y2]``.
            width (int): Image width.
            height (int): Image height.

        Returns:
            np.ndarray: int64 ``[[x1, y1, x2, y2]]``, shape (1, 4).
        """
        x1, y1, x2, y2 = (float(v) for v in bbox)
        x1 = min(max(int(np.floor(x1)), 0), width - 1)
        y1 = min(max(int(np.floor(y1)), 0), height - 1)
        x2 = min(max(int(np.ceil(x2)), x1 + 1), width)
        y2 = min(max(int(np.ceil(y2)), y1 + 1), height)
        return np.array([[x1, y1, x2, y2]], dtype=np.int64)

    def crop_query(self, img: np.ndarray, bbox: Sequence[float]) -> np.ndarray:
        """Crop the query object's window from its image and resize it.

        Args:
            img (np.ndarray): The query image, (H, W, 3) BGR.
            bbox (Sequence[float]): The object's absolute
                ``[x1, y1, x2, y2]``.

        Returns:
            np.ndarray: uint8 crop of shape (1, ph, pw, 3).
        """
        height, width = img.shape[:2]
        box = self.crop_box(bbox, width, height)
        if self.pad_to_square:
            # UP-DETR: CoAE's query crop, the box padded to a square first.
            (x1, y1, x2, y2), = box
            img = pad_to_square(img[y1:y2, x1:x2])
            box = np.array([[0, 0, img.shape[1], img.shape[0]]])
        return crop_patches(img, box, self.patch_size, self.interpolation)

    @cache_randomness
    def _draw_aug_params(self) -> np.ndarray:
        """Draw the query's augmentation parameters.

        Marked here, on the transform, because ``cache_random_params``
        looks at the transforms of a pipeline, not at their members.

        Returns:
            np.ndarray: float32 array of shape (1, P).
        """
        return self.augmentation.draw(1)

    def transform(self, results: dict) -> dict:
        """Crop the query object and draw its augmentation.

        Args:
            results (dict): Result dict with ``query_img_path`` and
                ``query_bbox``.

        Returns:
            dict: The result dict with ``query_patches`` and
            ``query_patch_aug``.
        """
        for key in ('query_img_path', 'query_bbox'):
            if key not in results:
                raise KeyError(
                    f'LoadOneShotQuery needs `{key}` in the results: use it '
                    'with OneShotVOCDataset (or a dataset that names the '
                    'query image and box of each sample).')
        path = results['query_img_path']
        img = mmcv.imfrombytes(
            get(path, backend_args=self.backend_args), flag='color')
        if img is None:
            raise ValueError(f'LoadOneShotQuery: cannot decode {path}')
        results['query_patches'] = self.crop_query(img, results['query_bbox'])
        results['query_patch_aug'] = self._draw_aug_params()
        return results

    def __repr__(self) -> str:
        repr_str = self.__class__.__name__
        repr_str += f'(patch_size={self.patch_size}, '
        repr_str += f'augment={self.augmentation.enabled}, '
        repr_str += f'pad_to_square={self.pad_to_square}, '
        repr_str += f'{self.augmentation.args_repr()}, '
        repr_str += f"interpolation='{self.interpolation}', "
        repr_str += f'backend_args={self.backend_args})'
        return repr_str
