# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Measure the speed and memory of UP-DETR's training iterations.

Builds the config's model and optimizer wrapper and times full training
iterations (data preprocessor with the patch augmentation, forward, losses,
backward, gradient clipping and optimizer step: ``model.train_step``) on
synthetic batches. For a pre-training config (an ``UPDETR``, with
``num_patches``): random images of the given size, from which
``QueryPatchTransform`` (the config's, with the model's M) crops M query
patches whose boxes are the ground truth, packed by ``PackUPDETRInputs``.
For a fine-tuning config (any other DETR): random images with
``--num-boxes`` random boxes of random classes, packed by
``PackDetInputs`` (default size 800 x 1333, the fine-tuning's largest).
Making the batches is not timed (a data loader does that in parallel).

Prints, per precision (float32, and with ``--amp`` mixed precision beside
it: float16 with mmengine's ``AmpOptimWrapper`` on CUDA, bfloat16 with
``BF16AmpOptimWrapper`` on the CPU, as ``tools/train.py --amp`` picks):
seconds per iteration, images/s, the peak memory
(``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the process' peak
resident set size, reset before each precision's run through
``/proc/self/clear_refs`` where Linux allows it) and the host-device
synchronisations of one iteration: counted exactly on CUDA
(``torch.cuda.set_sync_debug_mode``); on the CPU, where nothing syncs, the
calls that would sync if their tensor were on a GPU (``item``, ``tolist``,
``nonzero``, ``cpu``, ``numpy``, ``bool`` / ``int`` / ``float`` of a tensor)
are counted by patching them: an upper bound, since calls on host tensors
would not sync there.

``--reference`` also times, at the same shape (batch, image size, N, M,
patch size, transformer, CNN depth), one training step of
``tests/reference/updetr_reference.py``, this repository's plain-torch
re-implementation of the reference code (``dddzg/up-detr``): forward,
criterion, ``loss.item()``, backward, clipping at 0.1 and AdamW, float32,
patches already augmented (the reference augments them in its data
loader). It is a re-implementation, not the reference's own code: it
anchors the ratios in the same session.

The model is initialised as in training (``init_weights``) but no
checkpoint is loaded: the backbone's ``init_cfg`` is set to None, as the
weights may be absent (they do not change the speed).

Examples::

    python tools/analysis_tools/benchmark_pretrain.py \
        configs/updetr/pretrain_in1k.py --batch-size 2 --device cpu \
        --amp --reference
    python tools/analysis_tools/benchmark_pretrain.py \
        configs/updetr/finetune_coco_150e.py --batch-size 2 --amp
"""
import argparse
import contextlib
import copy
import ctypes
import functools
import gc
import math
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import MODELS, TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mmdet_updetr  # noqa: F401  registers UP-DETR's modules

MiB = 1024**2
REPO_ROOT = Path(__file__).resolve().parents[2]
PRETRAIN_SIZE, FINETUNE_SIZE = (480, 600), (800, 1333)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Benchmark UP-DETR training iterations')
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
        default=None,
        metavar=('H', 'W'),
        help='image height and width (default: 480 600 for pre-training, '
        '800 1333 for fine-tuning: the largest scales)')
    parser.add_argument(
        '--num-boxes',
        type=int,
        default=8,
        help='ground-truth boxes per image of a fine-tuning config')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='also time mixed precision (as tools/train.py --amp), printed '
        'beside float32')
    parser.add_argument(
        '--reference',
        action='store_true',
        help='also time the step of the reference re-implementation '
        '(tests/reference/updetr_reference.py) at the same shape '
        '(pre-training configs, on the CPU)')
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


def is_pretrain(cfg: Config) -> bool:
    """Whether the config's model is a pre-training one (with patches)."""
    return 'num_patches' in cfg.model


def build_model(cfg: Config, device: str) -> nn.Module:
    """Build and initialise the config's model, without pre-trained
    weights."""
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.backbone.get('init_cfg') is not None:
        print(f'backbone init_cfg {model_cfg.backbone.init_cfg} set to None '
              '(random weights; the speed is the same)')
        model_cfg.backbone.init_cfg = None
    if model_cfg.get('init_cfg') is not None:
        print(f'model init_cfg {model_cfg.init_cfg} set to None')
        model_cfg.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.to(device).train()


def amp_optim_wrapper_cfg(optim_wrapper: dict, device: str) -> dict:
    """The optimizer wrapper config of ``tools/train.py --amp``: mmengine's
    ``AmpOptimWrapper`` (float16) on CUDA, ``BF16AmpOptimWrapper`` on the
    CPU."""
    optim_wrapper = copy.deepcopy(dict(optim_wrapper))
    if device == 'cuda':
        optim_wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic')
    else:
        optim_wrapper.update(type='BF16AmpOptimWrapper')
    return optim_wrapper


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


def _image_results(idx: int, img_size: Sequence[int]) -> dict:
    """A random uint8 image of ``img_size`` (h, w) as a pipeline's results."""
    height, width = img_size
    img = np.random.randint(0, 256, (height, width, 3), dtype=np.uint8)
    return dict(
        img=img,
        img_id=idx,
        img_path=f'synthetic_{idx}.jpg',
        ori_shape=(height, width),
        img_shape=(height, width),
        scale_factor=(1., 1.))


def make_batch(patch_transform: Callable, pack: Callable, batch_size: int,
               img_size: Sequence[int]) -> dict:
    """A synthetic pre-training batch as the data loader gives it.

    Each image is uniform noise of ``img_size`` (h, w); the query patches
    and their ground-truth boxes are drawn by ``patch_transform``.
    """
    samples = [
        pack(patch_transform(_image_results(idx, img_size)))
        for idx in range(batch_size)
    ]
    return pseudo_collate(samples)


def make_det_batch(pack: Callable, batch_size: int, img_size: Sequence[int],
                   num_boxes: int, num_classes: int) -> dict:
    """A synthetic detection batch: noise images with ``num_boxes`` random
    boxes (at least 8 pixels a side, ``HorizontalBoxes`` as mmdet's
    ``LoadAnnotations`` gives them) of random classes each."""
    height, width = img_size
    samples = []
    for idx in range(batch_size):
        results = _image_results(idx, img_size)
        xy = np.random.uniform(0, [width - 8, height - 8], (num_boxes, 2))
        wh = np.random.uniform(8, [width, height], (num_boxes, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, [width, height])], 1)
        results.update(
            gt_bboxes=HorizontalBoxes(boxes.astype(np.float32)),
            gt_bboxes_labels=np.random.randint(0, num_classes, num_boxes),
            gt_ignore_flags=np.zeros(num_boxes, bool))
        samples.append(pack(results))
    return pseudo_collate(samples)


