# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Optional

from mmdet.models.layers import SinePositionalEncoding
from mmdet.registry import MODELS
from torch import Tensor

from ..utils.deterministic import exact_nondeterministic_ops


@MODELS.register_module()
class ExactSinePositionalEncoding(SinePositionalEncoding):
    """mmdet's ``SinePositionalEncoding`` that runs on CUDA with
    ``torch.use_deterministic_algorithms(True)``.

    mmdet's encoding counts the valid positions of the mask with a float
    ``cumsum``, which torch refuses in deterministic mode on CUDA (its scan
    may add in any order). The values added are 0 and 1, so every partial
    sum is an integer below 2**24 that float32 holds exactly: the result is
    the same in any order. The check is lifted for this module only; the
    output is mmdet's, bit for bit.

    Args:
        *args, **kwargs: Arguments of ``SinePositionalEncoding``.
    """

    def forward(self, mask: Tensor, input: Optional[Tensor] = None) -> Tensor:
        """Encode positions; see ``SinePositionalEncoding.forward``.

        Args:
            mask (Tensor): Padding mask, (bs, h, w).
            input (Tensor, optional): Features, (bs, c, h, w).

        Returns:
            Tensor: The encoding, (bs, num_feats * 2, h, w).
        """
        # UP-DETR: the cumsum of 0/1 values is exact in any order.
        with exact_nondeterministic_ops():
            return super().forward(mask, input)
