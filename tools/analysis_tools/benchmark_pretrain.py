# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Measure the speed and memory of UP-DETR's pre-training iterations.

Builds the config's model and optimizer wrapper and times full training
iterations (data preprocessor with the patch augmentation, forward, losses,
backward, gradient clipping and optimizer step: ``model.train_step``) on
synthetic batches of the pre-training's form: random images of the given
size, from which ``QueryPatchTransform`` (the config's, with the model's M)
crops M query patches whose boxes are the ground truth, packed by
``PackUPDETRInputs``. Making the batches is not timed (a data loader does
that in parallel). Prints seconds per iteration, images/s and the peak
memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process' peak
resident set size (``resource.getrusage``) on the CPU.

The model is initialised as in training (``init_weights``) but no
checkpoint is loaded: the backbone's ``init_cfg`` is set to None, as the
weights may be absent (they do not change the speed).

Example::

    python tools/analysis_tools/benchmark_pretrain.py \
        configs/updetr/pretrain_in1k.py --batch-size 2 --iters 5 --device cpu
"""
import argparse
import copy
import math
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mmdet_updetr  # noqa: F401  registers UP-DETR's modules

MiB = 1024**2


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Benchmark UP-DETR pre-training iterations')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--batch-size', type=int, default=2, help='images per iteration')
    parser.add_argument(
        '--iters', type=int, default=10, help='timed iterations')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed first iterations')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device (default: cuda if available)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=[480, 600],
        metavar=('H', 'W'),
        help='image height and width (default: 480 600, the largest '
        'pre-training scale)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('need --iters >= 1, --warmup >= 0, --batch-size >= 1')
    return args


def build_model(cfg: Config, device: str) -> nn.Module:
    """Build and initialise the config's model, without pre-trained
    backbone weights."""
    model_cfg = copy.deepcopy(cfg.model)
    if 'num_patches' not in model_cfg:
        raise ValueError('benchmark_pretrain needs a pre-training model (an '
                         f'UPDETR, with num_patches), not {model_cfg.type}.')
    if model_cfg.backbone.get('init_cfg') is not None:
        print(f'backbone init_cfg {model_cfg.backbone.init_cfg} set to None '
              '(random weights; the speed is the same)')
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.to(device).train()


def _find_transform(cfg: object, type_name: str) -> Optional[dict]:
    """The first transform config of type ``type_name`` inside ``cfg``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == type_name:
            return cfg
        children = cfg.values()
    elif isinstance(cfg, (list, tuple)):
        children = cfg
    else:
        return None
    for child in children:
        found = _find_transform(child, type_name)
        if found is not None:
            return found
    return None


def build_patch_transform(cfg: Config, num_patches: int) -> Callable:
    """The config's ``QueryPatchTransform`` (defaults if it has none) with
    the model's number of patches."""
    patch_cfg = _find_transform(
        cfg.get('train_dataloader'), 'QueryPatchTransform')
    patch_cfg = copy.deepcopy(dict(patch_cfg or {}))
    patch_cfg.update(type='QueryPatchTransform', num_patches=num_patches)
    return TRANSFORMS.build(patch_cfg)


def make_batch(patch_transform: Callable, pack: Callable, batch_size: int,
               img_size: Sequence[int]) -> dict:
    """A synthetic batch as the data loader gives it.

    Each image is uniform noise of ``img_size`` (h, w); the query patches
    and their ground-truth boxes are drawn by ``patch_transform``.
    """
    height, width = img_size
    samples = []
    for idx in range(batch_size):
        img = np.random.randint(0, 256, (height, width, 3), dtype=np.uint8)
        results = dict(
            img=img,
            img_id=idx,
            img_path=f'synthetic_{idx}.jpg',
            ori_shape=(height, width),
            img_shape=(height, width),
            scale_factor=(1., 1.))
        samples.append(pack(patch_transform(results)))
    return pseudo_collate(samples)


def sync(device: str) -> None:
    """Wait for the device's queued work (timings are then exact)."""
    if device == 'cuda':
        torch.cuda.synchronize()


