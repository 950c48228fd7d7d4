# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Mixed precision: losses in float32 whatever ``torch.autocast`` says."""
import functools
from typing import Any, Callable

import torch
from torch import Tensor


def _to_float32(value: Any) -> Any:
    """A floating-point tensor as float32 (itself if it is float32);
    anything else unchanged."""
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.float()
    return value


def float32_losses(method: Callable) -> Callable:
    """Decorate a loss method to run in float32, autocast off.

    Under ``torch.autocast`` (``--amp``) the head's outputs arrive in
    float16 / bfloat16; the matching costs, the targets normalised by them
    (in bfloat16 a 289-pixel box edge becomes 288) and the losses are then
    computed in float32. Floating-point tensor arguments (positional or
    keyword, not inside lists) are cast to float32 and autocast is switched
    off on their device for the call. Without autocast the arguments are
    float32 already and pass unchanged, so float32 results are exactly
    those of the undecorated method.

    Args:
        method (Callable): A method ``method(self, *args, **kwargs)``.

    Returns:
        Callable: The wrapped method.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        tensors = [
            a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)
        ]
        device_type = tensors[0].device.type if tensors else 'cpu'
        args = tuple(_to_float32(a) for a in args)
        kwargs = {k: _to_float32(v) for k, v in kwargs.items()}
        if not torch.amp.is_autocast_available(device_type):
            return method(self, *args, **kwargs)
        with torch.autocast(device_type, enabled=False):
            return method(self, *args, **kwargs)

    return wrapper
