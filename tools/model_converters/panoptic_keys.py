"""Map the reference's panoptic checkpoints onto ``UPDETRPanoptic``.

The reference panoptic model (``DETRsegm`` of facebookresearch/detr, also
in dddzg/up-detr) wraps a DETR as ``detr.`` and adds ``bbox_attention``
(``MHAttentionMap``: ``q_linear``, ``k_linear``) and ``mask_head``
(``MaskHeadSmallConv``: ``lay1..5``, ``gn1..5``, ``out_lay``,
``adapter1..3``). The ``detr.`` part goes through the DETR key table of
:mod:`tools.model_converters.reference_keys`; the mask branches land in
our ``bbox_head`` (a ``PanopticDETRHead``) under the same names.

Its classifier has 251 outputs for COCO panoptic: row ``i`` is category id
``i`` (things 1..90, stuff 92..200, most ids unused) and row 250 is "no
object"; mmdet's 133 classes (``CocoPanopticDataset.METAINFO``, things then
stuff, ascending ids) take rows :data:`COCO_PANOPTIC_CATEGORY_IDS`.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor

from .reference_keys import apply_key_rules, convert_reference_state_dict

#: Rules for the reference's mask branches (keys without ``detr.``).
PANOPTIC_KEY_RULES: Tuple[Tuple[str, str], ...] = (
    (r'^bbox_attention\.(q_linear|k_linear)\.(weight|bias)$',
     r'bbox_head.bbox_attention.\1.\2'),
    (r'^mask_head\.(lay[1-5]|gn[1-5]|out_lay|adapter[1-3])\.(weight|bias)$',
     r'bbox_head.mask_head.\1.\2'),
)

#: COCO panoptic category ids of mmdet's 133 classes, in the order of
#: ``CocoPanopticDataset.METAINFO['classes']`` (80 things, 53 stuff; from
#: panopticapi's ``panoptic_coco_categories.json``).
COCO_PANOPTIC_CATEGORY_IDS: Tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64,
    65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88,
    89, 90, 92, 93, 95, 100, 107, 109, 112, 118, 119, 122, 125, 128, 130, 133,
    138, 141, 144, 145, 147, 148, 149, 151, 154, 155, 156, 159, 161, 166, 168,
    171, 175, 176, 177, 178, 180, 181, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200)

#: Classifier outputs of the reference panoptic model (250 ids + no object).
PANOPTIC_REFERENCE_NUM_OUTPUTS = 251

_DETR_PREFIX = 'detr.'


def panoptic_class_rows(
        category_ids: Sequence[int] = COCO_PANOPTIC_CATEGORY_IDS,
        no_object_row: int = PANOPTIC_REFERENCE_NUM_OUTPUTS - 1) -> List[int]:
    """Reference classifier rows in our order, no object last.

    Args:
        category_ids (Sequence[int]): Category id of each of our classes.
            Defaults to :data:`COCO_PANOPTIC_CATEGORY_IDS`.
        no_object_row (int): The reference's "no object" row. Defaults
            to 250.

    Returns:
        list[int]: ``category_ids`` followed by ``no_object_row``.
    """
    return list(category_ids) + [no_object_row]


def map_panoptic_key(key: str) -> Optional[str]:
    """Our name of a reference mask-branch key, None if no rule matches."""
    return apply_key_rules(key, PANOPTIC_KEY_RULES)


def convert_panoptic_state_dict(
        state_dict: Dict[str, Tensor],
        class_rows: Optional[Sequence[int]] = None
) -> 'OrderedDict[str, Tensor]':
    """Convert a reference panoptic (``DETRsegm``) state dict.

    Args:
        state_dict (dict[str, Tensor]): The reference checkpoint's
            ``'model'`` entry.
        class_rows (Sequence[int], optional): Classifier rows to keep, in
            our order. Defaults to :func:`panoptic_class_rows` (mmdet's 133
            COCO panoptic classes, no object last).

    Returns:
        OrderedDict[str, Tensor]: Our key names, BN ``num_batches_tracked``
        buffers added.

    Raises:
        KeyError: When a key matches no rule (the message names them all).
    """
    detr_sd, converted, unknown = OrderedDict(), OrderedDict(), []
    for key, value in state_dict.items():
        if key.startswith(_DETR_PREFIX):
            detr_sd[key[len(_DETR_PREFIX):]] = value
            continue
        new_key = map_panoptic_key(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        raise KeyError(f'cannot map {len(unknown)} key(s) of the reference '
                       f'panoptic checkpoint: {unknown}')
    if class_rows is None:
        class_rows = panoptic_class_rows()
    detr_sd = convert_reference_state_dict(
        detr_sd, pretext=False, class_rows=class_rows)
    detr_sd.update(converted)
    return detr_sd
