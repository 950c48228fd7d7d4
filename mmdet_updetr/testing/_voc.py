# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""A tiny PASCAL VOC-format dataset, written for tests on a CPU.

Each image is a noisy background with a few filled rectangles; every class
has its own colour, so a tiny model can learn something in a few steps and
a test can check boxes exactly. The layout is VOC's, so mmdet's
``VOCDataset`` reads it unchanged::

    <root>/VOC2007/JPEGImages/<id>.jpg
    <root>/VOC2007/Annotations/<id>.xml
    <root>/VOC2007/ImageSets/Main/{trainval,test}.txt
"""
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.datasets import VOCDataset

VOC_CLASSES: Tuple[str, ...] = VOCDataset.METAINFO['classes']

Box = Tuple[str, int, int, int, int, int]  # class, x1, y1, x2, y2, difficult


def class_colour(name: str) -> Tuple[int, int, int]:
    """A fixed BGR colour for a VOC class."""
    index = VOC_CLASSES.index(name)
    rng = np.random.RandomState(index + 1)
    return tuple(int(c) for c in rng.randint(40, 256, size=3))


def _xml(image_id: str, width: int, height: int, boxes: List[Box]) -> str:
    objects = ''.join(
        f'<object><name>{name}</name><pose>Unspecified</pose>'
        f'<truncated>0</truncated><difficult>{difficult}</difficult>'
        f'<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>'
        f'<ymax>{y2}</ymax></bndbox></object>'
        for name, x1, y1, x2, y2, difficult in boxes)
    return (f'<annotation><folder>VOC2007</folder>'
            f'<filename>{image_id}.jpg</filename><size><width>{width}'
            f'</width><height>{height}</height><depth>3</depth></size>'
            f'{objects}</annotation>')


def _random_boxes(rng: np.random.RandomState, classes: Sequence[str],
                  width: int, height: int, max_objects: int) -> List[Box]:
    boxes = []
    for _ in range(rng.randint(1, max_objects + 1)):
        w = int(rng.randint(width // 5, width // 2))
        h = int(rng.randint(height // 5, height // 2))
        x1 = int(rng.randint(1, width - w))
        y1 = int(rng.randint(1, height - h))
        name = classes[rng.randint(len(classes))]
        boxes.append((name, x1, y1, x1 + w, y1 + h, 0))
    return boxes


def write_tiny_voc(root: str,
                   num_trainval: int = 8,
                   num_test: int = 4,
                   classes: Optional[Sequence[str]] = None,
                   img_size: Tuple[int, int] = (96, 128),
                   max_objects: int = 3,
                   seed: int = 0) -> Dict[str, List[Box]]:
    """Write a tiny VOC2007-format dataset under ``root``.

    Args:
        root (str): The ``VOCdevkit`` folder to write into.
        num_trainval (int): Images in ``trainval.txt``. Defaults to 8.
        num_test (int): Images in ``test.txt``. Defaults to 4.
        classes (Sequence[str], optional): VOC class names to draw from.
            Defaults to all 20.
        img_size (tuple[int, int]): ``(height, width)``. Defaults to
            (96, 128).
        max_objects (int): At most this many boxes per image (at least one).
            Defaults to 3.
        seed (int): Seed of the layout. Defaults to 0.

    Returns:
        dict[str, list]: Image id -> its boxes ``(class, x1, y1, x2, y2,
        difficult)`` in VOC's 1-based pixel coordinates, as written.
    """
    classes = list(classes or VOC_CLASSES)
    rng = np.random.RandomState(seed)
    height, width = img_size
    year = Path(root) / 'VOC2007'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (year / sub).mkdir(parents=True, exist_ok=True)
    written = {}
    splits = {'trainval': [], 'test': []}
    for i in range(num_trainval + num_test):
        image_id = f'{i:06d}'
        boxes = _random_boxes(rng, classes, width, height, max_objects)
        img = rng.randint(0, 40, size=(height, width, 3)).astype(np.uint8)
        for name, x1, y1, x2, y2, _ in boxes:
            img[y1 - 1:y2, x1 - 1:x2] = class_colour(name)
        cv2.imwrite(osp.join(year, 'JPEGImages', f'{image_id}.jpg'), img)
        (year / 'Annotations' / f'{image_id}.xml').write_text(
            _xml(image_id, width, height, boxes))
        splits['trainval' if i < num_trainval else 'test'].append(image_id)
        written[image_id] = boxes
    for split, ids in splits.items():
        (year / 'ImageSets' / 'Main' / f'{split}.txt').write_text(''.join(
            f'{image_id}\n' for image_id in ids))
    return written
