# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""A tiny COCO-panoptic dataset and tiny panoptic configs, for CPU tests.

Each image has two stuff regions ("sky" above, "grass" below, at a random
height) and one or two things ("ball", "box": filled rectangles), each
class in its own colour. The layout is COCO panoptic's, which mmdet's
``CocoPanopticDataset`` and ``CocoPanopticMetric`` read unchanged::

    <root>/<split>/<name>.jpg
    <root>/annotations/panoptic_<split>/<name>.png   (RGB-encoded ids)
    <root>/annotations/panoptic_<split>.json
"""
import json
import os.path as osp
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
from mmengine.config import Config
from panopticapi.utils import id2rgb

from ._utils import get_tiny_cfg

#: Two things and two stuff classes with COCO-like (gapped) category ids.
TINY_PANOPTIC_CATEGORIES: List[dict] = [
    dict(id=1, name='ball', isthing=1, supercategory='thing'),
    dict(id=3, name='box', isthing=1, supercategory='thing'),
    dict(id=92, name='sky', isthing=0, supercategory='stuff'),
    dict(id=95, name='grass', isthing=0, supercategory='stuff'),
]
TINY_PANOPTIC_METAINFO = dict(
    classes=('ball', 'box', 'sky', 'grass'),
    thing_classes=('ball', 'box'),
    stuff_classes=('sky', 'grass'),
    palette=[(220, 20, 60), (0, 0, 142), (70, 130, 180), (152, 251, 152)])
_COLOURS = {
    1: (60, 20, 220),
    3: (142, 0, 0),
    92: (180, 130, 70),
    95: (152, 251, 152)
}  # BGR


def _draw_image(rng: np.random.RandomState, height: int, width: int) -> tuple:
    """An image, its panoptic id map and its segments_info."""
    ids = np.zeros((height, width), np.int64)
    horizon = int(rng.randint(height // 3, 2 * height // 3))
    ids[:horizon], ids[horizon:] = 92, 95  # stuff segment id = category id
    segments = {92: 92, 95: 95}
    for k in range(int(rng.randint(1, 3))):
        category = (1, 3)[k]
        w, h = rng.randint(width // 5,
                           width // 2), rng.randint(height // 5, height // 2)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        ids[y:y + h, x:x + w] = 1000 + k
        segments[1000 + k] = category
    img = np.zeros((height, width, 3), np.uint8)
    segments_info = []
    for seg_id, category in segments.items():
        mask = ids == seg_id
        if not mask.any():
            continue
        img[mask] = _COLOURS[category]
        ys, xs = np.nonzero(mask)
        x1, y1 = int(xs.min()), int(ys.min())
        segments_info.append(
            dict(
                id=seg_id,
                category_id=category,
                iscrowd=0,
                area=int(mask.sum()),
                bbox=[x1, y1,
                      int(xs.max()) + 1 - x1,
                      int(ys.max()) + 1 - y1]))
    noise = rng.randint(-10, 11, img.shape)
    img = np.clip(img.astype(np.int64) + noise, 0, 255).astype(np.uint8)
    return img, ids, segments_info


def write_tiny_coco_panoptic(root: str,
                             num_train: int = 4,
                             num_val: int = 2,
                             sizes=((64, 96), (80, 64)),
                             seed: int = 0) -> Dict[str, str]:
    """Write a tiny COCO-panoptic dataset under ``root``.

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 4.
        num_val (int): Validation images. Defaults to 2.
        sizes: (height, width) of the images, used in turn, so batches
            need padding. Defaults to ((64, 96), (80, 64)).
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict[str, str]: ``root`` and, per split, the json file and the
        folder of PNG maps (``train_json``, ``train_seg``, ``val_json``,
        ``val_seg``).
    """
    rng = np.random.RandomState(seed)
    paths = dict(root=str(root))
    image_id = 0
    for split, num in (('train', num_train), ('val', num_val)):
        seg_dir = Path(root, 'annotations', f'panoptic_{split}')
        seg_dir.mkdir(parents=True, exist_ok=True)
        Path(root, split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(num):
            image_id += 1
            height, width = sizes[i % len(sizes)]
            img, ids, segments_info = _draw_image(rng, height, width)
            name = f'{image_id:06d}'
            cv2.imwrite(osp.join(root, split, name + '.jpg'), img)
            cv2.imwrite(
                str(seg_dir / f'{name}.png'),
                id2rgb(ids).astype(np.uint8)[..., ::-1])
            images.append(
                dict(
                    id=image_id,
                    file_name=name + '.jpg',
                    height=height,
                    width=width))
            annotations.append(
                dict(
                    image_id=image_id,
                    file_name=name + '.png',
                    segments_info=segments_info))
        json_path = osp.join(root, 'annotations', f'panoptic_{split}.json')
        with open(json_path, 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=TINY_PANOPTIC_CATEGORIES), f)
        paths[f'{split}_json'] = json_path
        paths[f'{split}_seg'] = str(seg_dir)
    return paths


def _tiny_panoptic_pipelines(train: bool) -> list:
    """Small fixed-size pipelines for the tiny set."""
    load = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations', with_mask=True, with_seg=True)
    ]
    resize = dict(type='Resize', scale=(96, 80), keep_ratio=True)
    if train:
        return load + [
            dict(type='RandomFlip', prob=0.5), resize,
            dict(type='PanopticStuffToInstances', num_things_classes=2),
            dict(type='PackDetInputs')
        ]
    return load + [
        resize,
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'instances'))
    ]


def _tiny_panoptic_data(cfg: Config, paths: Dict[str, str]) -> None:
    """Point the config's data and metrics at the tiny set."""
    for split in ('train', 'val', 'test'):
        part = 'train' if split == 'train' else 'val'
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.pop('batch_sampler', None)
        loader.dataset.update(
            data_root=paths['root'],
            ann_file=f'annotations/panoptic_{part}.json',
            data_prefix=dict(
                img=f'{part}/', seg=f'annotations/panoptic_{part}/'),
            metainfo=TINY_PANOPTIC_METAINFO,
            pipeline=_tiny_panoptic_pipelines(split == 'train'))
    for split in ('val', 'test'):
        evaluator = cfg[f'{split}_evaluator']
        if evaluator.type == 'CocoPanopticMetric':
            evaluator.update(
                ann_file=paths['val_json'],
                seg_prefix=paths['val_seg'],
                nproc=1)


