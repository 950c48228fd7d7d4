# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Deterministic equivalents of ops that have no deterministic CUDA kernel.

With ``randomness=dict(deterministic=True)``, mmengine calls
``torch.use_deterministic_algorithms(True)``, and CUDA ops without a
deterministic implementation raise a ``RuntimeError``. Two of them are in
our models: the backward of bilinear ``F.interpolate`` (the panoptic mask
loss upsamples its predictions; the CUDA kernel accumulates gradients with
``atomicAdd``) and the float ``cumsum`` of mmdet's
``SinePositionalEncoding``.
"""
from contextlib import contextmanager
from typing import Iterator, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _bilinear_weights(in_size: int, out_size: int, like: Tensor) -> Tensor:
    """The (out_size, in_size) matrix of 1-D linear interpolation, as
    ``F.interpolate(mode='bilinear', align_corners=False)`` weighs."""
    scale = in_size / out_size
    src = ((torch.arange(out_size, dtype=torch.float64) + 0.5) * scale -
           0.5).clamp(min=0)
    low = src.floor().long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    frac = src - low
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    weights.index_put_((rows, low), 1 - frac, accumulate=True)
    weights.index_put_((rows, high), frac, accumulate=True)
    return weights.to(device=like.device, dtype=like.dtype)


def bilinear_resize(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """``F.interpolate(x, size, mode='bilinear', align_corners=False)``,
    deterministic on CUDA too.

    On a CUDA tensor with deterministic algorithms on, the resize is done
    as two matrix products (rows, then columns) with the interpolation
    weights, whose backward is deterministic; it equals the interpolation
    up to float rounding. Anywhere else, ``F.interpolate`` is called.

    Args:
        x (Tensor): Of shape (N, C, H, W).
        size (tuple[int, int]): The output's (H', W').

    Returns:
        Tensor: Of shape (N, C, H', W').
    """
    if not (x.is_cuda and torch.are_deterministic_algorithms_enabled()):
        return F.interpolate(x, size, mode='bilinear', align_corners=False)
    rows = _bilinear_weights(x.shape[-2], size[0], x)
    cols = _bilinear_weights(x.shape[-1], size[1], x)
    return rows @ x @ cols.t()


@contextmanager
def exact_nondeterministic_ops() -> Iterator[None]:
    """Allow ops flagged nondeterministic whose results are exact anyway.

    Inside the block, ``torch.use_deterministic_algorithms`` is off (and
    restored afterwards, ``warn_only`` included). Use it only around ops
    whose results cannot depend on the order of their floating-point
    operations, e.g. a ``cumsum`` of 0/1 values, whose partial sums are
    integers that float32 represents exactly.
    """
    if not torch.are_deterministic_algorithms_enabled():
        yield
        return
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
