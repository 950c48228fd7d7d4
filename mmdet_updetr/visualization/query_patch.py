# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""The picture of UP-DETR's query-patch detection, like the paper's Fig. 7.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

#: One BGR colour per query patch (patch ``i`` gets ``i % 10``).
PATCH_COLORS = ((0, 0, 255), (0, 200, 0), (255, 0, 0), (0, 200, 255),
                (255, 0, 255), (255, 255, 0), (0, 128, 255), (128, 0, 255),
                (128, 255, 0), (255, 128, 0))

#: Line width of the predicted boxes (the true boxes are 1 pixel wide).
PRED_THICKNESS = 3


def _patch_column(patches: np.ndarray, height: int) -> np.ndarray:
    """The patches stacked in a white column, each framed in its colour."""
    side = height // max(len(patches), 1)
    column = np.full((height, side, 3), 255, np.uint8)
    if side <= 8:
        return column
    for i, patch in enumerate(patches):
        tile = cv2.resize(np.ascontiguousarray(patch), (side - 8, side - 8))
        column[i * side:(i + 1) * side] = cv2.copyMakeBorder(
            tile,
            4,
            4,
            4,
            4,
            cv2.BORDER_CONSTANT,
            value=PATCH_COLORS[i % len(PATCH_COLORS)])
    return column


def draw_query_patch_detection(
        img: np.ndarray,
        pred_bboxes: np.ndarray,
        pred_scores: Sequence[float],
        gt_bboxes: np.ndarray,
        patches: Optional[np.ndarray] = None) -> np.ndarray:
    """Each patch's best predicted box and its true box, patches beside.

    Patch ``i``'s true box (thin, 1 px), its group's best box (thick,
    :data:`PRED_THICKNESS` px) with ``i: score``, and the patch itself
    (framed) are drawn in colour ``PATCH_COLORS[i]``; the patches form a
    column right of the image.

    Args:
        img (np.ndarray): BGR uint8 image, shape (H, W, 3).
        pred_bboxes (np.ndarray): Each patch's best box, xyxy in the
            image's pixels, shape (k, 4).
        pred_scores (Sequence[float]): Their match scores, length k.
        gt_bboxes (np.ndarray): The patches' true boxes, shape (k, 4).
        patches (np.ndarray, optional): BGR uint8 patches, shape
            (k, h, w, 3); None crops them from ``img`` at ``gt_bboxes``.

    Returns:
        np.ndarray: BGR uint8 canvas, shape (H, W + H // k, 3).
    """
    canvas = np.ascontiguousarray(img, dtype=np.uint8).copy()
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    if patches is None:
        patches = [
            canvas[int(y1):max(int(y2),
                               int(y1) + 1),
                   int(x1):max(int(x2),
                               int(x1) + 1)].copy()
            for x1, y1, x2, y2 in gt_bboxes
        ]
    for i, (box, score) in enumerate(zip(pred_bboxes, pred_scores)):
        color = PATCH_COLORS[i % len(PATCH_COLORS)]
        x1, y1, x2, y2 = (int(v) for v in gt_bboxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        x1, y1, x2, y2 = (int(v) for v in np.asarray(box).tolist())
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, PRED_THICKNESS)
        cv2.putText(canvas, f'{i}: {float(score):.2f}',
                    (x1 + 3, max(y1 + 16, 16)), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    color, 2)
    column = _patch_column(patches, canvas.shape[0])
    return np.concatenate([canvas, column], axis=1)
