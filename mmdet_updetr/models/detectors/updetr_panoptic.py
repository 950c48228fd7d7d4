# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Dict, Optional, Tuple

from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from mmdet.utils import ConfigType
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .prenorm_detr import PreNormDETR


@MODELS.register_module()
class UPDETRPanoptic(PreNormDETR):
    """The pre-norm DETR (:class:`PreNormDETR`) with DETR's panoptic head.

    The paper's panoptic recipe (Table 4): fine-tune the detector on the
    panoptic annotations' boxes (things and stuff), then freeze it and train
    only the mask head for 25 epochs. The CNN gives its stride-4, -8, -16
    and -32 features (``backbone.out_indices=(0, 1, 2, 3)``), only the last
    goes through the neck into the transformer, and the head (a
    ``PanopticDETRHead``) gets the others, the encoder memory and its
    padding mask for the masks.
    ``panoptic_fusion_head`` turns classes and masks into mmdet's panoptic
    result (``pred_panoptic_seg``); ``pred_instances`` holds DETR's boxes.

    Args:
        panoptic_fusion_head (dict): Config of the fusion, a
            ``DETRFusionHead``; its classes must add up to the head's.
        freeze_detector (bool): Train only the mask branches
            (``bbox_head.bbox_attention`` and ``bbox_head.mask_head``):
            every other parameter gets ``requires_grad=False`` and every
            BatchNorm stays in eval mode. Defaults to False.
        **kwargs: Arguments of :class:`PreNormDETR`.
    """

    def __init__(self,
                 *args,
                 panoptic_fusion_head: ConfigType = dict(
                     type='DETRFusionHead'),
                 freeze_detector: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.panoptic_fusion_head = MODELS.build(panoptic_fusion_head)
        if self.panoptic_fusion_head.num_classes != self.bbox_head.num_classes:
            raise ValueError(
                'panoptic_fusion_head has '
                f'{self.panoptic_fusion_head.num_classes} classes (things + '
                f'stuff), bbox_head {self.bbox_head.num_classes}: make them '
                'agree')
        self.freeze_detector = freeze_detector
        if freeze_detector:
            self.requires_grad_(False)
            for module in self.bbox_head.mask_branches:
                module.requires_grad_(True)

    def train(self, mode: bool = True) -> 'UPDETRPanoptic':
        """Set the training mode; a frozen detector's BatchNorms stay in
        eval mode (its dropout works as in the reference's training)."""
        super().train(mode)
        if self.freeze_detector:
            # UP-DETR: BN statistics of the frozen detector never change.
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """CNN features at strides 4, 8, 16 and the projected stride 32.

        Args:
            batch_inputs (Tensor): Images, has shape (bs, 3, H, W).

        Returns:
            tuple[Tensor]: The CNN's stride-4, -8 and -16 features and the
            neck's output (bs, dim, H / 32, W / 32), last (the one the
            transformer reads).
        """
        feats = self.forward_backbone(batch_inputs)
        if len(feats) != 4:
            raise ValueError(
                f'the backbone gives {len(feats)} feature maps; the mask '
                'head needs all four stages: backbone.out_indices=(0, 1, 2, '
                '3) (the neck still takes only the last)')
        # UP-DETR: only the stride-32 feature goes through the neck.
        return tuple(feats[:-1]) + tuple(self.neck(feats[-1:]))

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Optional[Tensor],
                        memory_pos: Tensor) -> Dict:
        """DETR's ``forward_decoder``; the memory also goes to the head.

        Returns:
            dict: ``hidden_states`` (num_layers, bs, num_queries, dim),
            ``memory`` (bs, h * w, dim) and ``memory_mask`` (bs, h * w).
        """
        head_inputs_dict = super().forward_decoder(query, query_pos, memory,
                                                   memory_mask, memory_pos)
        # UP-DETR: the mask head attends over the encoder memory.
        head_inputs_dict.update(memory=memory, memory_mask=memory_mask)
        return head_inputs_dict

    def forward_transformer(self,
                            img_feats: Tuple[Tensor],
                            batch_data_samples: OptSampleList = None) -> Dict:
        """DETR's ``forward_transformer``; the head also gets the features.

        Returns:
            dict: The head inputs of :meth:`forward_decoder` plus
            ``mask_feats``, the features of :meth:`extract_feat`.
        """
        head_inputs_dict = super().forward_transformer(img_feats,
                                                       batch_data_samples)
        # UP-DETR: the FPN-style mask head reads the CNN features.
        head_inputs_dict['mask_feats'] = img_feats
        return head_inputs_dict

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict boxes (``pred_instances``) and panoptic segmentation.

        Args:
            batch_inputs (Tensor): Images, has shape (bs, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): The samples.
            rescale (bool): Results in original image space. Defaults to
                True.

        Returns:
            list[:obj:`DetDataSample`]: With ``pred_instances`` and
            ``pred_panoptic_seg`` (``sem_seg`` (1, H, W), ids as in mmdet:
            ``label + instance * INSTANCE_OFFSET``).
        """
        img_feats = self.extract_feat(batch_inputs)
        head_inputs_dict = self.forward_transformer(img_feats,
                                                    batch_data_samples)
        box_results, cls_scores, mask_preds = self.bbox_head.predict(
            **head_inputs_dict,
            batch_data_samples=batch_data_samples,
            rescale=rescale)
        pan_results = self.panoptic_fusion_head.predict(
            cls_scores, mask_preds, batch_data_samples, rescale=rescale)
        batch_data_samples = self.add_pred_to_datasample(
            batch_data_samples, box_results)
        for data_sample, result in zip(batch_data_samples, pan_results):
            data_sample.pred_panoptic_seg = result['pan_results']
        return batch_data_samples