def peak_memory(device: str) -> float:
    """Peak memory in MiB: CUDA allocations, or the process' peak RSS."""
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / MiB
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == 'darwin' else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MiB


def time_iterations(model: nn.Module, optim_wrapper: OptimWrapper,
                    next_batch: Callable[[], dict], num_iters: int,
                    device: str) -> List[float]:
    """Seconds of each of ``num_iters`` training iterations."""
    seconds = []
    for _ in range(num_iters):
        data = next_batch()
        sync(device)
        start = time.perf_counter()
        log_vars = model.train_step(data, optim_wrapper)
        sync(device)
        seconds.append(time.perf_counter() - start)
        loss = log_vars['loss']
        loss = float(loss.detach() if torch.is_tensor(loss) else loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f'loss is {loss}')
    return seconds


def benchmark(cfg: Config, args: argparse.Namespace) -> Dict[str, float]:
    """Build the model and optimizer from ``cfg`` and time them.

    Returns:
        dict[str, float]: ``sec_per_iter`` (mean of the timed iterations),
        ``sec_per_iter_std``, ``sec_per_iter_min`` (the fastest, a better
        estimate on a busy machine), ``imgs_per_sec`` (from the mean),
        ``peak_mem_mib``, ``mem_before_mib`` (the same measure before the
        first iteration),
        ``params_m`` and ``trainable_params_m`` (millions).
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = build_model(cfg, args.device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    patch_transform = build_patch_transform(cfg, model.num_patches)
    pack = TRANSFORMS.build(dict(type='PackUPDETRInputs'))

    def next_batch() -> dict:
        return make_batch(patch_transform, pack, args.batch_size,
                          args.img_size)

    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    mem_before = peak_memory(args.device)
    time_iterations(model, optim_wrapper, next_batch, args.warmup, args.device)
    seconds = time_iterations(model, optim_wrapper, next_batch, args.iters,
                              args.device)
    mean = statistics.mean(seconds)
    return dict(
        sec_per_iter=mean,
        sec_per_iter_std=statistics.pstdev(seconds),
        sec_per_iter_min=min(seconds),
        imgs_per_sec=args.batch_size / mean,
        peak_mem_mib=peak_memory(args.device),
        mem_before_mib=mem_before,
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        trainable_params_m=sum(
            p.numel() for p in model.parameters() if p.requires_grad) / 1e6)


def print_table(cfg: Config, args: argparse.Namespace,
                results: Dict[str, float]) -> None:
    """Print the settings and the figures as a two-column table."""
    mem_name = ('CUDA max allocated'
                if args.device == 'cuda' else 'peak RSS (process)')
    device = args.device
    if device == 'cpu':
        device += f' ({torch.get_num_threads()} threads)'
    rows = [
        ('config', args.config),
        ('device', device),
        ('batch size', args.batch_size),
        ('image size (h x w)', '{} x {}'.format(*args.img_size)),
        ('query patches M / queries N',
         f'{cfg.model.num_patches} / {cfg.model.num_queries}'),
        ('parameters (trainable)', f'{results["params_m"]:.2f} M '
         f'({results["trainable_params_m"]:.2f} M)'),
        ('timed iterations (warm-up)', f'{args.iters} ({args.warmup})'),
        ('s / iteration', f'{results["sec_per_iter"]:.3f} '
         f'(std {results["sec_per_iter_std"]:.3f}, '
         f'min {results["sec_per_iter_min"]:.3f})'),
        ('images / s', f'{results["imgs_per_sec"]:.2f}'),
        ('memory measure', mem_name),
        ('  before the 1st iteration', f'{results["mem_before_mib"]:.0f} MiB'),
        ('  peak', f'{results["peak_mem_mib"]:.0f} MiB'),
    ]
    width = max(len(name) for name, _ in rows)
    line = '-' * (width + 3 + max(len(str(value)) for _, value in rows))
    print(line)
    for name, value in rows:
        print(f'{name:<{width}} | {value}')
    print(line)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Run the benchmark; returns the figures of :func:`benchmark`."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    results = benchmark(cfg, args)
    print_table(cfg, args, results)
    return results


if __name__ == '__main__':
    main()
