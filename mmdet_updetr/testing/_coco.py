# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""A tiny COCO-format detection dataset, written for tests on a CPU::

    <root>/images/{train,val}/<split>_<i>.jpg
    <root>/annotations/{train,val}.json
"""
import json
from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np


def write_tiny_coco(root: str,
                    classes: Sequence[str],
                    num_images: int = 4,
                    img_size: Tuple[int, int] = (96, 128),
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