def tiny_panoptic_model_cfg(model: Config,
                            num_things_classes: int = 2,
                            num_stuff_classes: int = 2) -> Config:
    """Fit a ``tiny_model_cfg``-shrunk panoptic model (changed in place).

    No init_cfg; the classes; and for a ``PanopticDETRHead``: 2 heads
    (as the tiny transformer), ResNet-18's stride-16/8/4 channels (256, 128,
    64), GroupNorm with 2 groups (the tiny widths are not multiples of 8).

    Returns:
        :obj:`ConfigDict`: ``model``.
    """
    model.update(init_cfg=None)
    model.bbox_head.num_classes = num_things_classes + num_stuff_classes
    if model.bbox_head.type == 'PanopticDETRHead':
        model.bbox_head.update(
            num_heads=2,
            fpn_channels=(256, 128, 64),
            mask_norm_cfg=dict(type='GN', num_groups=2))
        model.panoptic_fusion_head.update(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes)
    return model


def tiny_panoptic_cfg(name: str, paths: Dict[str, str], work_dir: str,
                      **kwargs) -> Config:
    """A panoptic config of ours, tiny and reading the tiny set.

    ResNet-18 (stride-16/8/4 channels 256, 128, 64), width 32, 2 heads,
    GroupNorm with 2 groups in the mask head, 4 classes (2 things + 2
    stuff), 1 epoch, no checkpoint loading.

    Args:
        name (str): Config path relative to ``configs/``.
        paths (dict[str, str]): From :func:`write_tiny_coco_panoptic`.
        work_dir (str): The run's work_dir.
        **kwargs: Passed to :func:`tiny_model_cfg`.

    Returns:
        :obj:`Config`: The config.
    """
    cfg = get_tiny_cfg(name, **kwargs)
    tiny_panoptic_model_cfg(cfg.model)
    _tiny_panoptic_data(cfg, paths)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.load_from = None
    cfg.work_dir = work_dir
    cfg.default_hooks.update(
        logger=dict(type='LoggerHook', interval=1),
        checkpoint=dict(type='CheckpointHook', interval=1))
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg
