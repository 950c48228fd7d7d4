"""Tiny fine-tuning runs for Runner tests (a few 2-image iterations)."""
import json
import os.path as osp
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mmdet_updetr.testing import get_tiny_cfg, write_tiny_voc


def small_scales(pipeline: list) -> None:
    """Keep DETR's augmentation, at the tiny images' scale (in place)."""
    for transform in pipeline:
        if transform.type == 'RandomChoice':
            small_scales(sum(transform.transforms, []))
        elif transform.type == 'RandomChoiceResize':
            transform.scales = [(64, 160), (96, 160)]
        elif transform.type == 'RandomCrop':
            transform.crop_size = (48, 80)
        elif transform.type == 'Resize':
            transform.scale = (160, 96)


def tiny_finetune_cfg(tmp_path, checkpoint: str, config: str):
    """``configs/<config>`` shrunk, for one epoch of 2-image batches from
    ``checkpoint``; its data must be pointed somewhere by the caller."""
    cfg = get_tiny_cfg(config)
    cfg.model.init_cfg.checkpoint = checkpoint
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader = cfg.test_dataloader
    cfg.train_cfg.update(max_epochs=1, val_interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = osp.join(tmp_path, 'work_dir')
    return cfg


def tiny_voc_finetune_cfg(tmp_path, checkpoint: str):
    """``finetune_voc0712_150e.py`` on a tiny VOC2007 set (4 + 2 images)."""
    root = osp.join(tmp_path, 'VOCdevkit')
    write_tiny_voc(root, num_trainval=4, num_test=2)
    cfg = tiny_finetune_cfg(tmp_path, checkpoint,
                            'updetr/finetune_voc0712_150e.py')
    train_set = cfg.train_dataloader.dataset.datasets[0]  # VOC2007 only
    cfg.train_dataloader.dataset = train_set
    for dataset in (train_set, cfg.test_dataloader.dataset):
        dataset.data_root = root
        small_scales(dataset.pipeline)
    return cfg


def write_tiny_coco(root: str,
                    classes: Sequence[str],
                    num_images: int = 4,
                    img_size=(96, 128),
                    seed: int = 0) -> None:
    """Write ``annotations/{train,val}.json`` and ``images/{train,val}/``.

    Each image has one or two filled rectangles; category ids are 2, 4, ...
    (not 0-based and with gaps, as real COCO files may be).
    """
    rng = np.random.RandomState(seed)
    height, width = img_size
    categories = [
        dict(id=2 * (i + 1), name=name) for i, name in enumerate(classes)
    ]
    for split in ('train', 'val'):
        folder = Path(root, 'images', split)
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(num_images):
            name = f'{split}_{i}.jpg'
            img = rng.randint(0, 40, (height, width, 3)).astype(np.uint8)
            for _ in range(rng.randint(1, 3)):
                w, h = rng.randint(20, 60), rng.randint(20, 45)
                x, y = rng.randint(0, width - w), rng.randint(0, height - h)
                cat = categories[rng.randint(len(categories))]
                img[y:y + h, x:x + w] = 60 + 60 * cat['id'] // 2
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i + 1,
                        category_id=cat['id'],
                        bbox=[int(x), int(y), int(w),
                              int(h)],
                        area=int(w * h),
                        iscrowd=0))
            cv2.imwrite(str(folder / name), img)
            images.append(
                dict(id=i + 1, file_name=name, width=width, height=height))
        Path(root, 'annotations').mkdir(exist_ok=True)
        Path(root, 'annotations', f'{split}.json').write_text(
            json.dumps(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=categories)))
