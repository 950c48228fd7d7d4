# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList)
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import float32_losses
from .matched_detr_head import MatchedDETRHead


@MODELS.register_module()
class UPDETRHead(MatchedDETRHead):
    """Head of UP-DETR's random query patch detection.

    Each query says whether it found its query patch (2-way: patch / no
    match), where (box), and, through ``feature_align``, reconstructs the
    patch's CNN feature. Queries and patches are matched as in DETR
    (Hungarian, costs class 1 / L1 5 / GIoU 2); every decoder layer
    contributes the same losses (auxiliary losses).

    Args:
        num_queries (int): Number of object queries ``N``. The detector fills
            it in from its own setting.
        num_patches (int): Number of query patches ``M``. The detector fills
            it in; the no-match class weight is ``M / N``, as in the paper.
        patch_feat_dims (int): Channels of the patch feature (the CNN's last
            stage). Defaults to 2048.
        loss_rec (:obj:`ConfigDict` or dict, optional): Config of the
            feature reconstruction loss; None switches reconstruction (and
            ``feature_align``) off. Defaults to ``PatchReconstructionLoss``.
        bg_cls_weight (float, optional): Weight of the no-match class; None
            derives it as ``M / N`` (the pretext). One-shot detection sets
            DETR's 0.1, since ``M / N`` would be 1 / N there.
            Defaults to None.
        **kwargs: Other arguments of ``DETRHead``; ``num_classes`` is 1.
    """

    def __init__(self,
                 num_queries: int,
                 num_patches: int,
                 patch_feat_dims: int = 2048,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0,
                     class_weight=1.0),
                 loss_rec: OptConfigType = dict(
                     type='PatchReconstructionLoss', loss_weight=1.0),
                 bg_cls_weight: Optional[float] = None,
                 **kwargs) -> None:
        self.num_queries = num_queries
        self.num_patches = num_patches
        self.patch_feat_dims = patch_feat_dims
        self.with_rec = loss_rec is not None
        # UP-DETR: the no-match weight is M / N unless given.
        if bg_cls_weight is None:
            bg_cls_weight = num_patches / num_queries
        super().__init__(
            num_classes=1,
            loss_cls=dict(loss_cls, bg_cls_weight=bg_cls_weight),
            **kwargs)
        self.loss_rec = MODELS.build(loss_rec) if self.with_rec else None

    def _init_layers(self) -> None:
        """Initialize DETR's branches and the feature reconstruction MLP."""
        super()._init_layers()
        if self.with_rec:
            # UP-DETR: MLP 256 -> 256 -> C back to the CNN feature space.
            self.feature_align = MLP(self.embed_dims, self.embed_dims,
                                     self.patch_feat_dims, 2)

    def forward(self,
                hidden_states: Tensor,
                patch_feats: Optional[Tensor] = None) -> Tuple[Tensor]:
        """Forward function.

        Args:
            hidden_states (Tensor): Decoder outputs, has shape
                (num_decoder_layers, bs, num_queries, dim).
            patch_feats (Tensor, optional): The reconstruction targets, which
                the detector passes along with the decoder outputs; unused.

        Returns:
            tuple[Tensor]: ``layers_cls_scores`` (num_decoder_layers, bs,
            num_queries, 2), ``layers_bbox_preds`` (num_decoder_layers, bs,
            num_queries, 4), sigmoid (cx, cy, w, h), and, with
            reconstruction, ``layers_feat_preds`` (num_decoder_layers, bs,
            num_queries, patch_feat_dims).
        """
        outs = super().forward(hidden_states)
        if self.with_rec:
            outs += (self.feature_align(hidden_states), )
        return outs

    def loss(self, hidden_states: Tensor, patch_feats: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Compute the pretext losses.

        Args:
            hidden_states (Tensor): Decoder outputs, has shape
                (num_decoder_layers, bs, num_queries, dim).
            patch_feats (Tensor): Features of the query patches, the
                reconstruction targets, has shape (bs, num_patches,
                patch_feat_dims); patch ``j`` was cropped at box ``j``.
            batch_data_samples (list[:obj:`DetDataSample`]): The samples,
                whose ``gt_instances`` hold the query-patch boxes.

        Returns:
            dict[str, Tensor]: A dictionary of loss components.
        """
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        cls_scores, bbox_preds, *feat_preds = self(hidden_states)
        return self.loss_by_feat(
            cls_scores,
            bbox_preds,
            batch_gt_instances,
            batch_img_metas,
            all_layers_feat_preds=feat_preds[0] if feat_preds else None,
            patch_feats=patch_feats)

    # UP-DETR: the reconstruction loss in float32, even under autocast.
    @float32_losses
    def loss_by_feat(
            self,
            all_layers_cls_scores: Tensor,
            all_layers_bbox_preds: Tensor,
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None,
            all_layers_feat_preds: Optional[Tensor] = None,
            patch_feats: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """DETR's losses of every decoder layer plus the reconstruction loss.

        Args:
            all_layers_cls_scores (Tensor): Has shape (num_decoder_layers, bs,
                num_queries, 2).
            all_layers_bbox_preds (Tensor): Has shape (num_decoder_layers, bs,
                num_queries, 4).
            batch_gt_instances (list[:obj:`InstanceData`]): Patch boxes.
            batch_img_metas (list[dict]): Meta information of each image.
            batch_gt_instances_ignore (list, optional): Must be None.
            all_layers_feat_preds (Tensor, optional): Reconstructed features,
                has shape (num_decoder_layers, bs, num_queries, dim).
            patch_feats (Tensor, optional): Features of the query patches,
                has shape (bs, num_patches, dim).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_rec`` and their ``d{i}.`` auxiliary copies.
        """
        # UP-DETR: the box losses' matching and normaliser serve the
        # reconstruction loss too.
        loss_dict, layers_assigned_gt_inds, layers_avg_factor = \
            self.loss_and_assignment_by_feat(
                all_layers_cls_scores, all_layers_bbox_preds,
                batch_gt_instances, batch_img_metas,
                batch_gt_instances_ignore)
        if not self.with_rec:
            return loss_dict
        num_layers = len(all_layers_feat_preds)
        for i, (feat_preds, assigned_gt_inds, avg_factor) in enumerate(
                zip(all_layers_feat_preds, layers_assigned_gt_inds,
                    layers_avg_factor)):
            prefix = '' if i == num_layers - 1 else f'd{i}.'
            loss_dict[f'{prefix}loss_rec'] = self.loss_rec_single(
                feat_preds, patch_feats, torch.stack(assigned_gt_inds),
                avg_factor)
        return loss_dict

    def loss_rec_single(self, feat_preds: Tensor, patch_feats: Tensor,
                        assigned_gt_inds: Tensor, avg_factor: float) -> Tensor:
        """Reconstruction loss of one decoder layer on its matched queries.

        As in the reference, a matched query reconstructs the feature of the
        patch whose box it was matched to, and the sum is divided by the
        box losses' normaliser (the number of matched queries, i.e. of
        query patches, averaged over GPUs, at least 1).

        Args:
            feat_preds (Tensor): Has shape (bs, num_queries, dim).
            patch_feats (Tensor): Has shape (bs, num_patches, dim); patch
                ``j`` was cropped at ground-truth box ``j``.
            assigned_gt_inds (Tensor): The patch (ground-truth box) each
                query is matched to, -1 if none, has shape (bs,
                num_queries).
            avg_factor (float): The box losses' ``avg_factor``.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        img_inds, query_inds = torch.nonzero(
            assigned_gt_inds >= 0, as_tuple=True)
        targets = patch_feats[img_inds, assigned_gt_inds[img_inds, query_inds]]
        return self.loss_rec(
            feat_preds[img_inds, query_inds], targets, avg_factor=avg_factor)

    def predict(self,
                hidden_states: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True,
                patch_feats: Optional[Tensor] = None) -> list:
        """Predict each query's box and match score for its patch.

        Args:
            hidden_states (Tensor): Decoder outputs, has shape
                (num_decoder_layers, bs, num_queries, dim).
            batch_data_samples (list[:obj:`DetDataSample`]): The samples.
            rescale (bool): Boxes in the original image space if True.
            patch_feats (Tensor, optional): Unused at test time.

        Returns:
            list[tuple[:obj:`InstanceData`]]: Per image, the per-query results
            and the per-group readout (see ``_predict_by_feat_single``).
        """
        return super().predict(hidden_states, batch_data_samples, rescale)

    def predict_by_feat(self,
                        layer_cls_scores: Tensor,
                        layer_bbox_preds: Tensor,
                        *args,
                        batch_img_metas: List[dict],
                        rescale: bool = True) -> list:
        """DETR's ``predict_by_feat``; reconstructed features are ignored."""
        return super().predict_by_feat(layer_cls_scores, layer_bbox_preds,
                                       batch_img_metas, rescale)

    def _predict_by_feat_single(self,
                                cls_score: Tensor,
                                bbox_pred: Tensor,
                                img_meta: dict,
                                rescale: bool = True) -> tuple:
        """Per-query results and each group's best query for one image.

        Unlike DETR, every query is kept in query order and its label is the
        index of the query patch it looks for (its group), so results stay
        readable by patch.

        Args:
            cls_score (Tensor): Has shape (num_queries, 2).
            bbox_pred (Tensor): Sigmoid (cx, cy, w, h), has shape
                (num_queries, 4).
            img_meta (dict): Image meta info.
            rescale (bool): Boxes in the original image space if True.

        Returns:
            tuple[:obj:`InstanceData`]: ``(per_query, per_group)``, each with
            ``bboxes`` (n, 4) xyxy, ``scores`` (n, ) (the match probability)
            and ``labels`` (n, ) (the patch index); ``per_group`` has one
            row per query patch: the group's highest-scoring query.
        """
        num_queries = cls_score.size(0)
        group_size = self.num_queries // self.num_patches
        results = InstanceData()
        results.bboxes = self._decode_boxes(bbox_pred, img_meta, rescale)
        results.scores = F.softmax(cls_score, dim=-1)[:, 0]
        results.labels = torch.arange(
            num_queries, device=cls_score.device) // group_size
        best = results.scores.view(-1, group_size).argmax(dim=1)
        best = best + torch.arange(
            0, num_queries, group_size, device=cls_score.device)
        return results, results[best]

    @staticmethod
    def _decode_boxes(bbox_pred: Tensor, img_meta: dict,
                      rescale: bool) -> Tensor:
        """Normalised (cx, cy, w, h) to absolute, clipped (x1, y1, x2, y2).

        Args:
            bbox_pred (Tensor): Has shape (n, 4).
            img_meta (dict): With ``img_shape`` and ``scale_factor``.
            rescale (bool): Divide by the scale factor if True.

        Returns:
            Tensor: Has shape (n, 4).
        """
        img_h, img_w = img_meta['img_shape']
        bboxes = bbox_cxcywh_to_xyxy(bbox_pred) * bbox_pred.new_tensor(
            [img_w, img_h, img_w, img_h])
        bboxes[:, 0::2].clamp_(min=0, max=img_w)
        bboxes[:, 1::2].clamp_(min=0, max=img_h)
        if rescale:
            bboxes /= bboxes.new_tensor(img_meta['scale_factor']).repeat(2)
        return bboxes
