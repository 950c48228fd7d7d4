# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from torch import Tensor, nn

from ..layers import MaskHeadSmallConv, MHAttentionMap
from ..utils import bilinear_resize, float32_losses
from .matched_detr_head import MatchedDETRHead


@MODELS.register_module()
class PanopticDETRHead(MatchedDETRHead):
    """DETR's head with the panoptic mask branch (DETR's ``DETRsegm``).

    Besides DETR's classes and boxes, the last decoder layer's outputs
    attend over the encoder memory (``bbox_attention``, an
    :class:`MHAttentionMap`) and a small FPN-style conv head
    (``mask_head``, a :class:`MaskHeadSmallConv`) turns those maps and the
    CNN's stride-16/8/4 features into one mask logit map per query at
    stride 4. The matched queries (same Hungarian matching on classes and
    boxes as the box losses) get a sigmoid focal loss and a dice loss on
    their masks, computed as the reference does: predictions bilinearly
    upsampled to the padded batch size, ground-truth masks zero-padded to
    it, focal loss averaged over pixels and dice loss summed, both divided
    by the number of ground-truth segments in the batch.

    Args:
        num_classes (int): Things plus stuff classes. Defaults to 133.
        num_heads (int): Heads of ``bbox_attention``; the reference uses the
            transformer's (8). Defaults to 8.
        fpn_channels (Sequence[int]): Channels of the CNN features at
            strides 16, 8, 4. Defaults to ResNet-50's (1024, 512, 256).
        softmax_per_head (bool): See :class:`MHAttentionMap`. Defaults to
            True (per head, the UP-DETR reference's); False for
            facebookresearch/detr's own panoptic checkpoints (joint softmax
            over heads and positions).
        mask_norm_cfg (dict): Norm of the conv head. Defaults to GroupNorm
            with 8 groups.
        loss_mask (dict): Sigmoid focal loss on mask pixels.
        loss_dice (dict): Dice loss on masks (the reference's form:
            ``1 - (2 p.t + 1) / (sum p + sum t + 1)``).
        **kwargs: Other arguments of :class:`MatchedDETRHead`, whose
            ``loss_cls`` is the reference's by default: cross entropy with
            ``bg_cls_weight`` (its ``eos_coef``) 0.1 for no-object.
    """

    def __init__(self,
                 num_classes: int = 133,
                 num_heads: int = 8,
                 fpn_channels: Sequence[int] = (1024, 512, 256),
                 softmax_per_head: bool = True,
                 mask_norm_cfg: ConfigType = dict(type='GN', num_groups=8),
                 loss_mask: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_dice: ConfigType = dict(
                     type='DiceLoss',
                     use_sigmoid=True,
                     activate=True,
                     naive_dice=True,
                     eps=1.0,
                     loss_weight=1.0),
                 **kwargs) -> None:
        self.num_heads = num_heads
        self.fpn_channels = tuple(fpn_channels)
        self.softmax_per_head = softmax_per_head
        self.mask_norm_cfg = mask_norm_cfg
        super().__init__(num_classes=num_classes, **kwargs)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)

    def _init_layers(self) -> None:
        """DETR's branches plus ``bbox_attention`` and ``mask_head``."""
        super()._init_layers()
        self.bbox_attention = MHAttentionMap(
            self.embed_dims,
            self.embed_dims,
            self.num_heads,
            dropout=0.,
            softmax_per_head=self.softmax_per_head)
        self.mask_head = MaskHeadSmallConv(
            self.embed_dims + self.num_heads,
            self.fpn_channels,
            self.embed_dims,
            norm_cfg=self.mask_norm_cfg)

    @property
    def mask_branches(self) -> Tuple[nn.Module, ...]:
        """The modules that the mask stage trains."""
        return (self.bbox_attention, self.mask_head)

    def forward(self, hidden_states: Tensor, memory: Tensor,
                memory_mask: Optional[Tensor],
                mask_feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward function.

        Args:
            hidden_states (Tensor): Decoder outputs, has shape
                (num_decoder_layers, bs, num_queries, dim).
            memory (Tensor): Encoder output, has shape (bs, h * w, dim).
            memory_mask (Tensor, optional): Padding mask of the memory, True
                where padded, has shape (bs, h * w).
            mask_feats (Sequence[Tensor]): The CNN's stride-4, -8 and -16
                features and the projected stride-32 one (the neck output,
                (bs, dim, h, w)), in this order.

        Returns:
            tuple[Tensor]: ``layers_cls_scores`` (num_decoder_layers, bs,
            num_queries, num_classes + 1), ``layers_bbox_preds``
            (num_decoder_layers, bs, num_queries, 4) and ``mask_preds``
            (bs, num_queries, H_4, W_4), the last layer's mask logits.
        """
        cls_scores, bbox_preds = super().forward(hidden_states)
        proj = mask_feats[-1]
        bs, dim, h, w = proj.shape
        memory = memory.transpose(1, 2).reshape(bs, dim, h, w)
        if memory_mask is not None:
            memory_mask = memory_mask.view(bs, h, w)
        attn_maps = self.bbox_attention(hidden_states[-1], memory, memory_mask)
        # UP-DETR: strides 16, 8, 4 feed the FPN-style head in turn.
        mask_preds = self.mask_head(proj, attn_maps, mask_feats[-2::-1])
        return cls_scores, bbox_preds, mask_preds

    def loss(self, hidden_states: Tensor, memory: Tensor,
             memory_mask: Optional[Tensor], mask_feats: Sequence[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """DETR's losses plus the mask losses of the last decoder layer.

        Args:
            hidden_states, memory, memory_mask, mask_feats: See
                :meth:`forward`.
            batch_data_samples (list[:obj:`DetDataSample`]): Samples whose
                ``gt_instances`` hold boxes, labels and ``masks`` of things
                and stuff (``PanopticStuffToInstances``).

        Returns:
            dict[str, Tensor]: A dictionary of loss components.
        """
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        outs = self(hidden_states, memory, memory_mask, mask_feats)
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas)

    # UP-DETR: the mask losses in float32, even under autocast.
    @float32_losses
    def loss_by_feat(
        self,
        all_layers_cls_scores: Tensor,
        all_layers_bbox_preds: Tensor,
        mask_preds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """DETR's losses plus the mask losses of the last decoder layer.

        Args:
            all_layers_cls_scores (Tensor): Has shape (num_decoder_layers, bs,
                num_queries, num_classes + 1).
            all_layers_bbox_preds (Tensor): Has shape (num_decoder_layers, bs,
                num_queries, 4).
            mask_preds (Tensor): The last layer's mask logits, has shape (bs,
                num_queries, H_4, W_4).
            batch_gt_instances (list[:obj:`InstanceData`]): With ``bboxes``,
                ``labels`` and ``masks`` (``BitmapMasks`` of the image size).
            batch_img_metas (list[dict]): Meta information of each image.
            batch_gt_instances_ignore (list, optional): Must be None.

        Returns:
            dict[str, Tensor]: DETR's losses, ``loss_mask`` and
            ``loss_dice``.
        """
        # UP-DETR: check the targets before the box losses use them.
        self._check_gt(batch_gt_instances)
        loss_dict, layers_assigned_gt_inds, _ = \
            self.loss_and_assignment_by_feat(
                all_layers_cls_scores, all_layers_bbox_preds,
                batch_gt_instances, batch_img_metas,
                batch_gt_instances_ignore)
        # UP-DETR: the masks of the queries that the last layer matched.
        loss_dict.update(
            self.loss_mask_by_feat(mask_preds, layers_assigned_gt_inds[-1],
                                   batch_gt_instances, batch_img_metas))
        return loss_dict

    def loss_mask_by_feat(self, mask_preds: Tensor,
                          assigned_gt_inds_list: List[Tensor],
                          batch_gt_instances: InstanceList,
                          batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Focal and dice losses on the masks of the matched queries.

        Args:
            mask_preds (Tensor): Has shape (bs, num_queries, H_4, W_4).
            assigned_gt_inds_list (list[Tensor]): Per image, the ground truth
                each query is matched to (the box losses' matching of the
                last decoder layer), -1 if none, (num_queries, ).
            batch_gt_instances (list[:obj:`InstanceData`]): With ``masks``
                (``BitmapMasks`` of the image size).
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            dict[str, Tensor]: ``loss_mask`` and ``loss_dice``.
        """
        pad_h, pad_w = batch_img_metas[0]['batch_input_shape']
        preds, targets = [], []
        for i, (assigned_gt_inds, gt_instances) in enumerate(
                zip(assigned_gt_inds_list, batch_gt_instances)):
            pos_inds = torch.nonzero(assigned_gt_inds >= 0).squeeze(-1)
            preds.append(mask_preds[i, pos_inds])
            # uint8 to the device, float there (4x less to copy).
            masks = gt_instances.masks.to_tensor(
                torch.uint8, mask_preds.device).to(mask_preds.dtype)
            masks = F.pad(
                masks,
                (0, pad_w - masks.shape[-1], 0, pad_h - masks.shape[-2]))
            targets.append(masks[assigned_gt_inds[pos_inds]])
        # The reference's choice: upsample the predictions to the padded
        # input size rather than shrink the targets.
        # (bilinear; deterministic on CUDA too, see bilinear_resize)
        preds = bilinear_resize(torch.cat(preds)[:, None],
                                (pad_h, pad_w)).flatten(1)
        targets = torch.cat(targets).flatten(1)
        num_masks = sum(len(gt) for gt in batch_gt_instances)
        num_masks = reduce_mean(preds.new_tensor(num_masks)).clamp(min=1)
        return dict(
            loss_mask=self.loss_mask(
                preds, targets, avg_factor=num_masks * preds.shape[1]),
            loss_dice=self.loss_dice(preds, targets, avg_factor=num_masks))

    def _check_gt(self, batch_gt_instances: InstanceList) -> None:
        """Refuse targets without masks or with labels beyond the classes.

        A label equal to ``num_classes`` would silently train as "no
        object", so a ``num_classes`` below the dataset's (e.g. the things
        only) fails here instead.

        Args:
            batch_gt_instances (list[:obj:`InstanceData`]): The targets.
        """
        for gt_instances in batch_gt_instances:
            if 'masks' not in gt_instances:
                raise KeyError(
                    'PanopticDETRHead needs ground-truth masks: load them '
                    'with LoadPanopticAnnotations(with_mask=True) and add '
                    'PanopticStuffToInstances before PackDetInputs')
            labels = gt_instances.labels
            if len(labels) and int(labels.max()) >= self.num_classes:
                raise ValueError(
                    f'a ground-truth label is {int(labels.max())} but '
                    f'bbox_head.num_classes is {self.num_classes}: set it '
                    'to the number of things + stuff classes of the dataset '
                    '(133 for COCO panoptic) and panoptic_fusion_head\'s '
                    'num_things_classes / num_stuff_classes to match')

    def predict(self,
                hidden_states: Tensor,
                memory: Tensor,
                memory_mask: Optional[Tensor],
                mask_feats: Sequence[Tensor],
                batch_data_samples: SampleList,
                rescale: bool = True) -> Tuple[InstanceList, Tensor, Tensor]:
        """Boxes as DETR, plus the raw classes and masks for panoptic fusion.

        Args:
            hidden_states, memory, memory_mask, mask_feats: See
                :meth:`forward`.
            batch_data_samples (list[:obj:`DetDataSample`]): The samples.
            rescale (bool): Boxes in original image space. Defaults to True.

        Returns:
            tuple: The box results (list of :obj:`InstanceData`), the last
            layer's class logits (bs, num_queries, C + 1) and the mask logits
            (bs, num_queries, H_4, W_4).
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        cls_scores, bbox_preds, mask_preds = self(hidden_states[-1:], memory,
                                                  memory_mask, mask_feats)
        box_results = self.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas, rescale=rescale)
        return box_results, cls_scores[-1], mask_preds
