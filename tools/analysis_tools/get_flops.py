# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""FLOPs and parameters of a detector at a fixed input size, without data.

mmdet's own counter (``mmdet/.mim/tools/analysis_tools/get_flops.py``) also
works on our models, on the CPU too, but averages over images of the
config's validation set, which must be on disk. This tool feeds one
synthetic image of ``--shape`` (default 800 x 1333, DETR's largest test
scale) through the same counter (``mmengine.analysis``, the model's
``forward`` in ``tensor`` mode: CNN, transformer and head, no
post-processing), and also counts the trainable parameters, the number
DETR and UP-DETR report (41.3M for R50). No weights are needed.

Example::

    python tools/analysis_tools/get_flops.py \\
        configs/updetr/finetune_coco_150e.py --shape 800 1333
"""
import argparse
from functools import partial
from typing import Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.analysis import get_model_complexity_info
from mmengine.analysis.print_helper import _format_size
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmdet_updetr  # noqa: F401  registers UP-DETR's modules


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='FLOPs and parameters of a detector at a fixed size')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[800, 1333],
        metavar=('H', 'W'),
        help='input height and width (default: 800 1333)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    return parser.parse_args(argv)


def get_flops(cfg: Config, shape: Tuple[int, int]) -> dict:
    """Count FLOPs and parameters of ``cfg.model`` on one (H, W) image.

    Args:
        cfg (:obj:`Config`): The config.
        shape (tuple[int, int]): Input (height, width).

    Returns:
        dict: ``flops``, ``params`` and ``trainable_params`` (ints).
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model).eval()
    shape = tuple(shape)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=shape,
            ori_shape=shape,
            pad_shape=shape,
            batch_input_shape=shape,
            scale_factor=(1., 1.)))
    model.forward = partial(model.forward, data_samples=[sample])
    inputs = torch.randn(1, 3, *shape)
    with torch.no_grad():
        outputs = get_model_complexity_info(
            model, None, inputs=inputs, show_table=False, show_arch=False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(
        flops=int(outputs['flops']),
        params=int(outputs['params']),
        trainable_params=trainable)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    result = get_flops(cfg, args.shape)
    line = '=' * 30
    print(f'{line}\nInput shape: {tuple(args.shape)}\n'
          f'Flops: {_format_size(result["flops"])}\n'
          f'Params: {_format_size(result["params"])} '
          f'(trainable: {_format_size(result["trainable_params"])})\n'
          f'{line}\nUnsupported operators (softmax, norms, sin/cos) are '
          'not counted; mmengine logs them above.')
    return result


if __name__ == '__main__':
    main()
