# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Reading the reference implementations' checkpoints, for the converters.

dddzg/up-detr and facebookresearch/detr save ``{'model': state_dict,
'optimizer': ..., 'args': Namespace, ...}``. The converters in
``tools/model_converters/`` share this loading step and their command line.
"""
import argparse
import pickle
from typing import Dict

import torch
from torch import Tensor

UNSAFE_HINT = (
    'torch.load(weights_only=True) refused {src}: {err}\n'
    'Reference checkpoints may hold Python objects besides tensors, and '
    'unpickling such objects can run arbitrary code. Only if you trust '
    'this file (e.g. downloaded from the authors\' release), rerun with '
    '--unsafe-load.')


def converter_arg_parser(description: str) -> argparse.ArgumentParser:
    """The converters' command line: ``SRC DST [--unsafe-load]``.

    Args:
        description (str): What the converter converts.

    Returns:
        argparse.ArgumentParser: The parser, for more arguments.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='reference checkpoint ({"model": ...})')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load SRC with weights_only=False (unpickles arbitrary '
        'objects: only for a file you trust)')
    return parser


def load_reference_checkpoint(src: str, unsafe_load: bool = False) -> dict:
    """Load a reference checkpoint onto the CPU.

    ``argparse.Namespace`` (the reference's ``args`` entry, a plain
    attribute holder) is allowed in the weights-only load; anything else
    beyond tensors and containers needs ``unsafe_load``.

    Args:
        src (str): Path of the checkpoint.
        unsafe_load (bool): Load with ``weights_only=False``.

    Returns:
        dict: The loaded checkpoint.
    """
    if unsafe_load:
        return torch.load(src, map_location='cpu', weights_only=False)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(src, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise SystemExit(UNSAFE_HINT.format(src=src, err=err)) from err


def get_model_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """Return the ``'model'`` entry (or the checkpoint if it is one).

    Args:
        checkpoint (dict): A loaded reference checkpoint.

    Returns:
        dict[str, Tensor]: The model's state dict.
    """
    if 'model' in checkpoint:
        return checkpoint['model']
    if all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint
    raise KeyError(f'no "model" entry among {sorted(checkpoint)}: is this a '
                   'reference (dddzg/up-detr, facebookresearch/detr) '
                   'checkpoint?')
