# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Dict

import torch
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from .updetr import UPDETR


@MODELS.register_module()
class OneShotUPDETR(UPDETR):
    """UP-DETR fine-tuned for one-shot detection (the paper's Fig. 3b).

    :class:`UPDETR` with one query patch (``num_patches=1``): the query crop
    goes through the shared CNN, global average pooling and ``patch2query``
    and is added to *all* N object queries (one group: nothing to mask, so
    the configs use the plain ``PreNormDetrTransformerDecoder``); each query
    says whether it found an object like the query (2-way,
    :class:`UPDETRHead` with ``loss_rec=None``) and where. The CNN is
    trained, as in fine-tuning. Only the bookkeeping differs from
    :class:`UPDETR`: ground-truth boxes come with their dataset class and
    are trained as "matches the query" (label 0); predictions are labelled
    with the episode's class (``oneshot_class``), so that mmdet's
    visualisers name both; and the query crop is dropped from the predicted
    data samples, so that ``--out`` dumps and evaluators do not carry one
    float image per episode.

    Args:
        num_patches (int): Must be 1. Defaults to 1.
        mask_ratio (float): Probability of dropping the query feature of a
            query in training; 0 in one-shot detection, where the query is
            the task, not a pretext. Defaults to 0.
        freeze_backbone (bool): Defaults to False (the CNN is fine-tuned).
        **kwargs: Other arguments of :class:`UPDETR`.
    """

    def __init__(self,
                 *args,
                 num_patches: int = 1,
                 mask_ratio: float = 0.0,
                 freeze_backbone: bool = False,
                 **kwargs) -> None:
        if num_patches != 1:
            raise ValueError('OneShotUPDETR takes one query crop per image: '
                             f'num_patches must be 1, got {num_patches}')
        super().__init__(
            *args,
            num_patches=num_patches,
            mask_ratio=mask_ratio,
            freeze_backbone=freeze_backbone,
            **kwargs)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """UPDETR's losses, every ground-truth box a match of the query.

        Args:
            batch_inputs (Tensor): Images, has shape (bs, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): The samples;
                ``gt_instances`` hold the boxes of the query's class, with
                that class's label.

        Returns:
            dict[str, Tensor]: A dictionary of loss components.
        """
        for sample in batch_data_samples:
            # UP-DETR: the 2-way head's target class is "match" (0).
            labels = sample.gt_instances.labels
            sample.gt_instances.labels = torch.zeros_like(labels)
        return super().loss(batch_inputs, batch_data_samples)

    def add_pred_to_datasample(self, data_samples: SampleList,
                               results_list: list) -> SampleList:
        """UPDETR's predictions, without the (used) query crops.

        Args:
            data_samples (list[:obj:`DetDataSample`]): The samples.
            results_list (list): Per image ``(per_query, per_group)`` from
                :class:`UPDETRHead`.

        Returns:
            list[:obj:`DetDataSample`]: With ``pred_instances`` (N rows: box,
            match score, label = ``oneshot_class`` when the sample has one,
            else 0) and ``pred_group_instances`` (the best query); no
            ``query_patches`` / ``query_patch_aug``.
        """
        data_samples = super().add_pred_to_datasample(data_samples,
                                                      results_list)
        for sample in data_samples:
            if 'oneshot_class' in sample:
                # UP-DETR: a match is an object of the episode's class.
                for pred in (sample.pred_instances,
                             sample.pred_group_instances):
                    pred.labels = torch.full_like(pred.labels,
                                                  sample.oneshot_class)
            # UP-DETR: the crop (1, 3, 128, 128) float is no prediction.
            for key in ('query_patches', 'query_patch_aug'):
                if key in sample:
                    delattr(sample, key)
        return data_samples
