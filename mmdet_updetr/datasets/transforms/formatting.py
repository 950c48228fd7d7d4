"""Packing of UP-DETR's query patches with each sample."""
import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackUPDETRInputs(PackDetInputs):
    """Pack the inputs of UP-DETR: :class:`PackDetInputs` plus query patches.

    Besides what :class:`PackDetInputs` packs (the image as ``inputs``, the
    boxes as ``data_samples.gt_instances``, in the order they are given, and
    the meta information), the query patches and their augmentation
    parameters are set on the data sample.

    Required Keys:

    - img
    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags (optional)
    - query_patches (np.uint8, optional): (M, ph, pw, 3) BGR patches.
    - query_patch_aug (np.float32, optional): (M, P) augmentation
      parameters.

    Added Keys (of the packed result):

    - inputs (torch.Tensor): (3, H, W) uint8 image.
    - data_samples (DetDataSample): with ``query_patches`` (torch.uint8,
      (M, 3, ph, pw) BGR) and ``query_patch_aug`` (torch.float32, (M, P))
      when the results hold them.

    Args:
        meta_keys (Sequence[str]): Meta keys to be packed, see
            :class:`PackDetInputs`.
    """

    def transform(self, results: dict) -> dict:
        """Pack the image, the boxes, the meta and the query patches.

        Args:
            results (dict): Result dict from the data pipeline.

        Returns:
            dict: ``inputs`` (Tensor) and ``data_samples`` (DetDataSample).
        """
        packed = super().transform(results)
        # UP-DETR: the query patches, HWC -> CHW, box i belongs to patch i.
        data_sample = packed['data_samples']
        if 'query_patches' in results:
            patches = np.ascontiguousarray(results['query_patches'].transpose(
                0, 3, 1, 2))
            data_sample.query_patches = torch.from_numpy(patches)
        # UP-DETR: the per-patch augmentation parameters.
        if 'query_patch_aug' in results:
            data_sample.query_patch_aug = torch.from_numpy(
                np.asarray(results['query_patch_aug'], dtype=np.float32))
        return packed
