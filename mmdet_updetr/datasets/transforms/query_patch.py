"""Random query patches: the pretext of UP-DETR's pre-training."""
import logging
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.logging import print_log

from mmdet_updetr.models.data_preprocessors.patch_augmentation import (
    AUG_COL, IDENTITY_AUG_PARAMS, JITTER_FACTOR_COLS, JITTER_ORDER_COLS)


@TRANSFORMS.register_module()
class QueryPatchTransform(BaseTransform):
    """Crop random query patches and make their boxes the ground truth.

    For each image, ``num_patches`` (M) patches are drawn as in the
    reference's ``get_random_patch_from_img``: width ``sw`` uniform over the
    integers ``[min_size, w - min_size]``, height ``sh`` uniform over
    ``[min_size, h - min_size]``, left ``x`` uniform over
    ``[0, w - sw - 1]`` and top ``y`` over ``[0, h - sh - 1]`` (numpy
    ``randint`` semantics: the reference never lets a patch touch the right
    or bottom border). Each patch is cropped from the *original* image,
    resized to ``patch_size`` (aspect ratio not kept) and its box
    ``[x, y, x + sw, y + sh]`` becomes a ground-truth box of the single
    class 0, box ``i`` belonging to patch ``i``.

    The patch augmentation (SimCLR-style: colour jitter, grayscale and
    Gaussian blur, no flip) is only *drawn* here, on the CPU with numpy
    under :func:`cache_randomness`, and stored per patch in
    ``query_patch_aug``; :class:`UPDETRDataPreprocessor` applies it batched
    on the model's device. The column layout is documented in
    :mod:`mmdet_updetr.models.data_preprocessors.patch_augmentation`:
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

    Existing ``gt_*`` keys are overwritten. Returns None (the dataset then
    draws another image) when the image is smaller than ``2 * min_size``.

    Args:
        num_patches (int): Number of query patches M. Defaults to 10.
        min_size (int): Smallest patch side, also the smallest margin
            between the patch side and the image side. Defaults to 8.
        patch_size (int | tuple[int, int]): Output size of the patches,
            an int for a square or ``(w, h)``. Defaults to 128.
        augment (bool): Draw augmentation parameters. If False every patch
            gets the identity parameters (for validation). Defaults to True.
        jitter (Sequence[float]): Strengths of brightness, contrast,
            saturation and hue, as torchvision's ``ColorJitter``.
            Defaults to (0.4, 0.4, 0.4, 0.1).
        jitter_prob (float): Probability of the colour jitter.
            Defaults to 0.8.
        gray_prob (float): Probability of the grayscale conversion.
            Defaults to 0.2.
        blur_prob (float): Probability of the Gaussian blur.
            Defaults to 0.5.
        blur_sigma (Sequence[float]): Range of the blur's sigma in pixels.
            Defaults to (0.1, 2.0).
        interpolation (str): Interpolation of the patch resize, see
            :func:`mmcv.imresize`. Defaults to 'bilinear'.
    """

    def __init__(self,
                 num_patches: int = 10,
                 min_size: int = 8,
                 patch_size: Union[int, Tuple[int, int]] = 128,
                 augment: bool = True,
                 jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.2,
                 blur_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 2.0),
                 interpolation: str = 'bilinear') -> None:
        if num_patches < 1:
            raise ValueError(f'num_patches must be >= 1, got {num_patches}')
        if min_size < 1:
            raise ValueError(f'min_size must be >= 1, got {min_size}')
        if isinstance(patch_size, int):
            patch_size = (patch_size, patch_size)
        if len(jitter) != 4 or not 0 <= jitter[3] <= 0.5:
            raise ValueError('jitter must be (brightness, contrast, '
                             f'saturation, hue<=0.5), got {jitter}')
        self.num_patches = num_patches
        self.min_size = min_size
        self.patch_size = tuple(patch_size)
        self.augment = augment
        self.jitter = tuple(float(j) for j in jitter)
        self.jitter_prob = jitter_prob
        self.gray_prob = gray_prob
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(float(s) for s in blur_sigma)
        self.interpolation = interpolation

    @cache_randomness
    def _draw_boxes(self, width: int, height: int) -> np.ndarray:
        """Draw M patch boxes in an image of ``width`` x ``height``.

        Returns:
            np.ndarray: Integer boxes ``[x, y, x + sw, y + sh]`` of shape
            (M, 4).
        """
        num, low = self.num_patches, self.min_size
        sw = np.random.randint(low, width - low + 1, size=num)
        sh = np.random.randint(low, height - low + 1, size=num)
        # The reference's randint(w - sw): w - sw >= min_size >= 1.
        x = np.random.randint(0, width - sw)
        y = np.random.randint(0, height - sh)
        return np.stack([x, y, x + sw, y + sh], axis=1)

    @cache_randomness
    def _draw_aug_params(self) -> np.ndarray:
        """Draw the augmentation parameters of M patches.

        Returns:
            np.ndarray: float32 array of shape (M, P), see the class doc.
        """
        num = self.num_patches
        params = np.tile(np.asarray(IDENTITY_AUG_PARAMS, np.float32), (num, 1))
        if not self.augment:
            return params
        jitter = np.random.rand(num) < self.jitter_prob
        bright, contrast, sat, hue = self.jitter
        low = np.array([1 - bright, 1 - contrast, 1 - sat, -hue])
        high = np.array([1 + bright, 1 + contrast, 1 + sat, hue])
        factors = np.random.uniform(
            np.maximum(low, [0, 0, 0, -hue]), high, (num, 4))
        # A uniformly random permutation of the 4 ops for each patch.
        order = np.argsort(np.random.rand(num, 4), axis=1)
        gray = np.random.rand(num) < self.gray_prob
        blur = np.random.rand(num) < self.blur_prob
        sigma = np.random.uniform(*self.blur_sigma, num)
        params[jitter, AUG_COL['jitter']] = 1
        params[np.ix_(jitter, JITTER_FACTOR_COLS)] = factors[jitter]
        params[np.ix_(jitter, JITTER_ORDER_COLS)] = order[jitter]
        params[:, AUG_COL['gray']] = gray
        params[:, AUG_COL['blur']] = blur
        params[blur, AUG_COL['sigma']] = sigma[blur]
        return params

    def _crop_patches(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Crop the boxes from ``img`` and resize them to ``patch_size``.

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
                self.patch_size,
                interpolation=self.interpolation) for x1, y1, x2, y2 in boxes
        ]
        patches = np.stack(patches)
        if patches.dtype != np.uint8:
            patches = np.clip(np.round(patches), 0, 255).astype(np.uint8)
        return patches

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
        boxes = self._draw_boxes(width, height)
        num = len(boxes)
        results['query_patches'] = self._crop_patches(img, boxes)
        results['query_patch_aug'] = self._draw_aug_params()
        results['gt_bboxes'] = HorizontalBoxes(boxes.astype(np.float32))
        results['gt_bboxes_labels'] = np.zeros(num, dtype=np.int64)
        results['gt_ignore_flags'] = np.zeros(num, dtype=bool)
        return results

    def __repr__(self) -> str:
        repr_str = self.__class__.__name__
        repr_str += f'(num_patches={self.num_patches}, '
        repr_str += f'min_size={self.min_size}, '
        repr_str += f'patch_size={self.patch_size}, '
        repr_str += f'augment={self.augment}, '
        repr_str += f'jitter={self.jitter}, '
        repr_str += f'jitter_prob={self.jitter_prob}, '
        repr_str += f'gray_prob={self.gray_prob}, '
        repr_str += f'blur_prob={self.blur_prob}, '
        repr_str += f'blur_sigma={self.blur_sigma}, '
        repr_str += f"interpolation='{self.interpolation}')"
        return repr_str
