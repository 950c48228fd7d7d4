# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.models.seg_heads.panoptic_fusion_heads import BasePanopticFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.structures import PixelData
from torch import Tensor


@MODELS.register_module()
class DETRFusionHead(BasePanopticFusionHead):
    """DETR's panoptic post-processing, in mmdet's panoptic result form.

    Queries whose best class is not "no object" and whose score exceeds
    ``test_cfg.object_mask_thr`` (0.85 in the reference) are kept; each
    pixel goes to the kept query with the largest mask logit. Things keep
    one segment per query; the queries of one stuff class form one segment.
    Segments of at most ``test_cfg.min_area`` pixels (4 in the reference)
    are dropped and the pixels re-assigned among the remaining queries,
    until none is that small.

    The result, as mmdet's ``MaskFormerFusionHead`` gives it (and
    ``CocoPanopticMetric`` and ``DetLocalVisualizer`` read it), is a
    ``PixelData`` whose ``sem_seg`` (1, H, W) holds ``label`` for stuff,
    ``label + k * INSTANCE_OFFSET`` for the ``k``-th thing (k = 1, 2, ...)
    and ``num_classes`` where nothing was predicted; its metainfo
    ``segments_info`` lists the segments (``id``, ``label``, ``isthing``,
    ``area``).

    Differences from the reference, on purpose: masks are cropped to the
    image before resizing (the reference resizes the padded map), the
    argmax is taken at the output resolution, and several queries of one
    stuff class stay merged into one segment. (The reference merges them
    only to measure areas: every query but the first of the class then has
    area 0, is dropped as too small, and its pixels go to the argmax over
    the remaining queries, possibly another class.)

    Args:
        num_things_classes (int): Things, labels ``[0, num_things)``.
            Defaults to 80.
        num_stuff_classes (int): Stuff, the following labels. Defaults
            to 53.
        test_cfg (dict, optional): ``object_mask_thr`` (default 0.85) and
            ``min_area`` (default 4).
        init_cfg (dict, optional): Unused (no weights).
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        super().__init__(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            test_cfg=test_cfg or dict(),
            init_cfg=init_cfg,
            **kwargs)
        self.object_mask_thr = self.test_cfg.get('object_mask_thr', 0.85)
        self.min_area = self.test_cfg.get('min_area', 4)

    def loss(self, **kwargs) -> dict:
        """The fusion has no loss."""
        return dict()

    def keep_queries(self, cls_score: Tensor) -> Tensor:
        """Queries that are an object with score above the threshold.

        Args:
            cls_score (Tensor): Class logits, has shape
                (num_queries, num_classes + 1).

        Returns:
            Tensor: Boolean, has shape (num_queries, ).
        """
        scores, labels = cls_score.softmax(-1).max(-1)
        return labels.ne(self.num_classes) & (scores > self.object_mask_thr)

    def _paint(self, labels: Tensor,
               masks: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Per-pixel argmax; segment ids and areas per query.

        Args:
            labels (Tensor): Class of each query, has shape (k, ).
            masks (Tensor): Mask logits, has shape (k, H, W).

        Returns:
            tuple[Tensor]: The panoptic map (H, W), each query's segment id
            (k, ) and the area of that segment (k, ; shared by the queries
            of one stuff class).
        """
        is_thing = labels < self.num_things_classes
        instance_ids = torch.cumsum(is_thing.long(), 0) * is_thing
        seg_ids = labels + instance_ids * INSTANCE_OFFSET
        pan = seg_ids[masks.argmax(0)]
        ids, counts = pan.unique(return_counts=True)
        areas = ((seg_ids[:, None] == ids[None]) * counts[None]).sum(1)
        return pan, seg_ids, areas

    def panoptic_postprocess(self, cls_score: Tensor,
                             mask_pred: Tensor) -> PixelData:
        """Panoptic segmentation of one image.

        Args:
            cls_score (Tensor): Class logits, has shape
                (num_queries, num_classes + 1).
            mask_pred (Tensor): Mask logits at the output size, has shape
                (num_queries, H, W).

        Returns:
            :obj:`PixelData`: ``sem_seg`` (1, H, W), int32, and the
            metainfo ``segments_info``.
        """
        keep = self.keep_queries(cls_score)
        labels, masks = cls_score.argmax(-1)[keep], mask_pred[keep]
        pan = mask_pred.new_full(
            mask_pred.shape[-2:], self.num_classes, dtype=torch.long)
        segments_info = []
        while len(labels):
            pan, seg_ids, areas = self._paint(labels, masks)
            small = areas <= self.min_area
            if not small.any():
                segments_info = self._segments_info(seg_ids, labels, areas)
                break
            labels, masks = labels[~small], masks[~small]
        else:
            pan.fill_(self.num_classes)
        return PixelData(
            sem_seg=pan[None].int(),
            metainfo=dict(segments_info=segments_info))

    def _segments_info(self, seg_ids: Tensor, labels: Tensor,
                       areas: Tensor) -> List[dict]:
        """One entry per segment (merged stuff once), in query order."""
        segments_info, seen = [], set()
        for seg_id, label, area in zip(seg_ids.tolist(), labels.tolist(),
                                       areas.tolist()):
            if seg_id not in seen:
                seen.add(seg_id)
                segments_info.append(
                    dict(
                        id=seg_id,
                        label=label,
                        isthing=label < self.num_things_classes,
                        area=area))
        return segments_info

    def _resize_masks(self, masks: Tensor, img_meta: dict,
                      rescale: bool) -> Tensor:
        """Stride-4 logits -> padded input size -> crop -> original size."""
        img_h, img_w = img_meta['img_shape'][:2]
        out_h, out_w = img_meta['ori_shape'][:2] if rescale else (img_h, img_w)
        if not len(masks):
            return masks.new_zeros((0, out_h, out_w))
        masks = F.interpolate(
            masks[None],
            img_meta['batch_input_shape'],
            mode='bilinear',
            align_corners=False)[0, :, :img_h, :img_w]
        if (out_h, out_w) != (img_h, img_w):
            masks = F.interpolate(
                masks[None], (out_h, out_w),
                mode='bilinear',
                align_corners=False)[0]
        return masks

    def predict(self,
                cls_scores: Tensor,
                mask_preds: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True,
                **kwargs) -> List[dict]:
        """Panoptic results of a batch.

        Args:
            cls_scores (Tensor): Class logits, has shape
                (bs, num_queries, num_classes + 1).
            mask_preds (Tensor): Mask logits at stride 4 of the padded
                batch, has shape (bs, num_queries, H_4, W_4).
            batch_data_samples (list[:obj:`DetDataSample`]): The samples.
            rescale (bool): Results at the original image size, else at
                the network input size. Defaults to True.

        Returns:
            list[dict]: Per image ``{'pan_results': PixelData}``.
        """
        results = []
        for cls_score, mask_pred, data_sample in zip(cls_scores, mask_preds,
                                                     batch_data_samples):
            keep = self.keep_queries(cls_score)
            masks = self._resize_masks(mask_pred[keep], data_sample.metainfo,
                                       rescale)
            results.append(
                dict(
                    pan_results=self.panoptic_postprocess(
                        cls_score[keep], masks)))
        return results
