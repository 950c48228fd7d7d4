"""Convert a reference UP-DETR pre-training checkpoint into ours.

The reference implementation (github.com/dddzg/up-detr) saves
``{'model': state_dict, 'optimizer': ..., 'args': Namespace, ...}``. This
tool renames the model's keys (see ``reference_keys.py`` beside it), maps
the 3-way pretext classifier onto our 2-way one and writes
``{'state_dict': ..., 'meta': ...}``, which ``load_from`` reads.

Example::

    python tools/model_converters/updetr_to_mmdet.py \\
        up-detr-pre-training-60ep-imagenet.pth \\
        checkpoints/updetr_r50_pretrain_imagenet_mmdet.pth
"""
import argparse
import os.path as osp
import sys
from collections import Counter
from typing import Dict

import torch
from torch import Tensor

if not __package__:  # run as a script, from any folder
    # The repository root makes ``tools.model_converters`` importable.
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.model_converters import (PRETEXT_CLASS_ROWS,
                                    convert_reference_state_dict,
                                    converter_arg_parser, get_model_state_dict,
                                    load_reference_checkpoint)


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    return converter_arg_parser(
        'Convert a dddzg/up-detr pre-training checkpoint into an '
        'mmdet-updetr checkpoint').parse_args()


def check_pretext(src_sd: Dict[str, Tensor], src: str) -> None:
    """Refuse a checkpoint that is not a reference pre-training one.

    Args:
        src_sd (dict[str, Tensor]): The reference state dict.
        src (str): Its file, for the message.
    """
    if 'patch2query.weight' not in src_sd:
        cls = src_sd.get('class_embed.weight')
        shape = None if cls is None else tuple(cls.shape)
        raise SystemExit(
            f'{src} has no patch2query (class_embed.weight: {shape}): it is '
            'not an UP-DETR pre-training checkpoint. A fine-tuned COCO '
            'detector of UP-DETR or DETR is converted by '
            'tools/model_converters/detr_to_mmdet.py')


def summarize(src_sd: Dict[str, Tensor], dst_sd: Dict[str, Tensor]) -> str:
    """A short report of the conversion, per top-level module."""
    groups = Counter(key.split('.')[0] for key in dst_sd)
    added = [k for k in dst_sd if k.endswith('num_batches_tracked')]
    lines = [
        f'converted {len(src_sd)} reference keys into {len(dst_sd)} keys',
        f'  added {len(added)} BN num_batches_tracked buffers (zeros)',
        f'  classifier rows {list(PRETEXT_CLASS_ROWS)} of the reference '
        '(patch, no object) -> bbox_head.fc_cls [patch, no match]'
    ]
    lines += [f'  {name}: {num} keys' for name, num in sorted(groups.items())]
    return '\n'.join(lines)


def convert(src: str, dst: str, unsafe_load: bool = False) -> dict:
    """Convert ``src`` and save ``{'state_dict', 'meta'}`` to ``dst``.

    Returns:
        dict: The saved checkpoint.
    """
    checkpoint = load_reference_checkpoint(src, unsafe_load)
    src_sd = get_model_state_dict(checkpoint)
    check_pretext(src_sd, src)
    state_dict = convert_reference_state_dict(src_sd, pretext=True)
    meta = dict(
        converted_from=osp.basename(src),
        source='dddzg/up-detr pre-training (random query patch detection)')
    if isinstance(checkpoint.get('epoch'), int):
        meta['epoch'] = checkpoint['epoch']
    out = dict(state_dict=state_dict, meta=meta)
    torch.save(out, dst)
    print(summarize(src_sd, state_dict))
    print(f'saved to {dst}')
    return out


def main() -> None:
    args = parse_args()
    convert(args.src, args.dst, args.unsafe_load)


if __name__ == '__main__':
    main()