def sync(device: str) -> None:
    """Wait for the device's queued work (timings are then exact)."""
    if device == 'cuda':
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    """Start a new peak: CUDA's statistics, or the process' peak RSS
    (Linux's ``clear_refs``; where refused, the peak stays the process')."""
    gc.collect()  # the previous run's model and optimizer
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6').malloc_trim(0)  # glibc: give freed memory
    with contextlib.suppress(OSError):
        with open('/proc/self/clear_refs', 'w') as file:
            file.write('5')


def peak_memory(device: str) -> float:
    """Peak memory in MiB: CUDA allocations, or the process' peak RSS."""
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / MiB
    with contextlib.suppress(OSError):
        with open('/proc/self/status') as file:
            for line in file:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == 'darwin' else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MiB


# Calls that wait for the device when their tensor is on a GPU.
SYNC_METHODS = ('item', 'tolist', 'nonzero', 'cpu', 'numpy', '__bool__',
                '__int__', '__float__')


@contextlib.contextmanager
def count_syncs(device: str) -> Iterator[Dict[str, int]]:
    """Count the host-device synchronisations inside the context.

    On CUDA, exactly: ``torch.cuda.set_sync_debug_mode('warn')`` warns at
    each sync. On the CPU, the calls of :data:`SYNC_METHODS` (and
    ``torch.nonzero``), by patching them for the context: an upper bound of
    a GPU's syncs (calls on host tensors would not sync there).

    Yields:
        dict[str, int]: Counts per call (filled when the context exits),
        and their sum under ``'total'``.
    """
    counts: Dict[str, int] = {}
    if device == 'cuda':
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try:
                yield counts
            finally:
                torch.cuda.set_sync_debug_mode(0)
        counts['cuda sync'] = sum('synchroniz' in str(w.message)
                                  for w in caught)
        counts['total'] = counts['cuda sync']
        return

    def counted(name: str, func: Callable) -> Callable:

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return func(*args, **kwargs)

        return wrapper

    saved = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}
    saved_nonzero = torch.nonzero
    try:
        for name, func in saved.items():
            setattr(torch.Tensor, name, counted(name, func))
        torch.nonzero = counted('nonzero', saved_nonzero)
        yield counts
    finally:
        for name, func in saved.items():
            setattr(torch.Tensor, name, func)
        torch.nonzero = saved_nonzero
        counts['total'] = sum(counts.values())


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


def summarise(seconds: List[float], batch_size: int) -> Dict[str, float]:
    """Mean, std and min seconds per iteration, and images/s (of the
    mean)."""
    mean = statistics.mean(seconds)
    return dict(
        sec_per_iter=mean,
        sec_per_iter_std=statistics.pstdev(seconds),
        sec_per_iter_min=min(seconds),
        imgs_per_sec=batch_size / mean)


