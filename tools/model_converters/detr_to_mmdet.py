"""Convert a reference DETR-class COCO detector checkpoint into mmdet's.

Two sources save the same format (``models.detr.DETR``, ``{'model':
state_dict, ...}``, a 92-way classifier: row ``i`` = COCO category id ``i``,
row 91 = no object) and differ only in the transformer:

- the reference UP-DETR fine-tuned COCO model (github.com/dddzg/up-detr):
  pre-norm, with a final encoder norm. Load the result with our configs,
  e.g. ``configs/updetr/finetune_coco_300e.py``;
- facebookresearch/detr's models (e.g. ``detr-r50-e632da11.pth``):
  post-norm. Load the result with mmdet's own
  ``mmdet::detr/detr_r50_8xb2-150e_coco.py`` (R50), or with ours and
  ``--cfg-options model.encoder.normalize_before=False
  model.decoder.normalize_before=False``.

The tool tells them apart by the keys, renames every key (see
``tools/model_converters/reference_keys.py``; a key it cannot place stops it),
keeps the classifier rows of mmdet's 80 COCO classes in
``CocoDataset.METAINFO`` order plus no object as the background (last) row,
and writes ``{'state_dict', 'meta'}``, which ``tools/test.py CONFIG CKPT``
and ``load_from`` read.

Example::

    python tools/model_converters/detr_to_mmdet.py \\
        up-detr-coco-300ep.pth checkpoints/updetr_r50_coco_300e_mmdet.pth
    python tools/test.py configs/updetr/finetune_coco_300e.py \\
        checkpoints/updetr_r50_coco_300e_mmdet.pth
"""
import argparse
import os.path as osp
import sys
from typing import Dict

import torch
from torch import Tensor

if not __package__:  # run as a script, from any folder
    # The repository root makes ``tools.model_converters`` importable.
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.model_converters import (COCO_CATEGORY_IDS,
                                    COCO_REFERENCE_NUM_OUTPUTS, PRE_NORM_KEY,
                                    coco_class_rows,
                                    convert_reference_state_dict,
                                    converter_arg_parser, get_model_state_dict,
                                    load_reference_checkpoint)

HINTS = {
    True:
    ('pre-norm (UP-DETR fine-tuned)', 'configs/updetr/finetune_coco_300e.py'),
    False: ('post-norm (facebookresearch/detr)',
            'mmdet::detr/detr_r50_8xb2-150e_coco.py, or ours with '
            '--cfg-options model.encoder.normalize_before=False '
            'model.decoder.normalize_before=False')
}


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    return converter_arg_parser(
        'Convert a COCO detector checkpoint of facebookresearch/detr or '
        'dddzg/up-detr (fine-tuned) into mmdet').parse_args()


def check_detector(src_sd: Dict[str, Tensor], src: str) -> None:
    """Refuse what is not a reference COCO detector, saying what it is.

    Args:
        src_sd (dict[str, Tensor]): The reference state dict.
        src (str): Its file, for the message.
    """
    if any(k.startswith(('patch2query.', 'feature_align.')) for k in src_sd):
        raise SystemExit(
            f'{src} is an UP-DETR pre-training checkpoint (it has '
            'patch2query / feature_align): convert it with '
            'tools/model_converters/updetr_to_mmdet.py')
    cls = src_sd.get('class_embed.weight')
    if cls is None or cls.shape[0] != COCO_REFERENCE_NUM_OUTPUTS:
        shape = None if cls is None else tuple(cls.shape)
        raise SystemExit(
            f'{src}: class_embed.weight has shape {shape}; a COCO detector '
            f'of DETR or UP-DETR has {COCO_REFERENCE_NUM_OUTPUTS} outputs '
            '(91 category ids + no object)')


def convert(src: str, dst: str, unsafe_load: bool = False) -> dict:
    """Convert ``src`` and save ``{'state_dict', 'meta'}`` to ``dst``.

    Args:
        src (str): The reference checkpoint.
        dst (str): Where to save the converted one.
        unsafe_load (bool): Load ``src`` with ``weights_only=False``.
            Defaults to False.

    Returns:
        dict: The saved checkpoint.
    """
    checkpoint = load_reference_checkpoint(src, unsafe_load)
    src_sd = get_model_state_dict(checkpoint)
    check_detector(src_sd, src)
    pre_norm = PRE_NORM_KEY in src_sd
    state_dict = convert_reference_state_dict(
        src_sd, pretext=False, class_rows=coco_class_rows())
    kind, config = HINTS[pre_norm]
    meta = dict(
        converted_from=osp.basename(src),
        source=f'DETR-class COCO detector, {kind}',
        normalize_before=pre_norm,
        category_ids=list(COCO_CATEGORY_IDS))
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    print(f'converted {len(src_sd)} reference keys ({kind}) into '
          f'{len(state_dict)} keys (BN num_batches_tracked added)\n'
          f'  classifier: {COCO_REFERENCE_NUM_OUTPUTS} rows -> 80 COCO '
          'classes (by category id) + background\n'
          f'  load it with {config}\nsaved to {dst}')
    return dict(state_dict=state_dict, meta=meta)


def main() -> None:
    args = parse_args()
    convert(args.src, args.dst, args.unsafe_load)


if __name__ == '__main__':
    main()
