# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS
from torch import Tensor


@weighted_loss
def patch_reconstruction_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Squared distance between L2-normalised features.

    ``|| p / ||p|| - p_hat / ||p_hat|| ||^2`` per feature vector, the
    reference's ``loss_feature`` before its sum over matched queries.

    Args:
        pred (Tensor): Reconstructed features, has shape (n, dim).
        target (Tensor): Query-patch features, has shape (n, dim).

    Returns:
        Tensor: Loss of each feature vector, has shape (n, ).
    """
    pred = F.normalize(pred, dim=-1)
    target = F.normalize(target, dim=-1)
    return (pred - target).pow(2).sum(-1)


@MODELS.register_module()
class PatchReconstructionLoss(nn.Module):
    """UP-DETR's feature reconstruction loss.

    The decoder output of a matched query is mapped back to the CNN's
    feature space (``feature_align``) and compared with the feature of its
    query patch after both are L2-normalised, so the transformer keeps the
    CNN's discriminative features while it learns to localise.

    Args:
        reduction (str, optional): The method that reduces the loss to a
            scalar. Options are "none", "mean" and "sum".
        loss_weight (float, optional): The weight of the loss. Defaults to 1.0
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Forward function of loss.

        Args:
            pred (Tensor): Reconstructed features, has shape (n, dim).
            target (Tensor): Query-patch features, has shape (n, dim).
            weight (Tensor, optional): Weight of each feature vector, has
                shape (n, ). Defaults to None.
            avg_factor (float, optional): Average factor of the loss, the
                number of query patches in UP-DETR. Defaults to None.
            reduction_override (str, optional): The reduction method used to
                override the original reduction method of the loss.
                Defaults to None.

        Returns:
            Tensor: The calculated loss.
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = (
            reduction_override if reduction_override else self.reduction)
        return self.loss_weight * patch_reconstruction_loss(
            pred, target, weight, reduction=reduction, avg_factor=avg_factor)
