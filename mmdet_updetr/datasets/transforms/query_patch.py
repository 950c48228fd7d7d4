"""Random query patches: the pretext of UP-DETR's pre-training."""
import contextlib
import logging
import os.path as osp
import zlib
from typing import Iterator, Optional, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.logging import print_log
from mmengine.utils import to_2tuple

from mmdet_updetr.augmentation import QueryPatchAugmentation


def draw_patch_boxes(width: int,
                     height: int,
                     num_patches: int = 10,
                     min_size: int = 8) -> np.ndarray:
    """Draw random patch boxes as the reference's
    ``get_random_patch_from_img``.

    Width ``sw`` uniform over the integers ``[min_size, width - min_size]``,
    height ``sh`` over ``[min_size, height - min_size]``, left ``x`` uniform
    over ``[0, width - sw - 1]`` and top ``y`` over ``[0, height - sh - 1]``
    (numpy ``randint`` semantics: the reference never lets a patch touch the
    right or bottom border). Uses the global ``np.random`` state: call it
    from a method under ``cache_randomness``.

    Args:
        width (int): Image width, at least ``2 * min_size``.
        height (int): Image height, at least ``2 * min_size``.
        num_patches (int): Number of boxes M. Defaults to 10.
        min_size (int): Smallest box side, also the smallest margin between
            the box side and the image side. Defaults to 8.

    Returns:
        np.ndarray: Integer boxes ``[x, y, x + sw, y + sh]`` of shape (M, 4).
    """
    num, low = num_patches, min_size
    sw = np.random.randint(low, width - low + 1, size=num)
    sh = np.random.randint(low, height - low + 1, size=num)
    # The reference's randint(w - sw): w - sw >= min_size >= 1.
    x = np.random.randint(0, width - sw)
    y = np.random.randint(0, height - sh)
    return np.stack([x, y, x + sw, y + sh], axis=1)