def batch_maker(cfg: Config, model: nn.Module,
                args: argparse.Namespace) -> Callable[[], dict]:
    """The synthetic batches of the config's kind (pre-training or
    detection)."""
    img_size = args.img_size
    if is_pretrain(cfg):
        patch_transform = build_patch_transform(cfg, model.num_patches)
        pack = TRANSFORMS.build(dict(type='PackUPDETRInputs'))
        return lambda: make_batch(patch_transform, pack, args.batch_size,
                                  img_size)
    pack = TRANSFORMS.build(dict(type='PackDetInputs'))
    num_classes = model.bbox_head.num_classes
    return lambda: make_det_batch(pack, args.batch_size, img_size, args.
                                  num_boxes, num_classes)


def benchmark(cfg: Config,
              args: argparse.Namespace,
              amp: bool = False) -> Dict[str, float]:
    """Build the model and optimizer from ``cfg`` and time them.

    Args:
        cfg (Config): The config.
        args (argparse.Namespace): The command line.
        amp (bool): Mixed precision (see :func:`amp_optim_wrapper_cfg`).
            Defaults to False.

    Returns:
        dict[str, float]: ``sec_per_iter`` (mean of the timed iterations),
        ``sec_per_iter_std``, ``sec_per_iter_min`` (the fastest, a better
        estimate on a busy machine), ``imgs_per_sec`` (from the mean),
        ``peak_mem_mib``, ``mem_before_mib`` (the same measure before the
        first iteration), ``syncs_per_iter`` (see :func:`count_syncs`, one
        untimed iteration), ``params_m`` and ``trainable_params_m``
        (millions).
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = build_model(cfg, args.device)
    optim_cfg = cfg.optim_wrapper
    if amp:
        optim_cfg = amp_optim_wrapper_cfg(optim_cfg, args.device)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    next_batch = batch_maker(cfg, model, args)

    reset_peak_memory(args.device)
    mem_before = peak_memory(args.device)
    time_iterations(model, optim_wrapper, next_batch, args.warmup, args.device)
    seconds = time_iterations(model, optim_wrapper, next_batch, args.iters,
                              args.device)
    peak = peak_memory(args.device)
    with count_syncs(args.device) as syncs:
        time_iterations(model, optim_wrapper, next_batch, 1, args.device)
    return dict(
        summarise(seconds, args.batch_size),
        peak_mem_mib=peak,
        mem_before_mib=mem_before,
        syncs_per_iter=syncs['total'],
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        trainable_params_m=sum(
            p.numel() for p in model.parameters() if p.requires_grad) / 1e6)


def _model_shape(cfg: Config) -> dict:
    """The reference builder's arguments for the config's model."""
    model = cfg.model
    layer = model.encoder.layer_cfg
    patch_cfg = _find_transform(
        cfg.get('train_dataloader'), 'QueryPatchTransform') or {}
    return dict(
        num_queries=model.num_queries,
        num_patches=model.num_patches,
        hidden_dim=layer.self_attn_cfg.embed_dims,
        nheads=layer.self_attn_cfg.num_heads,
        enc_layers=model.encoder.num_layers,
        dec_layers=model.decoder.num_layers,
        dim_feedforward=layer.ffn_cfg.feedforward_channels,
        depth=model.backbone.depth,
        patch_size=patch_cfg.get('patch_size', 128))


def benchmark_reference(cfg: Config,
                        args: argparse.Namespace) -> Dict[str, float]:
    """Time the reference re-implementation's training step at the
    config's shape (float32; see the module's docstring).

    Returns:
        dict[str, float]: As :func:`benchmark`'s (``syncs_per_iter``
        counted the same way).
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.reference import updetr_reference as ref
    except ImportError as err:
        raise ImportError(
            f'--reference needs {REPO_ROOT}/tests/reference (a source '
            f'checkout of mmdet-updetr): {err}') from None
    shape = _model_shape(cfg)
    patch_size = shape.pop('patch_size')
    torch.manual_seed(args.seed)
    model, criterion = ref.build_reference(**shape)
    model.to(args.device).train()
    criterion.to(args.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    height, width = args.img_size
    num_patches, bs = shape['num_patches'], args.batch_size

    def step() -> float:
        samples = ref.nested_tensor_from_tensor_list(
            list(torch.randn(bs, 3, height, width, device=args.device)))
        samples.mask = samples.mask.to(args.device)
        patches = torch.randn(
            bs, num_patches, 3, patch_size, patch_size, device=args.device)
        targets = [
            dict(
                labels=torch.ones(num_patches, dtype=torch.long),
                boxes=torch.rand(num_patches, 4) * 0.5 + 0.25)
            for _ in range(bs)
        ]
        sync(args.device)
        start = time.perf_counter()
        loss_dict = criterion(model(samples, patches), targets)
        # Keys 'loss_ce' (last layer) and 'loss_ce_<i>' (auxiliary ones).
        loss = sum(
            value *
            ref.LOSS_WEIGHTS[key if key in
                             ref.LOSS_WEIGHTS else key.rsplit('_', 1)[0]]
            for key, value in loss_dict.items())
        loss_value = loss.item()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        sync(args.device)
        if not math.isfinite(loss_value):
            raise FloatingPointError(f'loss is {loss_value}')
        return time.perf_counter() - start

    reset_peak_memory(args.device)
    mem_before = peak_memory(args.device)
    for _ in range(args.warmup):
        step()
    seconds = [step() for _ in range(args.iters)]
    peak = peak_memory(args.device)
    with count_syncs(args.device) as syncs:
        step()
    return dict(
        summarise(seconds, bs),
        peak_mem_mib=peak,
        mem_before_mib=mem_before,
        syncs_per_iter=syncs['total'],
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        trainable_params_m=sum(p.numel() for p in params) / 1e6)


def print_table(cfg: Config, args: argparse.Namespace,
                runs: Dict[str, Dict[str, float]]) -> None:
    """Print the settings, then the figures of each run side by side."""
    device = args.device
    if device == 'cpu':
        device += f' ({torch.get_num_threads()} threads)'
    model = cfg.model
    shape = (f'{model.num_patches} / {model.num_queries}'
             if is_pretrain(cfg) else f'- / {model.num_queries}')
    first = next(iter(runs.values()))
    settings = [
        ('config', args.config),
        ('device', device),
        ('batch size', args.batch_size),
        ('image size (h x w)', '{} x {}'.format(*args.img_size)),
        ('query patches M / queries N', shape),
        ('parameters (trainable)', f'{first["params_m"]:.2f} M '
         f'({first["trainable_params_m"]:.2f} M)'),
        ('timed iterations (warm-up)', f'{args.iters} ({args.warmup})'),
        ('memory measure', 'CUDA max allocated'
         if args.device == 'cuda' else 'peak RSS (process)'),
        ('syncs / iteration', 'CUDA sync debug mode'
         if args.device == 'cuda' else 'sync-type calls (upper bound)'),
    ]
    anchor = runs.get('reference (re-impl.)')

    def cells(res: Dict[str, float]) -> List[str]:
        row = [
            f'{res["sec_per_iter"]:.3f}', f'{res["sec_per_iter_std"]:.3f}',
            f'{res["sec_per_iter_min"]:.3f}', f'{res["imgs_per_sec"]:.2f}',
            f'{res["mem_before_mib"]:.0f}', f'{res["peak_mem_mib"]:.0f}',
            f'{res["syncs_per_iter"]:.0f}'
        ]
        if anchor is not None:
            row.append(f'{res["sec_per_iter"] / anchor["sec_per_iter"]:.2f}x')
        return row

    names = [
        's / iteration (mean)', '  std', '  min', 'images / s',
        'memory before (MiB)', 'peak memory (MiB)', 'syncs / iteration'
    ]
    if anchor is not None:
        names.append('time vs reference')
    table = [['', *runs]] + [[
        name, *col
    ] for name, *col in zip(names, *[cells(res) for res in runs.values()])]
    width = max(len(name) for name, _ in settings)
    for name, value in settings:
        print(f'{name:<{width}} | {value}')
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    line = '-' * (sum(widths) + 3 * (len(widths) - 1))
    print(line)
    for row in table:
        print(' | '.join(f'{c:<{w}}' for c, w in zip(row, widths)))
    print(line)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    """Run the benchmark; returns the figures of :func:`benchmark` per run
    (``'fp32'``, ``'amp'`` with ``--amp``, ``'reference (re-impl.)'`` with
    ``--reference``)."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.img_size is None:
        args.img_size = PRETRAIN_SIZE if is_pretrain(cfg) else FINETUNE_SIZE
    if args.reference and (not is_pretrain(cfg) or args.device != 'cpu'):
        raise ValueError('--reference times the pre-training step on the '
                         'CPU (the re-implementation keeps its targets '
                         'there): give a pre-training config and --device '
                         f'cpu, not {args.config} on {args.device}')
    runs = {'fp32': benchmark(cfg, args)}
    if args.amp:
        runs['amp'] = benchmark(cfg, args, amp=True)
    if args.reference:
        runs['reference (re-impl.)'] = benchmark_reference(cfg, args)
    print_table(cfg, args, runs)
    return runs


if __name__ == '__main__':
    main()
