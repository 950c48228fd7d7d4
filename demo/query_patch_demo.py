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
from mmdet_updetr.visualization import draw_query_patch_detection


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
    pred = result.pred_group_instances.detach().cpu()
    canvas = draw_query_patch_detection(
        cv2.imread(img_path, cv2.IMREAD_COLOR), pred.bboxes.numpy(),
        pred.scores.tolist(), gt_boxes,
        sample.query_patches.numpy().transpose(0, 2, 3, 1))
    cv2.imwrite(args.out, canvas)
    print(f'query-patch detection of {osp.basename(img_path)} with '
          f'{num_patches} patches saved to {args.out}')


if __name__ == '__main__':
    main()
