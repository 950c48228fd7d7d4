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

DETR's own panoptic models are post-norm: test them with
``--cfg-options model.encoder.normalize_before=False
model.decoder.normalize_before=False``; a pre-norm (UP-DETR) one loads as
is. The tool says which it found.

Example::

    python tools/model_converters/panoptic_to_mmdet.py \\
        detr-r50-panoptic-00ce5173.pth checkpoints/detr_r50_panoptic_mmdet.pth
    python tools/test.py configs/updetr/panoptic_mask_coco_25e.py \\
        checkpoints/detr_r50_panoptic_mmdet.pth --cfg-options \\
        model.encoder.normalize_before=False \\
        model.decoder.normalize_before=False
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


def convert(src: str,
            dst: str,
            ann_file: Optional[str] = None,
            unsafe_load: bool = False) -> dict:
    """Convert ``src`` and save ``{'state_dict', 'meta'}`` to ``dst``.

    Returns:
        dict: The saved checkpoint.
    """
    src_sd = get_model_state_dict(load_reference_checkpoint(src, unsafe_load))
    if not any(k.startswith('mask_head.') for k in src_sd):
        raise SystemExit(f'{src} has no mask_head: not a panoptic (DETRsegm)'
                         ' checkpoint; use detr_to_mmdet.py for detectors')
    ids = category_ids_from_json(ann_file) if ann_file else \
        COCO_PANOPTIC_CATEGORY_IDS
    state_dict = convert_panoptic_state_dict(src_sd, panoptic_class_rows(ids))
    pre_norm = PANOPTIC_PRE_NORM_KEY in src_sd
    meta = dict(
        converted_from=osp.basename(src),
        source='DETRsegm panoptic model (facebookresearch/detr format)',
        pre_norm=pre_norm)
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    print(f'converted {len(src_sd)} reference keys into {len(state_dict)} '
          f'keys; classifier rows: {len(ids)} category ids + no object')
    print('transformer: ' +
          ('pre-norm (UP-DETR): our configs load it as is'
           if pre_norm else 'post-norm (DETR): add --cfg-options '
           'model.encoder.normalize_before=False '
           'model.decoder.normalize_before=False'))
    print(f'saved to {dst}')
    return dict(state_dict=state_dict, meta=meta)


def main() -> None:
    args = parse_args()
    convert(args.src, args.dst, args.ann_file, args.unsafe_load)


if __name__ == '__main__':
    main()
