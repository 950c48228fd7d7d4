"""Data preprocessor of UP-DETR: images as DETR's, plus query patches."""
from numbers import Number
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from mmdet_updetr.augmentation import augment_patches, autocast_off


@MODELS.register_module()
class UPDETRDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` that also batches the query patches.

    The images and boxes are processed by :class:`DetDataPreprocessor`.
    Then, if the data samples carry ``query_patches`` (uint8, (M, 3, ph, pw),
    in the channel order of the images: BGR from mmdet's loaders) as packed
    by :class:`PackUPDETRInputs`, the patches of the batch are stacked to
    (B, M, 3, ph, pw) on the model's device, converted to RGB, augmented
    with their ``query_patch_aug`` parameters (see
    :mod:`mmdet_updetr.augmentation`, which owns the augmentation: its draw
    in the dataset transforms, its apply here; skipped for samples without
    parameters; in float32 even under ``torch.autocast``),
    brought to the channel order of the images (``bgr_to_rgb`` /
    ``rgb_to_bgr`` as for the images) and normalised with the images'
    ``mean`` and ``std``. Each data sample's ``query_patches`` is replaced by
    its float32 patches of shape (M, 3, ph, pw); patch ``i`` still belongs
    to ``gt_instances.bboxes[i]``.

    The whole preprocessing (images and patches) runs with
    ``torch.autocast`` switched off: ``BaseModel.train_step`` calls it inside
    the optimizer wrapper's autocast (``--amp``), and its outputs are float32
    as without autocast.

    The augmentation is applied whatever ``training`` is: its parameters say
    whether a patch is augmented (the identity for validation pipelines).

    Args:
        mean (Sequence[Number], optional): Pixel mean of the channels, on
            0-255. Defaults to None.
        std (Sequence[Number], optional): Pixel std of the channels, on
            0-255. Defaults to None.
        bgr_to_rgb (bool): Convert images and patches from BGR to RGB.
            Defaults to False.
        rgb_to_bgr (bool): Convert images and patches from RGB to BGR.
            Defaults to False.
        **kwargs: Other arguments of :class:`DetDataPreprocessor`.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 **kwargs) -> None:
        super().__init__(
            mean=mean,
            std=std,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            **kwargs)
        # Patches come in the images' order (BGR unless the images are RGB
        # to be flipped to BGR) and leave in the order of the processed
        # images (RGB only with bgr_to_rgb).
        self._patches_in_rgb = rgb_to_bgr
        self._patches_out_rgb = bgr_to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        """Process the images and boxes, then the query patches.

        Args:
            data (dict): Data from the dataloader (``pseudo_collate``).
            training (bool): Whether it is the training phase.

        Returns:
            dict: ``inputs`` (Tensor (B, 3, H, W)) and ``data_samples``, whose
            ``query_patches`` are float32 (M, 3, ph, pw) on the device.
        """
        # UP-DETR: float32 pixel work, even inside the optim wrapper's
        # autocast.
        # UP-DETR: the augmentation parameters stay on the host, where the
        # choice of ops reads them (cast_data would upload them, and reading
        # them back would wait for the device).
        host_params = [
            s.get('query_patch_aug') for s in data.get('data_samples') or []
        ]
        with autocast_off(self.device):
            data = super().forward(data=data, training=training)
            data_samples = data['data_samples']
            for sample, params in zip(data_samples or [], host_params):
                if params is not None:
                    sample.query_patch_aug = params
            if data_samples and any('query_patches' in sample
                                    for sample in data_samples):
                patches = self.preprocess_patches(data_samples)
                for sample, sample_patches in zip(data_samples, patches):
                    sample.query_patches = sample_patches
        return data

    def stack_patches(self,
                      data_samples: SampleList) -> Tuple[Tensor, List[Tensor]]:
        """Stack the query patches of a batch on the device.

        Args:
            data_samples (list[:obj:`DetDataSample`]): The batch's samples.

        Returns:
            tuple[Tensor, list[Tensor | None]]: The patches, uint8 (B, M, 3,
            ph, pw), and each sample's augmentation parameters (M, P) or
            None.
        """
        missing = [
            i for i, s in enumerate(data_samples) if 'query_patches' not in s
        ]
        if missing:
            raise ValueError(f'Samples {missing} of the batch have no '
                             '`query_patches` while others have.')
        shapes = [tuple(s.query_patches.shape) for s in data_samples]
        if len(set(shapes)) > 1:
            raise ValueError(
                'All samples of a batch need the same number and size of '
                f'query patches (M, 3, ph, pw); got {shapes}. Use one '
                '`num_patches` for the whole dataset.')
        patches = torch.stack([s.query_patches for s in data_samples])
        params = [s.get('query_patch_aug') for s in data_samples]
        return patches.to(self.device), params

    def preprocess_patches(self, data_samples: SampleList) -> Tensor:
        """Augment and normalise the query patches of a batch.

        Args:
            data_samples (list[:obj:`DetDataSample`]): The batch's samples.

        Returns:
            Tensor: float32 patches of shape (B, M, 3, ph, pw).
        """
        patches, params = self.stack_patches(data_samples)
        batch_size, num_patches = patches.shape[:2]
        img = patches.flatten(0, 1).float().div_(255.0)
        if not self._patches_in_rgb:
            img = img.flip(1)  # BGR -> RGB for the colour ops
        if all(p is not None for p in params):
            img = augment_patches(img, torch.cat(params))
        elif any(p is not None for p in params):
            raise ValueError('Either all or no samples of a batch need '
                             '`query_patch_aug`.')
        if not self._patches_out_rgb:
            img = img.flip(1)
        img = img.mul_(255.0)
        if self._enable_normalize:
            img = (img - self.mean) / self.std
        return img.view(batch_size, num_patches, *img.shape[1:])
