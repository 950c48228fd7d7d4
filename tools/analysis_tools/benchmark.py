# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Inference speed (FPS) of a detector, on CUDA or on the CPU.

mmdet's benchmark (``mmdet/.mim/tools/analysis_tools/benchmark.py``) runs
our models on a GPU (it needs ``pip install psutil``), but its
``InferenceBenchmark`` moves the model to CUDA and synchronises CUDA
unconditionally, so it fails on a CPU-only torch. This tool times the same
step, ``model.test_step`` on one image at a time (data preprocessing,
forward, post-processing; loading the data is not timed), on either
device: images from the config's test dataloader, as mmdet does, or with
``--shape`` synthetic images of that size (no dataset needed). The
checkpoint is optional: the weights do not change the speed.

Example::

    python tools/analysis_tools/benchmark.py \\
        configs/updetr/finetune_coco_150e.py --shape 800 1333 --device cpu \\
        --max-iter 5 --num-warmup 1
"""
import argparse
import time
from typing import Iterable, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

import mmdet_updetr  # noqa: F401  registers UP-DETR's modules
from mmdet_updetr.engine import enable_safe_checkpoints


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Benchmark inference FPS')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (optional)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device (default: cuda if available)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='time synthetic images of this size instead of the test set')
    parser.add_argument(
        '--max-iter', type=int, default=50, help='images in all')
    parser.add_argument(
        '--num-warmup', type=int, default=5, help='untimed first images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.max_iter <= args.num_warmup or args.num_warmup < 0:
        parser.error('need 0 <= --num-warmup < --max-iter')
    return args


def synthetic_batches(shape: Tuple[int, int], num: int) -> Iterable[dict]:
    """``num`` one-image batches of random uint8 pixels, as a loader gives.
    """
    for _ in range(num):
        sample = DetDataSample(
            metainfo=dict(
                img_shape=tuple(shape),
                ori_shape=tuple(shape),
                scale_factor=(1., 1.)))
        yield dict(
            inputs=[torch.randint(0, 256, (3, *shape), dtype=torch.uint8)],
            data_samples=[sample])


def time_inference(model: torch.nn.Module, batches: Iterable[dict],
                   device: str, max_iter: int, num_warmup: int) -> dict:
    """Time ``model.test_step`` per batch of one image.

    Returns:
        dict: ``fps`` and ``ms_per_img`` over the timed images, and
        ``num_timed``.
    """
    times = []
    for i, data in enumerate(batches):
        if i == max_iter:
            break
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            model.test_step(data)
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= num_warmup:
            times.append(time.perf_counter() - start)
    if not times:
        raise ValueError('no image was timed: the data has no more images '
                         f'than --num-warmup ({num_warmup})')
    total = sum(times)
    return dict(
        fps=len(times) / total,
        ms_per_img=1000 * total / len(times),
        num_timed=len(times))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        enable_safe_checkpoints()  # our checkpoints load with weights_only
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model = model.to(args.device).eval()
    if args.shape:
        batches = synthetic_batches(args.shape, args.max_iter)
    else:
        cfg.test_dataloader.update(
            batch_size=1, num_workers=0, persistent_workers=False)
        batches = Runner.build_dataloader(cfg.test_dataloader)
    result = time_inference(model, batches, args.device, args.max_iter,
                            args.num_warmup)
    print(f'{args.device}: {result["fps"]:.2f} img/s, '
          f'{result["ms_per_img"]:.1f} ms/img over {result["num_timed"]} '
          f'images (after {args.num_warmup} warm-up)')
    return result


if __name__ == '__main__':
    main()
