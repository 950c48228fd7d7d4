# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Checkpoints that load with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
mmengine 0.10.7's ``Runner.resume`` fails on mmengine's own checkpoints:
``MessageHub`` saves ``HistoryBuffer`` objects whose ``__getstate__`` adds
their bound statistics methods (pickled through the ``getattr`` builtin),
numpy arrays, and numpy scalars such as the ETA. Allowing ``getattr`` would
let any checkpoint run code.

Instead, after :func:`enable_safe_checkpoints`, the runs write checkpoints
that need only safe globals: ``HistoryBuffer`` pickles as plain lists of
numbers, the message hub's runtime information as Python scalars, and
exactly the classes those checkpoints hold (``HistoryBuffer``,
``collections.Counter`` from the lr schedulers) are allow-listed.
``weights_only`` stays on: a checkpoint with any other global is refused.

It is an explicit step, not a side effect of ``import mmdet_updetr``:
``tools/train.py``, ``tools/test.py``, the demos and the analysis tools
that load checkpoints call it; a run started by another script takes it
through ``SafeCheckpointHook`` (``custom_hooks``, as our configs do), and
a script of your own by calling it once before it saves or loads.
"""
import collections
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, MessageHub

#: The globals our checkpoints need beyond torch's defaults.
SAFE_GLOBALS = (HistoryBuffer, collections.Counter)


def _history_getstate(self: HistoryBuffer) -> dict:
    """Pickle a ``HistoryBuffer`` as plain Python numbers."""
    return dict(
        max_length=self.max_length,
        log_history=self._log_history.tolist(),
        count_history=self._count_history.tolist())


def _history_setstate(self: HistoryBuffer, state: dict) -> None:
    """Restore a ``HistoryBuffer`` pickled by :func:`_history_getstate`."""
    if 'log_history' not in state:  # written by plain mmengine
        return _MMENGINE_SETSTATE(self, state)
    self.__init__(state['log_history'], state['count_history'],
                  state['max_length'])


def _to_builtin(value: Any) -> Any:
    """Numpy scalars and arrays to Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _message_hub_state_dict(self: MessageHub) -> dict:
    """``MessageHub.state_dict`` with Python scalars in ``runtime_info``."""
    state = _MMENGINE_STATE_DICT(self)
    state['runtime_info'] = collections.OrderedDict(
        (key, _to_builtin(value))
        for key, value in state['runtime_info'].items())
    return state


_MMENGINE_SETSTATE = HistoryBuffer.__setstate__
_MMENGINE_STATE_DICT = MessageHub.state_dict


def enable_safe_checkpoints() -> None:
    """Make the runs' checkpoints loadable with ``weights_only=True``.

    Patches ``HistoryBuffer.__getstate__`` / ``__setstate__`` and
    ``MessageHub.state_dict`` (see the module's docstring) and adds
    :data:`SAFE_GLOBALS` to torch's allow-list, for the rest of the
    process. Idempotent.

    Examples:
        >>> from mmdet_updetr.engine import enable_safe_checkpoints
        >>> enable_safe_checkpoints()  # before building the runner
    """
    HistoryBuffer.__getstate__ = _history_getstate
    HistoryBuffer.__setstate__ = _history_setstate
    MessageHub.state_dict = _message_hub_state_dict
    torch.serialization.add_safe_globals(list(SAFE_GLOBALS))
