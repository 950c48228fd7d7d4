# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Draw UP-DETR's query-patch detection, like the paper's Fig. 7.

Crops query patches from an image (no augmentation), asks a pre-trained
UP-DETR model to find them, and saves the image with each patch's best
predicted box and match score (solid) and the true crop (thin), beside the
patches themselves in the same colours::

    python demo/query_patch_demo.py CONFIG CHECKPOINT [--img IMG] \
        [--num-patches K] [--out query_patch_detection.png]
"""
import argparse
import os.path as osp

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

import mmdet_updetr  # noqa: F401
from mmdet_updetr.datasets.demo_photos import write_demo_photos
from mmdet_updetr.engine import enable_safe_checkpoints

COLORS = [(0, 0, 255), (0, 200, 0), (255, 0, 0), (0, 200, 255), (255, 0, 255),
          (255, 255, 0), (0, 128, 255), (128, 0, 255), (128, 255, 0),
          (255, 128, 0)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='pre-training config file')
    parser.add_argument('checkpoint', help='pre-training checkpoint')
    parser.add_argument(
        '--img', help='image file (default: a built-in demo photo)')
    parser.add_argument('--num-patches', type=int, help='k <= M patches')
    parser.add_argument('--seed', type=int, default=0, help='crop seed')
    parser.add_argument('--out', default='query_patch_detection.png')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args()


def load_model(config: str, checkpoint: str, device: str):
    """The pre-training model with the checkpoint's weights, in eval mode.

    (mmdet's ``init_detector`` wants a test dataloader, which pre-training
    configs do not have.)
    """
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # the checkpoint has the weights
    model = MODELS.build(cfg.model)
    enable_safe_checkpoints()  # our checkpoints load with weights_only
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.cfg = cfg
    return model.to(device).eval()


def build_pipeline(cfg, num_patches: int) -> Compose:
    """Test-time pipeline: crops without augmentation, the largest scale."""
    train = cfg.train_dataloader.dataset.pipeline
    patch_cfg = next(t for t in train if t['type'] == 'QueryPatchTransform')
    resize = next(t for t in train if 'Resize' in t['type'])
    scale = max(resize.get('scales', [resize.get('scale')]))
    return Compose([
        dict(type='SafeLoadImageFromFile'),
        dict(
            type='QueryPatchTransform',
            num_patches=num_patches,
            patch_size=patch_cfg.get('patch_size', 128),
            augment=False),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='PackUPDETRInputs')
    ])


def draw(img: np.ndarray, patches: np.ndarray, pred, gt_boxes: np.ndarray):
    """Image with predicted (thick) and true (thin) boxes, patches beside."""
    img = img.copy()
    for i, (box, score) in enumerate(zip(pred.bboxes, pred.scores)):
        color = COLORS[i % len(COLORS)]
        x1, y1, x2, y2 = (int(v) for v in gt_boxes[i])
        cv2.rectangle(img, (x1, y1), (x2, y2), color, 1)
        x1, y1, x2, y2 = (int(v) for v in box.tolist())
        cv2.rectangle(img, (x1, y1), (x2, y2), color, 3)
        cv2.putText(img, f'{i}: {score:.2f}', (x1 + 3, max(y1 + 16, 16)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 2)
    side = img.shape[0] // max(len(patches), 1)
    column = np.full((img.shape[0], side, 3), 255, np.uint8)
    for i, patch in enumerate(patches):
        tile = cv2.resize(patch.transpose(1, 2, 0), (side - 8, side - 8))
        tile = cv2.copyMakeBorder(
            tile,
            4,
            4,
            4,
            4,
            cv2.BORDER_CONSTANT,
            value=COLORS[i % len(COLORS)])
        column[i * side:(i + 1) * side] = tile
    return np.concatenate([img, column], axis=1)


def main() -> None:
    args = parse_args()
    register_all_modules()
    model = load_model(args.config, args.checkpoint, args.device)
    img_path = args.img or write_demo_photos('data/demo_photos')[0]
    num_patches = args.num_patches or model.num_patches
    pipeline = build_pipeline(model.cfg, num_patches)
    np.random.seed(args.seed)
    data = pipeline(dict(img_path=img_path, img_id=0))
    result = model.test_step(pseudo_collate([data]))[0]
    sample = data['data_samples']
    scale = np.tile(np.array(sample.scale_factor), 2)
    gt_boxes = sample.gt_instances.bboxes.numpy() / scale
    canvas = draw(
        cv2.imread(img_path), sample.query_patches.numpy(),
        result.pred_group_instances.cpu(), gt_boxes)
    cv2.imwrite(args.out, canvas)
    print(f'query-patch detection of {osp.basename(img_path)} with '
          f'{num_patches} patches saved to {args.out}')


if __name__ == '__main__':
    main()
