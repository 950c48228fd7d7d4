"""Map reference UP-DETR / DETR checkpoint keys onto mmdet-updetr's names.

The reference implementations (``dddzg/up-detr`` and
``facebookresearch/detr``) save ``{'model': state_dict, ...}`` with the
key names of their own modules. This module holds the one table that
translates those names into the names of mmdet 3.3's ``DETR`` and of our
``UPDETR``, and the conversion of a whole state dict. Every reference key
must match exactly one rule: a key that matches none raises a
:class:`KeyError` that names it, so nothing is silently dropped.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

KeyRule = Tuple[str, str]

#: ``(pattern, replacement)`` pairs for the DETR part shared by the
#: pre-training model, the fine-tuned models and facebookresearch/detr.
#: Patterns are anchored regular expressions; replacements use ``\N``
#: back-references.
DETR_KEY_RULES: Tuple[KeyRule, ...] = (
    # torchvision ResNet (FrozenBatchNorm2d) -> mmdet ResNet (BN): same
    # names (conv1, bn1, layerX.Y.convZ / bnZ, layerX.Y.downsample.0 / 1).
    (r'^backbone\.0\.body\.(.+)$', r'backbone.\1'),
    (r'^input_proj\.(weight|bias)$', r'neck.convs.0.conv.\1'),
    (r'^query_embed\.weight$', r'query_embedding.weight'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.self_attn\.'
     r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)$',
     r'\1.layers.\2.self_attn.attn.\3'),
    (r'^transformer\.decoder\.layers\.(\d+)\.multihead_attn\.'
     r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)$',
     r'decoder.layers.\1.cross_attn.attn.\2'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.linear1\.'
     r'(weight|bias)$', r'\1.layers.\2.ffn.layers.0.0.\3'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.linear2\.'
     r'(weight|bias)$', r'\1.layers.\2.ffn.layers.1.\3'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.norm1\.'
     r'(weight|bias)$', r'\1.layers.\2.norms.0.\3'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.norm2\.'
     r'(weight|bias)$', r'\1.layers.\2.norms.1.\3'),
    (r'^transformer\.decoder\.layers\.(\d+)\.norm3\.(weight|bias)$',
     r'decoder.layers.\1.norms.2.\2'),
    # The encoder's final norm exists only with ``normalize_before``.
    (r'^transformer\.(encoder|decoder)\.norm\.(weight|bias)$',
     r'\1.post_norm.\2'),
    (r'^class_embed\.(weight|bias)$', r'bbox_head.fc_cls.\1'),
    (r'^bbox_embed\.layers\.0\.(weight|bias)$',
     r'bbox_head.reg_ffn.layers.0.0.\1'),
    (r'^bbox_embed\.layers\.1\.(weight|bias)$',
     r'bbox_head.reg_ffn.layers.1.\1'),
    (r'^bbox_embed\.layers\.2\.(weight|bias)$', r'bbox_head.fc_reg.\1'),
)

#: Rules for the modules only the pre-training (pretext) model has.
PRETEXT_KEY_RULES: Tuple[KeyRule, ...] = (
    (r'^patch2query\.(weight|bias)$', r'patch2query.\1'),
    (r'^feature_align\.layers\.([01])\.(weight|bias)$',
     r'bbox_head.feature_align.layers.\1.\2'),
)

#: Rows of the reference pre-training ``class_embed`` (3 outputs: class 0
#: is never a target, class 1 is "patch", class 2 is "no object") that
#: become our 2-way ``fc_cls`` rows ``[patch, no match]``.
PRETEXT_CLASS_ROWS: Tuple[int, ...] = (1, 2)

_CLS_KEYS = ('bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias')

#: COCO category ids of mmdet's 80 COCO classes, in the order of
#: ``CocoDataset.METAINFO['classes']`` (ascending ids). The reference
#: detectors' classifier row ``i`` is category id ``i`` (ids 1..90, 11 of
#: them unused), row 91 "no object".
COCO_CATEGORY_IDS: Tuple[int,
                         ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
                                 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
                                 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52,
                                 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
                                 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78,
                                 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)

#: Classifier outputs of the reference detectors trained on COCO.
COCO_REFERENCE_NUM_OUTPUTS = 92

#: A key that only a pre-norm transformer (UP-DETR) has.
PRE_NORM_KEY = 'transformer.encoder.norm.weight'


def coco_class_rows(
        category_ids: Sequence[int] = COCO_CATEGORY_IDS,
        no_object_row: int = COCO_REFERENCE_NUM_OUTPUTS - 1) -> List[int]:
    """Reference classifier rows in the order of mmdet's ``DETRHead``.

    mmdet's softmax ``DETRHead`` has ``num_classes + 1`` outputs, the
    classes in the dataset's order and background last.

    Args:
        category_ids (Sequence[int]): The category id of each of our
            classes, in our order. Defaults to :data:`COCO_CATEGORY_IDS`.
        no_object_row (int): The reference's "no object" row. Defaults to 91.

    Returns:
        list[int]: ``category_ids`` followed by ``no_object_row``.
    """
    return list(category_ids) + [no_object_row]


_BN_BUFFER = 'running_var'


def apply_key_rules(key: str, rules: Sequence[Tuple[str,
                                                    str]]) -> Optional[str]:
    """Rename ``key`` by the first ``(pattern, replacement)`` rule matching it.

    Args:
        key (str): A key of a reference state dict.
        rules (Sequence[tuple[str, str]]): Regular expressions and their
            ``re.sub`` replacements, tried in order.

    Returns:
        str | None: Our key, or None when no rule matches.
    """
    for pattern, replacement in rules:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def map_reference_key(key: str, pretext: bool = True) -> Optional[str]:
    """Translate one reference key into ours.

    Args:
        key (str): A key of the reference model's state dict.
        pretext (bool): Whether the pre-training modules (``patch2query``,
            ``feature_align``) are known keys. Defaults to True.

    Returns:
        str | None: Our key, or None when no rule matches.
    """
    return apply_key_rules(
        key, DETR_KEY_RULES + (PRETEXT_KEY_RULES if pretext else ()))


def _map_all_keys(state_dict: Dict[str, Tensor],
                  pretext: bool) -> 'OrderedDict[str, Tensor]':
    """Rename every key, raising for unknown keys and name clashes."""
    converted: 'OrderedDict[str, Tensor]' = OrderedDict()
    unknown: List[str] = []
    for key, value in state_dict.items():
        new_key = map_reference_key(key, pretext)
        if new_key is None:
            unknown.append(key)
        elif new_key in converted:
            raise KeyError(f'two reference keys map onto {new_key!r}; '
                           f'the second is {key!r}')
        else:
            converted[new_key] = value
    if unknown:
        kind = 'UP-DETR pre-training' if pretext else 'DETR'
        raise KeyError(f'cannot map {len(unknown)} key(s) of the reference '
                       f'{kind} checkpoint: {unknown}')
    return converted


def select_class_rows(converted: Dict[str, Tensor],
                      rows: Sequence[int]) -> None:
    """Keep (and reorder) rows of the classifier ``bbox_head.fc_cls``.

    Args:
        converted (dict[str, Tensor]): A state dict with our key names,
            changed in place.
        rows (Sequence[int]): Reference class indices, in our order.
    """
    for key in _CLS_KEYS:
        if key not in converted:
            raise KeyError(f'{key!r} (reference class_embed) is missing')
        value = converted[key]
        if max(rows) >= value.shape[0]:
            raise ValueError(f'class rows {list(rows)} do not fit the '
                             f'reference classifier with {value.shape[0]} '
                             f'outputs')
        converted[key] = value[list(rows)].clone()


def add_num_batches_tracked(converted: Dict[str, Tensor]) -> List[str]:
    """Add the ``num_batches_tracked`` buffer of every BN layer.

    The reference backbone uses ``FrozenBatchNorm2d``, which has no such
    buffer; mmdet's BN has one. It is filled with zeros.

    Args:
        converted (dict[str, Tensor]): A state dict with our key names,
            changed in place.

    Returns:
        list[str]: The keys that were added.
    """
    added = []
    for key in list(converted):
        if not key.endswith('.' + _BN_BUFFER):
            continue
        new_key = key[:-len(_BN_BUFFER)] + 'num_batches_tracked'
        if new_key not in converted:
            converted[new_key] = torch.tensor(0, dtype=torch.long)
            added.append(new_key)
    return added


def convert_reference_state_dict(
        state_dict: Dict[str, Tensor],
        pretext: bool = True,
        class_rows: Optional[Sequence[int]] = None
) -> 'OrderedDict[str, Tensor]':
    """Convert a reference state dict into this package's key names.

    Args:
        state_dict (dict[str, Tensor]): The reference checkpoint's
            ``'model'`` entry (keys as in ``dddzg/up-detr`` or
            ``facebookresearch/detr``).
        pretext (bool): Whether it is the pre-training (pretext) model, with
            ``patch2query``, ``feature_align`` and a 3-way classifier whose
            rows 1 (patch) and 2 (no object) become our 2-way classifier.
            Defaults to True.
        class_rows (Sequence[int], optional): Reference classifier rows to
            keep, in our order (e.g. a dataset's category ids followed by the
            no-object row). Defaults to :data:`PRETEXT_CLASS_ROWS` when
            ``pretext`` and to all rows otherwise.

    Returns:
        OrderedDict[str, Tensor]: The state dict with our key names, BN
        ``num_batches_tracked`` buffers added.

    Raises:
        KeyError: When a key matches no rule (the message names every such
            key) or two keys map onto the same name.
    """
    converted = _map_all_keys(state_dict, pretext)
    if class_rows is None and pretext:
        class_rows = PRETEXT_CLASS_ROWS
    if class_rows is not None:
        select_class_rows(converted, class_rows)
    add_num_batches_tracked(converted)
    return converted
