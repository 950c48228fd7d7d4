# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""mmengine's optimizer constructor, quiet about frozen parameters."""
import logging
from collections import Counter

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

_FROZEN_MESSAGE = 'is skipped since its requires_grad=False'


class _DropFrozenWarnings(logging.Filter):
    """Drop mmengine's one-line-per-frozen-parameter warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _FROZEN_MESSAGE not in record.getMessage()


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenAwareOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that summarises frozen parameters.

    With ``paramwise_cfg``, mmengine's constructor logs a warning for each
    parameter with ``requires_grad=False``: hundreds of lines for UP-DETR's
    frozen CNN or a frozen panoptic detector. This constructor builds the
    same optimizer and logs one line instead, counting the frozen
    parameters per top-level module.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optim wrapper of ``model`` (see the parent)."""
        logger = MMLogger.get_current_instance()
        quiet = _DropFrozenWarnings()
        # UP-DETR: one summary line instead of one warning per parameter.
        logger.addFilter(quiet)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        frozen = Counter(
            name.split('.')[0] for name, param in model.named_parameters()
            if not param.requires_grad)
        if frozen:
            groups = ', '.join(f'{k} ({n})' for k, n in frozen.items())
            print_log(
                f'{sum(frozen.values())} frozen parameters (requires_grad='
                f'False) are left out of the optimizer: {groups}',
                logger='current')
        return optim_wrapper