def crop_patches(img: np.ndarray,
                 boxes: np.ndarray,
                 patch_size: Union[int, Tuple[int, int]] = 128,
                 interpolation: str = 'bilinear') -> np.ndarray:
    """Crop boxes from an image and resize them (aspect ratio not kept).

    Args:
        img (np.ndarray): (H, W, 3) or (H, W) image; gray images give
            patches of 3 equal channels.
        boxes (np.ndarray): Integer boxes ``[x1, y1, x2, y2]`` inside the
            image, of shape (M, 4).
        patch_size (int | tuple[int, int]): Output size, an int for a
            square or ``(w, h)``. Defaults to 128.
        interpolation (str): Interpolation of the resize, see
            :func:`mmcv.imresize`. Defaults to 'bilinear'.

    Returns:
        np.ndarray: uint8 patches of shape (M, ph, pw, 3).
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    patches = [
        mmcv.imresize(
            img[y1:y2, x1:x2],
            tuple(to_2tuple(patch_size)),
            interpolation=interpolation) for x1, y1, x2, y2 in boxes
    ]
    patches = np.stack(patches)
    if patches.dtype != np.uint8:
        patches = np.clip(np.round(patches), 0, 255).astype(np.uint8)
    return patches


@contextlib.contextmanager
def seeded_by_name(img_path: Optional[str]) -> Iterator[None]:
    """Seed the global ``np.random`` from an image's file name, for a while.

    The seed is the CRC-32 of the file name (not of the folder, so the
    same image gets the same draws wherever the data lives); the global
    state is restored on exit, so the draws around are not changed.

    Args:
        img_path (str, optional): The image path; None (images given as
            arrays) seeds with 0.
    """
    state = np.random.get_state()
    name = osp.basename(img_path) if img_path else ''
    np.random.seed(zlib.crc32(name.encode('utf-8')))
    try:
        yield
    finally:
        np.random.set_state(state)


@TRANSFORMS.register_module()
class QueryPatchTransform(BaseTransform):
    """Crop random query patches and make their boxes the ground truth.

    For each image, ``num_patches`` (M) boxes are drawn as in the
    reference (:func:`draw_patch_boxes`); each patch is cropped from the
    *original* image and resized to ``patch_size`` (:func:`crop_patches`)
    and its box ``[x, y, x + sw, y + sh]`` becomes a ground-truth box of the
    single class 0, box ``i`` belonging to patch ``i``.

    The patch augmentation (SimCLR-style: colour jitter, grayscale and
    Gaussian blur, no flip; :class:`QueryPatchAugmentation`) is only *drawn*
    here, on the CPU with numpy under :func:`cache_randomness`, and stored
    per patch in ``query_patch_aug``; :class:`UPDETRDataPreprocessor`
    applies it batched on the model's device. The column layout is
    documented in :mod:`mmdet_updetr.augmentation.patch_augmentation`:
    ``[jitter, brightness, contrast, saturation, hue, order0, order1,
    order2, order3, gray, blur, sigma]``.

    Required Keys:

    - img (np.ndarray): (H, W, 3) BGR uint8 (or (H, W) gray).

    Added Keys:

    - gt_bboxes (HorizontalBoxes[torch.float32]): (M, 4) absolute xyxy.
    - gt_bboxes_labels (np.int64): (M, ), all zeros.
    - gt_ignore_flags (bool): (M, ), all False.
    - query_patches (np.uint8): (M, ph, pw, 3) BGR patches.
    - query_patch_aug (np.float32): (M, P) augmentation parameters,
      ``P = 12``.

    With ``deterministic=True`` (validation) the boxes and augmentation of
    an image are drawn from a seed of its file name
    (:func:`seeded_by_name`): the same patches in every run and epoch.

    Existing ``gt_*`` keys are overwritten. Returns None (the dataset then
    draws another image) when the image is smaller than ``2 * min_size``.

    Args:
        num_patches (int): Number of query patches M. Defaults to 10.
        min_size (int): Smallest patch side, also the smallest margin
            between the patch side and the image side. Defaults to 8.
        patch_size (int | tuple[int, int]): Output size of the patches,
            an int for a square or ``(w, h)``. Defaults to 128.
        augment (bool | dict): True: draw the default augmentation; False:
            every patch gets the identity parameters (for validation); a
            dict: the arguments of :class:`QueryPatchAugmentation` (e.g.
            ``dict(blur_prob=0.2)``). Defaults to True.
        interpolation (str): Interpolation of the patch resize, see
            :func:`mmcv.imresize`. Defaults to 'bilinear'.
        deterministic (bool): Seed the draws of each image from its file
            name (validation) instead of the run's random state.
            Defaults to False.
    """

    def __init__(self,
                 num_patches: int = 10,
                 min_size: int = 8,
                 patch_size: Union[int, Tuple[int, int]] = 128,
                 augment: Union[bool, dict] = True,
                 interpolation: str = 'bilinear',
                 deterministic: bool = False) -> None:
        if num_patches < 1:
            raise ValueError(f'num_patches must be >= 1, got {num_patches}')
        if min_size < 1:
            raise ValueError(f'min_size must be >= 1, got {min_size}')
        self.num_patches = num_patches
        self.min_size = min_size
        self.patch_size = tuple(to_2tuple(patch_size))
        self.augmentation = QueryPatchAugmentation.from_cfg(augment)
        self.interpolation = interpolation
        self.deterministic = deterministic

    @cache_randomness
    def _draw_boxes(self, width: int, height: int) -> np.ndarray:
        """Draw M patch boxes in an image of ``width`` x ``height``.

        Returns:
            np.ndarray: Integer boxes ``[x, y, x + sw, y + sh]`` of shape
            (M, 4).
        """
        return draw_patch_boxes(width, height, self.num_patches, self.min_size)

    @cache_randomness
    def _draw_aug_params(self) -> np.ndarray:
        """Draw the augmentation parameters of M patches.

        Returns:
            np.ndarray: float32 array of shape (M, P), see the class doc.
        """
        return self.augmentation.draw(self.num_patches)

    def transform(self, results: dict) -> Optional[dict]:
        """Crop the query patches and add their boxes as ground truth.

        Args:
            results (dict): Result dict with the image in ``img``.

        Returns:
            dict | None: The updated result dict, or None when the image is
            too small for patches of ``min_size``.
        """
        img = results['img']
        height, width = img.shape[:2]
        if min(width, height) < 2 * self.min_size:
            print_log(
                f'QueryPatchTransform: skipping {results.get("img_path")}: '
                f'{width}x{height} is smaller than 2 * min_size '
                f'({self.min_size}) on a side.',
                logger='current',
                level=logging.WARNING)
            return None
        seeded = seeded_by_name(results.get('img_path')) \
            if self.deterministic else contextlib.nullcontext()
        with seeded:
            boxes = self._draw_boxes(width, height)
            aug_params = self._draw_aug_params()
        num = len(boxes)
        results['query_patches'] = crop_patches(img, boxes, self.patch_size,
                                                self.interpolation)
        results['query_patch_aug'] = aug_params
        results['gt_bboxes'] = HorizontalBoxes(boxes.astype(np.float32))
        results['gt_bboxes_labels'] = np.zeros(num, dtype=np.int64)
        results['gt_ignore_flags'] = np.zeros(num, dtype=bool)
        return results

    def __repr__(self) -> str:
        repr_str = self.__class__.__name__
        repr_str += f'(num_patches={self.num_patches}, '
        repr_str += f'min_size={self.min_size}, '
        repr_str += f'patch_size={self.patch_size}, '
        repr_str += f'augment={self.augmentation.enabled}, '
        repr_str += f'{self.augmentation.args_repr()}, '
        repr_str += f"interpolation='{self.interpolation}', "
        repr_str += f'deterministic={self.deterministic})'
        return repr_str
