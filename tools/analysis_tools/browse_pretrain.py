"""See what UP-DETR's pre-training asks the model to find.

For the first ``--num`` samples of a config's train dataset, saves a PNG with
the image as the model gets it (resized) and its M query boxes numbered, and
beside it the M query patches after the data preprocessor's augmentation
(de-normalised), each framed and numbered like its box.

Example::

    python tools/analysis_tools/browse_pretrain.py \
        configs/updetr/pretrain_demo_cpu.py --output-dir work_dirs/browse
"""
import argparse
import colorsys
import math
import os
import os.path as osp
from typing import List, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

PATCH_GAP = 4
DEFAULT_PREPROCESSOR = dict(
    type='UPDETRDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Save images with their query boxes and the augmented '
        'query patches of UP-DETR pre-training')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir',
        default='work_dirs/browse_pretrain',
        help='folder for the PNG files')
    parser.add_argument(
        '--num', type=int, default=8, help='number of samples to save')
    parser.add_argument(
        '--seed', type=int, default=0, help='numpy seed of the draws')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    return parser.parse_args()


def build_dataset_and_preprocessor(cfg: Config) -> Tuple[object, object]:
    """Build the config's train dataset and data preprocessor."""
    from mmdet.registry import DATASETS, MODELS

    import mmdet_updetr  # noqa: F401
    import mmdet_updetr.datasets  # noqa: F401
    import mmdet_updetr.models.data_preprocessors  # noqa: F401
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    model_cfg = cfg.get('model') or {}
    preprocessor = MODELS.build(
        model_cfg.get('data_preprocessor') or DEFAULT_PREPROCESSOR)
    return dataset, preprocessor


def palette(num: int) -> List[Tuple[int, int, int]]:
    """``num`` distinct saturated BGR colours."""
    colours = []
    for i in range(num):
        r, g, b = colorsys.hsv_to_rgb(i / max(num, 1), 0.9, 1.0)
        colours.append((int(b * 255), int(g * 255), int(r * 255)))
    return colours


def label(img: np.ndarray, text: str, org: Tuple[int, int],
          colour: Tuple[int, int, int]) -> None:
    """Write ``text`` with a dark outline at ``org`` (bottom-left)."""
    for thickness, col in ((3, (0, 0, 0)), (1, colour)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, col,
                    thickness, cv2.LINE_AA)


def draw_boxes(img: np.ndarray, boxes: np.ndarray,
               colours: List[Tuple[int, int, int]]) -> np.ndarray:
    """Draw numbered boxes (absolute xyxy) on a BGR image."""
    img = img.copy()
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().astype(int)):
        cv2.rectangle(img, (x1, y1), (x2, y2), colours[i], 2)
        label(img, str(i), (x1 + 3, y1 + 15), colours[i])
    return img


def denormalise_patches(patches: torch.Tensor, preprocessor) -> np.ndarray:
    """Preprocessed patches (M, 3, h, w) -> BGR uint8 (M, h, w, 3)."""
    patches = patches.detach().float().cpu()
    if preprocessor._enable_normalize:
        patches = patches * preprocessor.std.cpu() + preprocessor.mean.cpu()
    patches = patches.clamp(0, 255).round().byte().permute(0, 2, 3, 1)
    patches = patches.numpy()
    if preprocessor._patches_out_rgb:
        patches = patches[..., ::-1]
    return np.ascontiguousarray(patches)


def compose(img: np.ndarray, patches: np.ndarray,
            colours: List[Tuple[int, int, int]]) -> np.ndarray:
    """Put the framed, numbered patches in a grid right of the image."""
    num, height, width = patches.shape[:3]
    cell_h, cell_w = height + PATCH_GAP, width + PATCH_GAP
    rows = max(1, min(num, img.shape[0] // cell_h))
    cols = math.ceil(num / rows)
    canvas = np.full(
        (max(img.shape[0],
             rows * cell_h), img.shape[1] + cols * cell_w + PATCH_GAP, 3),
        255,
        dtype=np.uint8)
    canvas[:img.shape[0], :img.shape[1]] = img
    for i, patch in enumerate(patches):
        y = (i % rows) * cell_h + PATCH_GAP // 2
        x = img.shape[1] + PATCH_GAP + (i // rows) * cell_w
        canvas[y:y + height, x:x + width] = patch
        cv2.rectangle(canvas, (x, y), (x + width - 1, y + height - 1),
                      colours[i], 2)
        label(canvas, str(i), (x + 4, y + 16), colours[i])
    return canvas


def render(data: dict, preprocessor) -> np.ndarray:
    """The picture of one sample of the dataset."""
    batch = preprocessor(pseudo_collate([data]), training=True)
    sample = batch['data_samples'][0]
    img = data['inputs'].permute(1, 2, 0).numpy()  # as loaded: BGR
    boxes = sample.gt_instances.bboxes
    boxes = getattr(boxes, 'tensor', boxes).cpu().numpy()
    patches = denormalise_patches(sample.query_patches, preprocessor)
    colours = palette(len(patches))
    return compose(draw_boxes(img, boxes, colours), patches, colours)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    dataset, preprocessor = build_dataset_and_preprocessor(cfg)
    os.makedirs(args.output_dir, exist_ok=True)
    np.random.seed(args.seed)
    for idx in range(min(args.num, len(dataset))):
        data = dataset[idx]
        picture = render(data, preprocessor)
        name = osp.splitext(osp.basename(data['data_samples'].img_path))[0]
        out_file = osp.join(args.output_dir, f'{idx:04d}_{name}.png')
        cv2.imwrite(out_file, picture)
        print(f'saved {out_file}')


if __name__ == '__main__':
    main()
