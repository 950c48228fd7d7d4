# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Fine-tuning from an UP-DETR pre-training checkpoint (SPEC §3).

A model config says::

    model = dict(init_cfg=dict(type='UPDETRPretrained',
                               checkpoint='work_dirs/pretrain_in1k/epoch_60.pth'))

and ``PreNormDETR.init_weights`` (so every detector of this package)
applies it after DETR's own initialisation: the CNN, ``input_proj`` (the
neck), the transformer, the object queries and the box branches are loaded;
the pretext's ``patch2query`` and ``bbox_head.feature_align`` are dropped
when the model has none; the 2-way match classifier ``bbox_head.fc_cls`` is
initialised anew (kept with ``keep_classifier=True``, for one-shot
detection). A table of loaded, dropped and newly initialised keys goes to
the log. A checkpoint that does not fit
the architecture raises a ``ValueError`` that says what differs.
"""
import re
from collections import Counter
from typing import Dict, List, Sequence

from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import _load_checkpoint
from torch import Tensor, nn

PRETEXT_PREFIXES = ('patch2query.', 'bbox_head.feature_align.')
CLASSIFIER_PREFIX = 'bbox_head.fc_cls.'


def _state_dict_of(checkpoint: dict, filename: str) -> Dict[str, Tensor]:
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise ValueError(
            f'{filename} holds no state dict of tensors (keys '
            f'{sorted(checkpoint)[:8]}): is it a reference checkpoint? '
            'Convert it with tools/model_converters/ first.')
    return {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}


def _num_layers(keys: Sequence[str], coder: str) -> int:
    layers = {
        int(m.group(1))
        for m in (re.match(rf'{coder}\.layers\.(\d+)\.', k) for k in keys) if m
    }
    return len(layers)


def describe_mismatch(model_sd: Dict[str, Tensor], ckpt_sd: Dict[str, Tensor],
                      missing: List[str], unexpected: List[str],
                      shapes: List[str]) -> str:
    """Say in words why a checkpoint does not fit a model.

    Args:
        model_sd (dict[str, Tensor]): The model's state dict.
        ckpt_sd (dict[str, Tensor]): The checkpoint's state dict.
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model lacks.
        shapes (list[str]): Keys whose shapes differ.

    Returns:
        str: The explanation, most telling differences first.
    """
    lines = []
    norm = 'encoder.post_norm.weight'  # only a pre-norm encoder has one
    if norm in model_sd and norm not in ckpt_sd:
        lines.append('the checkpoint is post-norm (its encoder has no final '
                     'norm: DETR, mmdet) while this model is pre-norm; use '
                     'a pre-norm checkpoint or set normalize_before=False')
    elif norm in ckpt_sd and norm not in model_sd:
        lines.append('the checkpoint is pre-norm (its encoder has a final '
                     'norm) while this model is post-norm; set '
                     'normalize_before=True in encoder and decoder')
    for coder in ('encoder', 'decoder'):
        ours, theirs = _num_layers(model_sd,
                                   coder), _num_layers(ckpt_sd, coder)
        if ours != theirs:
            lines.append(f'the checkpoint has {theirs} {coder} layers, this '
                         f'model {ours} ({coder}.num_layers)')
    for key in shapes[:10]:
        lines.append(f'{key}: checkpoint {tuple(ckpt_sd[key].shape)}, model '
                     f'{tuple(model_sd[key].shape)}')
    for name, keys in (('missing from the checkpoint', missing),
                       ('not in this model', unexpected)):
        if keys:
            lines.append(f'{len(keys)} keys {name}, e.g. {keys[:5]}')
    return '\n  '.join(lines)


def _group_counts(keys: Sequence[str]) -> str:
    counts = Counter(k.split('.')[0] for k in keys)
    return ', '.join(f'{name} ({n})' for name, n in counts.items())


@WEIGHT_INITIALIZERS.register_module(name='UPDETRPretrained')
class UPDETRPretrainedInit:
    """Initialise a fine-tuning model from an UP-DETR pre-training run.

    Args:
        checkpoint (str): The pre-training checkpoint (ours, or a reference
            one converted by ``tools/model_converters/updetr_to_mmdet.py``).
        keep_classifier (bool): Keep the 2-way match classifier (one-shot
            detection); otherwise ``bbox_head.fc_cls`` starts anew.
            Defaults to False.
        new_prefixes (Sequence[str]): Prefixes of further model keys that
            are new in fine-tuning (e.g. a mask head) and may be absent from
            the checkpoint. Defaults to ().
        map_location (str): Where tensors are loaded. Defaults to 'cpu'.
    """

    def __init__(self,
                 checkpoint: str,
                 keep_classifier: bool = False,
                 new_prefixes: Sequence[str] = (),
                 map_location: str = 'cpu') -> None:
        self.checkpoint = checkpoint
        self.keep_classifier = keep_classifier
        self.new_prefixes = tuple(new_prefixes)
        self.map_location = map_location

    def plan(self, model_sd: Dict[str, Tensor],
             ckpt_sd: Dict[str, Tensor]) -> Dict[str, List[str]]:
        """Sort the keys into loaded, dropped and newly initialised.

        Args:
            model_sd (dict[str, Tensor]): The model's state dict.
            ckpt_sd (dict[str, Tensor]): The checkpoint's state dict.

        Returns:
            dict[str, list[str]]: ``loaded``, ``dropped`` and ``new`` keys.

        Raises:
            ValueError: If the checkpoint does not fit the architecture.
        """
        new_prefixes = self.new_prefixes
        if not self.keep_classifier:
            new_prefixes += (CLASSIFIER_PREFIX, )
        dropped = [
            k for k in ckpt_sd if k not in model_sd and (
                k.startswith(PRETEXT_PREFIXES) or k.startswith(new_prefixes))
        ]
        new = [k for k in model_sd if k.startswith(new_prefixes)]
        loaded = [k for k in model_sd if k in ckpt_sd and k not in new]
        missing = [
            k for k in model_sd if k not in ckpt_sd and k not in new
            and not k.endswith('num_batches_tracked')
        ]
        unexpected = [
            k for k in ckpt_sd if k not in model_sd and k not in dropped
        ]
        shapes = [k for k in loaded if ckpt_sd[k].shape != model_sd[k].shape]
        if missing or unexpected or shapes:
            raise ValueError(
                f'UPDETRPretrained: {self.checkpoint} does not fit this '
                'model:\n  ' + describe_mismatch(model_sd, ckpt_sd, missing,
                                                 unexpected, shapes))
        new += [k for k in model_sd if k not in ckpt_sd and k not in new]
        return dict(loaded=loaded, dropped=dropped, new=new)

    def __call__(self, module: nn.Module) -> None:
        checkpoint = _load_checkpoint(
            self.checkpoint, map_location=self.map_location)
        ckpt_sd = _state_dict_of(checkpoint, self.checkpoint)
        plan = self.plan(module.state_dict(), ckpt_sd)
        module.load_state_dict({k: ckpt_sd[k]
                                for k in plan['loaded']},
                               strict=False)
        print_log(self.table(plan), logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def table(self, plan: Dict[str, List[str]]) -> str:
        """The log's table of loaded, dropped and newly initialised keys."""
        rows = [
            f'UPDETRPretrained: loading {self.checkpoint}',
            f'| loaded ({len(plan["loaded"])} keys) | '
            f'{_group_counts(plan["loaded"])} |'
        ]
        rows += [f'| dropped | {k} |' for k in plan['dropped']]
        rows += [f'| newly initialised | {k} |' for k in plan['new']]
        return '\n'.join(rows)

    def _get_init_info(self) -> str:
        return f'UPDETRPretrained: load from {self.checkpoint}'
