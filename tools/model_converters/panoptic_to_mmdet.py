"""Convert a reference panoptic (DETRsegm) checkpoint into ours.

facebookresearch/detr (and dddzg/up-detr, same code) save the panoptic
model as ``{'model': state_dict, ...}`` with a ``detr.`` prefix on the
detector and the mask branches ``bbox_attention`` and ``mask_head``; its
classifier has 251 outputs (row = COCO panoptic category id, row 250 = no
object). This tool renames every key (see
``tools/model_converters/panoptic_keys.py``; a key it cannot place stops it),
keeps the rows of mmdet's 133 classes (``CocoPanopticDataset`` order) plus
no object last, and writes ``{'state_dict', 'meta'}``, which
``tools/test.py`` and ``load_from`` read with
``configs/updetr/panoptic_mask_coco_25e.py``.

The two kinds of checkpoint differ in two ways, and our configs are set
for UP-DETR's:

- dddzg/up-detr (UP-DETR's panoptic models): pre-norm transformer, attention
  maps softmaxed per head (``softmax(weights.flatten(3))``, the reference's
  form since March 2021, after facebookresearch/detr#247). Loads as is.
- facebookresearch/detr (DETR's own panoptic models): post-norm, one softmax
  over heads and positions together (``flatten(2)``), with which they were
  trained. Test them with ``--cfg-options
  model.encoder.normalize_before=False model.decoder.normalize_before=False
  model.bbox_head.softmax_per_head=False``.

The tool tells them apart by the pre-norm encoder's final norm (only
UP-DETR's transformer has it), says which it found and prints the options;
``--attention-softmax per-head|joint`` overrides the guess for the maps
(e.g. a post-norm model trained with dddzg/up-detr's code).

Example::

    python tools/model_converters/panoptic_to_mmdet.py \\
        detr-r50-panoptic-00ce5173.pth checkpoints/detr_r50_panoptic_mmdet.pth
    python tools/test.py configs/updetr/panoptic_mask_coco_25e.py \\
        checkpoints/detr_r50_panoptic_mmdet.pth --cfg-options \\
        model.encoder.normalize_before=False \\
        model.decoder.normalize_before=False \\
        model.bbox_head.softmax_per_head=False
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

import torch

if not __package__:  # run as a script, from any folder
    # The repository root makes ``tools.model_converters`` importable.
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.model_converters import (COCO_PANOPTIC_CATEGORY_IDS, PRE_NORM_KEY,
                                    convert_panoptic_state_dict,
                                    converter_arg_parser, get_model_state_dict,
                                    load_reference_checkpoint,
                                    panoptic_class_rows)

#: The reference panoptic model wraps DETR as ``detr.``.
PANOPTIC_PRE_NORM_KEY = 'detr.' + PRE_NORM_KEY


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = converter_arg_parser(
        'Convert a reference DETR / UP-DETR panoptic '
        'checkpoint (DETRsegm) into an mmdet-updetr checkpoint')
    parser.add_argument(
        '--ann-file',
        help='a COCO panoptic json: take the category ids of mmdet\'s 133 '
        'class names from it instead of the built-in table')
    parser.add_argument(
        '--attention-softmax',
        choices=('auto', 'per-head', 'joint'),
        default='auto',
        help='the form of the attention maps the checkpoint was trained '
        'with: per-head (dddzg/up-detr), joint (facebookresearch/detr); auto '
        '(default) takes per-head for a pre-norm checkpoint, joint for a '
        'post-norm one')
    return parser.parse_args()


def category_ids_from_json(ann_file: str) -> List[int]:
    """Category ids of mmdet's COCO panoptic classes, by name, in order."""
    from mmdet.datasets import CocoPanopticDataset
    with open(ann_file) as f:
        name_to_id = {c['name']: c['id'] for c in json.load(f)['categories']}
    names = CocoPanopticDataset.METAINFO['classes']
    missing = [n for n in names if n not in name_to_id]
    if missing:
        raise KeyError(f'{ann_file} has no categories named {missing}')
    return [name_to_id[n] for n in names]


def needed_cfg_options(pre_norm: bool, softmax_per_head: bool) -> List[str]:
    """The ``--cfg-options`` our panoptic configs need for a checkpoint.

    Args:
        pre_norm (bool): The transformer is pre-norm.
        softmax_per_head (bool): The attention maps are softmaxed per head.

    Returns:
        list[str]: ``key=value`` options, empty for an UP-DETR checkpoint.
    """
    options = [] if pre_norm else [
        'model.encoder.normalize_before=False',
        'model.decoder.normalize_before=False'
    ]
    if not softmax_per_head:
        options.append('model.bbox_head.softmax_per_head=False')
    return options


def convert(src: str,
            dst: str,
            ann_file: Optional[str] = None,
            unsafe_load: bool = False,
            attention_softmax: str = 'auto') -> dict:
    """Convert ``src`` and save ``{'state_dict', 'meta'}`` to ``dst``.

    Args:
        src (str): The reference checkpoint.
        dst (str): Where to save ours.
        ann_file (str, optional): A COCO panoptic json for the category ids.
        unsafe_load (bool): Load ``src`` with ``weights_only=False``.
        attention_softmax (str): 'per-head', 'joint', or 'auto' (per-head
            for a pre-norm checkpoint, joint for a post-norm one).

    Returns:
        dict: The saved checkpoint.
    """
    if attention_softmax not in ('auto', 'per-head', 'joint'):
        raise ValueError("attention_softmax must be 'auto', 'per-head' or "
                         f"'joint', got {attention_softmax!r}")
    src_sd = get_model_state_dict(load_reference_checkpoint(src, unsafe_load))
    if not any(k.startswith('mask_head.') for k in src_sd):
        raise SystemExit(f'{src} has no mask_head: not a panoptic (DETRsegm)'
                         ' checkpoint; use detr_to_mmdet.py for detectors')
    ids = category_ids_from_json(ann_file) if ann_file else \
        COCO_PANOPTIC_CATEGORY_IDS
    state_dict = convert_panoptic_state_dict(src_sd, panoptic_class_rows(ids))
    pre_norm = PANOPTIC_PRE_NORM_KEY in src_sd
    per_head = pre_norm if attention_softmax == 'auto' else \
        attention_softmax == 'per-head'
    options = needed_cfg_options(pre_norm, per_head)
    meta = dict(
        converted_from=osp.basename(src),
        source='DETRsegm panoptic model (facebookresearch/detr format)',
        pre_norm=pre_norm,
        softmax_per_head=per_head,
        cfg_options=options)
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    print(f'converted {len(src_sd)} reference keys into {len(state_dict)} '
          f'keys; classifier rows: {len(ids)} category ids + no object')
    print('transformer: ' +
          ('pre-norm (UP-DETR)' if pre_norm else 'post-norm (DETR)'))
    print('attention maps: ' +
          ('softmax per head (dddzg/up-detr)' if per_head else
           'one softmax over heads and positions (facebookresearch/detr)') +
          ('' if attention_softmax == 'auto' else ' (as told)'))
    need = 'need --cfg-options ' + ' '.join(options)
    print('our panoptic configs ' + (need if options else 'load it as is'))
    print(f'saved to {dst}')
    return dict(state_dict=state_dict, meta=meta)


def main() -> None:
    args = parse_args()
    convert(args.src, args.dst, args.ann_file, args.unsafe_load,
            args.attention_softmax)


if __name__ == '__main__':
    main()
