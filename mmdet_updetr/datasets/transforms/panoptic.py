"""Stuff segments as instances, for DETR's panoptic training."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks


@TRANSFORMS.register_module()
class PanopticStuffToInstances(BaseTransform):
    """Append one instance per stuff class present in the panoptic map.

    DETR learns boxes (and later masks) of things *and* stuff: every
    segment of the panoptic annotation is a target. mmdet's
    ``CocoPanopticDataset`` and ``LoadPanopticAnnotations`` give boxes and
    masks of the (non-crowd) things only, and stuff in ``gt_seg_map``. This
    transform, placed after the geometric transforms and before
    ``PackDetInputs``, turns each stuff label present in ``gt_seg_map`` into
    an instance: its mask (``seg == label``), its tight box and its label.
    COCO panoptic has one segment per stuff class and image, so this is the
    reference's target set (whose boxes come from masks too). Crowd things
    are no target here (mmdet drops them; the reference keeps them).

    Required Keys:

    - gt_seg_map (np.uint8): (H, W), things ``< num_things_classes``, stuff
      after them, ``ignore_index`` for void.
    - gt_bboxes (HorizontalBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_masks (BitmapMasks) (optional)

    Modified Keys:

    - gt_bboxes
    - gt_bboxes_labels
    - gt_ignore_flags
    - gt_masks (only when present)

    Added Keys:

    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags (when absent: stuff
      only)

    Args:
        num_things_classes (int): Labels below this are things. Defaults
            to 80.
        ignore_index (int): Void label of ``gt_seg_map``. Defaults to 255.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 ignore_index: int = 255) -> None:
        self.num_things_classes = num_things_classes
        self.ignore_index = ignore_index

    def _stuff_instances(self, seg: np.ndarray) -> tuple:
        """Labels (k, ), masks (k, H, W) and xyxy boxes (k, 4) of stuff."""
        labels = [
            label for label in np.unique(seg)
            if self.num_things_classes <= label != self.ignore_index
        ]
        labels = np.array(labels, dtype=np.int64)
        masks = (seg[None] == labels[:, None, None]).astype(np.uint8)
        boxes = np.zeros((len(labels), 4), dtype=np.float32)
        for i, mask in enumerate(masks):
            ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            boxes[i] = [xs[0], ys[0], xs[-1] + 1, ys[-1] + 1]
        return labels, masks, boxes

    def transform(self, results: dict) -> dict:
        """Append the stuff instances.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict with stuff appended to the ``gt_*`` keys.
        """
        if 'gt_seg_map' not in results:
            raise KeyError(
                'PanopticStuffToInstances needs `gt_seg_map`: load it with '
                'LoadPanopticAnnotations(with_seg=True) before this '
                'transform, and give the dataset data_prefix[\'seg\'] (the '
                'folder of panoptic PNGs; without it mmdet loads no map)')
        seg = results['gt_seg_map']
        labels, masks, boxes = self._stuff_instances(seg)
        old_boxes = results.get('gt_bboxes', HorizontalBoxes(np.zeros((0, 4))))
        results['gt_bboxes'] = old_boxes.cat(
            [old_boxes, HorizontalBoxes(boxes)])
        results['gt_bboxes_labels'] = np.concatenate(
            [results.get('gt_bboxes_labels', np.zeros(0, np.int64)),
             labels]).astype(np.int64)
        results['gt_ignore_flags'] = np.concatenate([
            results.get('gt_ignore_flags', np.zeros(0, bool)),
            np.zeros(len(labels), bool)
        ])
        if 'gt_masks' in results:
            height, width = seg.shape[:2]
            old_masks = results['gt_masks'].masks
            if len(old_masks) and old_masks.shape[1:] != (height, width):
                raise ValueError(
                    f'gt_masks are {old_masks.shape[1:]} but gt_seg_map '
                    f'{(height, width)}: transform both alike before '
                    'PanopticStuffToInstances')
            # Empty masks may carry a stale size.
            old_masks = old_masks.reshape(-1, height, width)
            results['gt_masks'] = BitmapMasks(
                np.concatenate([old_masks.astype(np.uint8), masks]), height,
                width)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_things_classes='
                f'{self.num_things_classes}, '
                f'ignore_index={self.ignore_index})')
