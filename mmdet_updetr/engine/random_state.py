# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Random states as safe checkpoint values, and per-sample random streams.

A resumed run draws the same query patches, augmentations, query-feature
drops and dropout as the run it continues when (1) each rank's Python,
numpy and torch (CPU and every CUDA device) generators are saved with the
checkpoint and restored before the first resumed iteration, and (2) the
data pipeline draws from a stream that depends only on the sample and the
epoch, not on which process, worker or batch position loads it.

:func:`get_random_state` returns the generators' states as plain Python
numbers and byte tensors, which ``torch.load(weights_only=True)`` accepts
(numpy's state is an array, so its key is stored as a list of ints).
:func:`sample_random` runs a block with the generators seeded from
``(seed, epoch, index)`` and puts the caller's states back afterwards.
"""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def get_random_state() -> dict:
    """The states of Python's, numpy's and torch's global generators.

    Returns:
        dict: ``python`` (``random.getstate()``, tuples of ints), ``numpy``
        (the legacy MT19937 state with its key as a list of ints),
        ``torch`` (a uint8 tensor) and ``cuda`` (one uint8 tensor per
        visible CUDA device; empty without CUDA). Only types that
        ``torch.load(weights_only=True)`` loads.
    """
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return dict(
        python=random.getstate(),
        numpy=(name, key.tolist(), int(pos), int(has_gauss), float(gauss)),
        torch=torch.get_rng_state(),
        cuda=cuda)


def set_random_state(state: dict) -> None:
    """Restore the generators from :func:`get_random_state`'s output.

    Args:
        state (dict): As returned by :func:`get_random_state`. CUDA states
            are restored only if as many devices are visible as were saved.

    Raises:
        ValueError: If CUDA states were saved for a different number of
            devices than are visible now.
    """
    random.setstate(_as_tuples(state['python']))
    name, key, pos, has_gauss, gauss = state['numpy']
    np.random.set_state(
        (name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    cuda = list(state.get('cuda') or [])
    if cuda:
        if not torch.cuda.is_available() or \
                torch.cuda.device_count() != len(cuda):
            raise ValueError(
                f'The random state holds {len(cuda)} CUDA generator(s) but '
                f'{torch.cuda.device_count()} CUDA device(s) are visible.')
        torch.cuda.set_rng_state_all(cuda)


def _as_tuples(value):
    """``random.setstate`` wants tuples where a round trip may give lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


def sample_seeds(seed: int, epoch: int, index: int) -> np.ndarray:
    """Three 32-bit seeds (Python, numpy, torch) for one sample.

    Derived with numpy's ``SeedSequence`` from the run's seed, the epoch and
    the sample's index in the dataset, so that each epoch draws fresh
    values, the same sample in the same epoch always draws the same ones,
    and nearby keys give unrelated streams.

    Args:
        seed (int): The run's seed (``runner.seed``).
        epoch (int): The epoch (0-based).
        index (int): The sample's index in the dataset.

    Returns:
        np.ndarray: Three uint32 seeds.
    """
    entropy = [int(seed) & 0xFFFFFFFF, int(epoch), int(index)]
    return np.random.SeedSequence(entropy).generate_state(3)


@contextmanager
def sample_random(seed: int, epoch: int, index: int) -> Iterator[None]:
    """Run the block with the CPU generators seeded for one sample.

    Python's, numpy's and torch's CPU generators are seeded from
    :func:`sample_seeds`; the caller's states are put back when the block
    ends, so the block neither depends on nor changes the caller's stream
    (CUDA generators are left alone: data pipelines run on the CPU).

    Args:
        seed (int): The run's seed.
        epoch (int): The epoch (0-based).
        index (int): The sample's index in the dataset.
    """
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    py_seed, np_seed, torch_seed = (
        int(s) for s in sample_seeds(seed, epoch, index))
    random.seed(py_seed)
    np.random.seed(np_seed)
    # Not torch.manual_seed, which would also re-seed the CUDA generators.
    torch.default_generator.manual_seed(torch_seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
