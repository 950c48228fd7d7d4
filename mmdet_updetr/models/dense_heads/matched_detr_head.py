# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Dict, List, Tuple

import torch
from mmdet.models.dense_heads import DETRHead
from mmdet.models.losses import QualityFocalLoss
from mmdet.models.utils import multi_apply
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import float32_losses


class MatchedDETRHead(DETRHead):
    """DETR's head whose targets say which ground truth each query matched.

    ``DETRHead._get_targets_single`` runs the Hungarian assigner and keeps
    its result to itself; a head with losses of its own on the matched
    queries (UP-DETR's feature reconstruction, the panoptic masks) needs
    it. Here, as ``MaskFormerHead`` does, :meth:`get_targets` also returns
    the assignment (``assigned_gt_inds_list``) and the per-layer losses hand
    it, with the box losses' normaliser, to the subclass: the assignment is
    made once per layer and image, and nothing is kept on the head between
    calls. DETR's losses and their values are unchanged (the classification
    loss is cross entropy or focal loss; ``QualityFocalLoss`` is refused).

    ``DETRHead`` turns ``loss_cls.bg_cls_weight`` into the no-object class
    weight only when it is exactly ``DETRHead``, not for a subclass; this
    class does it for its subclasses.

    Args:
        num_classes (int): Number of classes, no-object excluded.
        loss_cls (:obj:`ConfigDict` or dict): As ``DETRHead``'s. With a
            softmax, the class weights are ``class_weight`` for each class
            and ``bg_cls_weight`` (defaults to ``class_weight``) for
            no-object; ``bg_cls_weight`` also weighs the negatives in the
            classification loss's normaliser.
        **kwargs: Other arguments of ``DETRHead``.
    """

    def __init__(self,
                 num_classes: int,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     bg_cls_weight=0.1,
                     use_sigmoid=False,
                     loss_weight=1.0,
                     class_weight=1.0),
                 **kwargs) -> None:
        loss_cls = dict(loss_cls)
        class_weight = float(loss_cls.get('class_weight', 1.0))
        bg_cls_weight = float(loss_cls.pop('bg_cls_weight', class_weight))
        if not loss_cls.get('use_sigmoid', False):
            loss_cls['class_weight'] = [class_weight] * num_classes + [
                bg_cls_weight
            ]
        super().__init__(num_classes=num_classes, loss_cls=loss_cls, **kwargs)
        self.bg_cls_weight = bg_cls_weight
        if isinstance(self.loss_cls, QualityFocalLoss):
            raise TypeError(
                f'{self.__class__.__name__} does not take QualityFocalLoss '
                'as loss_cls: use CrossEntropyLoss or FocalLoss')

    def loss_by_feat(
        self,
        all_layers_cls_scores: Tensor,
        all_layers_bbox_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """DETR's losses of every decoder layer.

        Args: See :meth:`loss_and_assignment_by_feat`.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou`` and
            their ``d{i}.`` copies for the other decoder layers.
        """
        return self.loss_and_assignment_by_feat(all_layers_cls_scores,
                                                all_layers_bbox_preds,
                                                batch_gt_instances,
                                                batch_img_metas,
                                                batch_gt_instances_ignore)[0]

    # UP-DETR: matching and losses in float32, even under autocast.
    @float32_losses
    def loss_and_assignment_by_feat(
        self,
        all_layers_cls_scores: Tensor,
        all_layers_bbox_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Tuple[Dict[str, Tensor], List[List[Tensor]], List[float]]:
        """DETR's losses of every decoder layer and the matching behind them.

        Args:
            all_layers_cls_scores (Tensor): Has shape (num_decoder_layers, bs,
                num_queries, cls_out_channels).
            all_layers_bbox_preds (Tensor): Sigmoid (cx, cy, w, h), has shape
                (num_decoder_layers, bs, num_queries, 4).
            batch_gt_instances (list[:obj:`InstanceData`]): With ``bboxes``
                and ``labels``.
            batch_img_metas (list[dict]): Meta information of each image.
            batch_gt_instances_ignore (list, optional): Must be None.

        Returns:
            tuple: The loss dict (as :meth:`loss_by_feat`'s), per decoder
            layer the ``assigned_gt_inds_list`` of :meth:`get_targets`
            (per image (num_queries, ), -1 where unmatched), and per decoder
            layer the box losses' ``avg_factor``: the number of matched
            queries, averaged over GPUs, at least 1. They are computed in
            float32 whatever ``torch.autocast`` says.
        """
        assert batch_gt_instances_ignore is None, \
            f'{self.__class__.__name__} only supports ' \
            'for batch_gt_instances_ignore setting to None.'
        (losses_cls, losses_bbox, losses_iou, layers_assigned_gt_inds,
         layers_avg_factor) = multi_apply(
             self.loss_by_feat_single,
             all_layers_cls_scores,
             all_layers_bbox_preds,
             batch_gt_instances=batch_gt_instances,
             batch_img_metas=batch_img_metas)
        loss_dict = dict()
        # As DETRHead: the last decoder layer's, then the others'.
        num_layers = len(losses_cls)
        for i in [num_layers - 1] + list(range(num_layers - 1)):
            prefix = '' if i == num_layers - 1 else f'd{i}.'
            loss_dict[f'{prefix}loss_cls'] = losses_cls[i]
            loss_dict[f'{prefix}loss_bbox'] = losses_bbox[i]
            loss_dict[f'{prefix}loss_iou'] = losses_iou[i]
        return loss_dict, layers_assigned_gt_inds, layers_avg_factor

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                            batch_gt_instances: InstanceList,
                            batch_img_metas: List[dict]) -> tuple:
        """DETR's losses of one decoder layer and its matching.

        Args:
            cls_scores (Tensor): Has shape (bs, num_queries,
                cls_out_channels).
            bbox_preds (Tensor): Sigmoid (cx, cy, w, h), has shape (bs,
                num_queries, 4).
            batch_gt_instances (list[:obj:`InstanceData`]): The targets.
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            tuple: ``loss_cls``, ``loss_bbox``, ``loss_iou`` (Tensor), the
            ``assigned_gt_inds_list`` of :meth:`get_targets` and the box
            losses' ``avg_factor`` (float).
        """
        targets = self.get_targets(
            list(cls_scores), list(bbox_preds), batch_gt_instances,
            batch_img_metas)
        loss_cls, loss_bbox, loss_iou, avg_factor = self.loss_by_targets(
            cls_scores, bbox_preds, targets, batch_img_metas)
        return loss_cls, loss_bbox, loss_iou, targets[-1], avg_factor

    def loss_by_targets(self, cls_scores: Tensor, bbox_preds: Tensor,
                        targets: tuple, batch_img_metas: List[dict]) -> tuple:
        """DETR's classification and box losses of one decoder layer.

        Args:
            cls_scores (Tensor): Has shape (bs, num_queries,
                cls_out_channels).
            bbox_preds (Tensor): Sigmoid (cx, cy, w, h), has shape (bs,
                num_queries, 4).
            targets (tuple): What :meth:`get_targets` returns.
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            tuple: ``loss_cls``, ``loss_bbox``, ``loss_iou`` (Tensor) and
            their ``avg_factor`` (float): the number of matched queries,
            averaged over GPUs, at least 1.
        """
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list,
         num_total_pos, num_total_neg, _) = targets
        # As the official DETR: negatives count bg_cls_weight each.
        cls_avg_factor = num_total_pos * 1.0 + \
            num_total_neg * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            cls_avg_factor = reduce_mean(
                cls_scores.new_tensor([cls_avg_factor]))
        loss_cls = self.loss_cls(
            cls_scores.reshape(-1, self.cls_out_channels),
            torch.cat(labels_list),
            torch.cat(label_weights_list),
            avg_factor=max(cls_avg_factor, 1))
        avg_factor = torch.clamp(
            reduce_mean(loss_cls.new_tensor([num_total_pos])), min=1).item()
        # Boxes are regressed normalised; GIoU needs them in pixels.
        img_shapes = [meta['img_shape'] for meta in batch_img_metas]
        factors = torch.cat([
            bbox_pred.new_tensor([w, h, w, h]).repeat(bbox_pred.size(0), 1)
            for bbox_pred, (h, w) in zip(bbox_preds, img_shapes)
        ])
        bbox_preds = bbox_preds.reshape(-1, 4)
        bbox_targets = torch.cat(bbox_targets_list)
        bbox_weights = torch.cat(bbox_weights_list)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(bbox_preds) * factors,
            bbox_cxcywh_to_xyxy(bbox_targets) * factors,
            bbox_weights,
            avg_factor=avg_factor)
        loss_bbox = self.loss_bbox(
            bbox_preds, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return loss_cls, loss_bbox, loss_iou, avg_factor

    def get_targets(self, cls_scores_list: List[Tensor],
                    bbox_preds_list: List[Tensor],
                    batch_gt_instances: InstanceList,
                    batch_img_metas: List[dict]) -> tuple:
        """DETR's targets of one decoder layer and the matching behind them.

        Args:
            cls_scores_list (list[Tensor]): Per image, (num_queries,
                cls_out_channels).
            bbox_preds_list (list[Tensor]): Per image, sigmoid (cx, cy, w,
                h), (num_queries, 4).
            batch_gt_instances (list[:obj:`InstanceData`]): The targets.
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            tuple: ``DETRHead.get_targets``'s six (``labels_list``,
            ``label_weights_list``, ``bbox_targets_list``,
            ``bbox_weights_list``, ``num_total_pos``, ``num_total_neg``) and
            ``assigned_gt_inds_list``: per image, the index of the ground
            truth each query is matched to, -1 where none, (num_queries, ).
        """
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list,
         pos_inds_list, neg_inds_list, assigned_gt_inds_list) = multi_apply(
             self._get_targets_single, cls_scores_list, bbox_preds_list,
             batch_gt_instances, batch_img_metas)
        num_total_pos = sum(inds.numel() for inds in pos_inds_list)
        num_total_neg = sum(inds.numel() for inds in neg_inds_list)
        return (labels_list, label_weights_list, bbox_targets_list,
                bbox_weights_list, num_total_pos, num_total_neg,
                assigned_gt_inds_list)

    def _get_targets_single(self, cls_score: Tensor, bbox_pred: Tensor,
                            gt_instances: InstanceData,
                            img_meta: dict) -> tuple:
        """DETR's targets of one image and the matching behind them.

        Args:
            cls_score (Tensor): Has shape (num_queries, cls_out_channels).
            bbox_pred (Tensor): Sigmoid (cx, cy, w, h), has shape
                (num_queries, 4).
            gt_instances (:obj:`InstanceData`): ``bboxes`` (xyxy, pixels)
                and ``labels``.
            img_meta (dict): With ``img_shape``.

        Returns:
            tuple[Tensor]: ``DETRHead._get_targets_single``'s six
            (``labels``, ``label_weights``, ``bbox_targets``,
            ``bbox_weights``, ``pos_inds``, ``neg_inds``) and
            ``assigned_gt_inds`` (num_queries, ): the index of each query's
            ground truth, -1 where unmatched.
        """
        img_h, img_w = img_meta['img_shape']
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        pred_instances = InstanceData(
            scores=cls_score, bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * factor)
        gt_inds = self.assigner.assign(
            pred_instances=pred_instances,
            gt_instances=gt_instances,
            img_meta=img_meta).gt_inds
        pos_inds = torch.nonzero(gt_inds > 0).squeeze(-1)
        neg_inds = torch.nonzero(gt_inds == 0).squeeze(-1)
        pos_gt_inds = gt_inds[pos_inds] - 1
        gt_bboxes = gt_instances.bboxes
        labels = gt_bboxes.new_full((len(bbox_pred), ),
                                    self.num_classes,
                                    dtype=torch.long)
        labels[pos_inds] = gt_instances.labels[pos_gt_inds]
        bbox_targets = torch.zeros_like(bbox_pred, dtype=gt_bboxes.dtype)
        bbox_weights = torch.zeros_like(bbox_pred, dtype=gt_bboxes.dtype)
        bbox_weights[pos_inds] = 1.0
        bbox_targets[pos_inds] = bbox_xyxy_to_cxcywh(gt_bboxes[pos_gt_inds] /
                                                     factor)
        return (labels, gt_bboxes.new_ones(len(bbox_pred)), bbox_targets,
                bbox_weights, pos_inds, neg_inds, gt_inds - 1)
