"""Measure the speed of UP-DETR's pre-training data, for one worker.

Times the listing of the configured folder (building the train dataset), the
dataset pipeline (loading, query patches, resize, packing) per image and the
data preprocessor (batching, patch augmentation, normalisation) per batch,
on the chosen device, then prints images/s. A data loader with ``W``
workers delivers up to ``W`` times the pipeline figure.

Example::

    python tools/analysis_tools/benchmark_pretrain_data.py \
        configs/updetr/pretrain_in1k.py --num-images 500 --device cuda
"""
import argparse
import time
from typing import List

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the UP-DETR pre-training data pipeline')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--num-images', type=int, default=200, help='images to process')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='preprocessor batch size (default: the config\'s)')
    parser.add_argument(
        '--device', default='cpu', help='device of the preprocessor')
    parser.add_argument(
        '--warmup', type=int, default=5, help='images not timed at start')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch threads (default: torch\'s choice)')
    parser.add_argument('--seed', type=int, default=0, help='numpy seed')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    return parser.parse_args()


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings are then exact)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def build(cfg: Config, device: str):
    """Build the train dataset (timed) and the data preprocessor."""
    from mmdet.registry import DATASETS, MODELS

    import mmdet_updetr  # noqa: F401
    import mmdet_updetr.datasets  # noqa: F401
    import mmdet_updetr.models.data_preprocessors  # noqa: F401
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    start = time.perf_counter()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    seconds = time.perf_counter() - start
    print(f'dataset: {len(dataset)} images listed in {seconds:.2f} s '
          f'({len(dataset) / seconds:,.0f} files/s, '
          f'{type(dataset).__name__})')
    model_cfg = cfg.get('model') or {}
    preprocessor_cfg = model_cfg.get('data_preprocessor') or dict(
        type='UPDETRDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True)
    return dataset, MODELS.build(preprocessor_cfg).to(device)


def run(dataset, preprocessor, num_images: int, batch_size: int,
        warmup: int) -> List[float]:
    """Process images; return the seconds spent in pipeline and
    preprocessor on the timed images."""
    device = preprocessor.device
    pipeline_s = preprocess_s = 0.0
    batch: list = []
    for i in range(warmup + num_images):
        start = time.perf_counter()
        batch.append(dataset[i % len(dataset)])
        if i >= warmup:
            pipeline_s += time.perf_counter() - start
        if len(batch) == batch_size or i == warmup + num_images - 1:
            sync(device)
            start = time.perf_counter()
            preprocessor(pseudo_collate(batch), training=True)
            sync(device)
            if i >= warmup:
                preprocess_s += time.perf_counter() - start
            batch = []
    return [pipeline_s, preprocess_s]


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    dataset, preprocessor = build(cfg, args.device)
    batch_size = args.batch_size or cfg.train_dataloader.batch_size
    np.random.seed(args.seed)
    pipeline_s, preprocess_s = run(dataset, preprocessor, args.num_images,
                                   batch_size, args.warmup)
    num = args.num_images
    print(f'images: {num} (after {args.warmup} warm-up), batch size '
          f'{batch_size}, preprocessor on {preprocessor.device}, '
          f'{torch.get_num_threads()} torch threads')
    print(f'pipeline (one worker): {num / pipeline_s:8.1f} images/s')
    print(f'preprocessor:          {num / preprocess_s:8.1f} images/s')
    print(f'both in series:        {num / (pipeline_s + preprocess_s):8.1f} '
          'images/s')


if __name__ == '__main__':
    main()
