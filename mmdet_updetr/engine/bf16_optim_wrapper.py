# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Mixed-precision training in bfloat16, on the CPU as on a GPU."""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn


def _has_autocast(device_type: str) -> bool:
    """Whether ``torch.autocast`` exists for a device type."""
    try:
        return torch.amp.is_autocast_available(device_type)
    except RuntimeError:  # not a device type at all
        return False


@OPTIM_WRAPPERS.register_module()
class BF16AmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` refuses a machine without a GPU (NPU, MLU,
    MUSA) and always builds a CUDA ``GradScaler``; bfloat16 has float32's
    exponent range, so it needs no loss scaling. This wrapper only adds
    ``torch.autocast(device_type, torch.bfloat16)`` around the forward (the
    data preprocessor, the model and its losses, as
    ``BaseModel.train_step`` runs them in :meth:`optim_context`); backward,
    gradient clipping and the step are ``OptimWrapper``'s, on the float32
    parameters. ``tools/train.py --amp`` picks it on a machine without
    CUDA.

    Args:
        device_type (str, optional): Device type of the autocast, 'cpu' or
            'cuda'; None takes the device of the model's first parameter.
            Defaults to None.
        **kwargs: Arguments of :class:`OptimWrapper`.
    """

    def __init__(self, device_type: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if device_type is not None and not _has_autocast(device_type):
            raise ValueError(f'BF16AmpOptimWrapper: device_type '
                             f'{device_type!r} has no torch.autocast; use '
                             "'cpu' or 'cuda' (or None: the model's device)")
        self.device_type = device_type
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """``OptimWrapper``'s context (gradient accumulation) under
        bfloat16 autocast on the model's device type.

        Args:
            model (nn.Module): The training model.
        """
        device_type = self.device_type
        if device_type is None:
            param = next(model.parameters(), None)
            device_type = 'cpu' if param is None else param.device.type
        with super().optim_context(model), torch.autocast(
                device_type, dtype=torch.bfloat16):
            yield
