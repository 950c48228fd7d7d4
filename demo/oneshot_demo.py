# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""One-shot detection demo: find objects like a query crop in an image.

Given a one-shot model (configs/updetr/oneshot_voc0712_*.py and its
checkpoint), an image and a query image file (the crop of an object, or any
image with ``--query-bbox`` to crop from it), draws the best matches with
their match scores and the query beside the image, saved as a PNG::

    python demo/oneshot_demo.py CONFIG CHECKPOINT IMG QUERY_IMG \
        [--query-bbox X1 Y1 X2 Y2] [--score-thr 0.5] [--topk 10] \
        [--out oneshot_result.png] [--device cpu]
"""
import argparse
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmdet.apis import init_detector
from mmdet.utils import ConfigType, register_all_modules
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmdet_updetr.datasets.transforms import LoadOneShotQuery
from mmdet_updetr.engine import enable_safe_checkpoints

MATCH_COLOR = (0, 0, 255)  # BGR red
QUERY_COLOR = (0, 200, 0)  # BGR green


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='one-shot config file')
    parser.add_argument('checkpoint', help='one-shot checkpoint')
    parser.add_argument('img', help='image to search')
    parser.add_argument('query', help='query image file (the crop)')
    parser.add_argument(
        '--query-bbox',
        type=float,
        nargs=4,
        metavar=('X1', 'Y1', 'X2', 'Y2'),
        help='crop this box from QUERY_IMG (default: the whole file)')
    parser.add_argument(
        '--score-thr', type=float, default=0.5, help='match score threshold')
    parser.add_argument(
        '--topk', type=int, default=10, help='draw at most this many matches')
    parser.add_argument('--out', default='oneshot_result.png')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def build_pipeline(cfg: ConfigType) -> Compose:
    """The config's test pipeline without ground truth.

    Args:
        cfg (:obj:`ConfigDict`): The model's config.

    Returns:
        :obj:`Compose`: Image and query loading, resize and packing.
    """
    pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'] != 'LoadAnnotations'
    ]
    for t in pipeline:
        if t['type'] == 'LoadOneShotQuery':
            t['augment'] = False
        if t['type'] == 'PackUPDETRInputs':
            t['meta_keys'] = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                              'scale_factor')
    return Compose(pipeline)


def top_matches(pred: InstanceData, score_thr: float,
                topk: int) -> InstanceData:
    """The ``topk`` highest-scoring predictions with score >= ``score_thr``.

    Args:
        pred (:obj:`InstanceData`): ``bboxes`` (N, 4) and ``scores`` (N, ).
        score_thr (float): Lowest score kept.
        topk (int): Most predictions kept.

    Returns:
        :obj:`InstanceData`: The kept predictions, best first.
    """
    order = pred.scores.argsort(descending=True)[:topk]
    pred = pred[order]
    return pred[pred.scores >= score_thr]


def draw(img: np.ndarray, query: np.ndarray,
         matches: InstanceData) -> np.ndarray:
    """The image with the matches (box, score) and the query beside it.

    Args:
        img (np.ndarray): BGR image (H, W, 3).
        query (np.ndarray): BGR query crop (h, w, 3).
        matches (:obj:`InstanceData`): ``bboxes`` (n, 4) and ``scores``.

    Returns:
        np.ndarray: (H, W + H, 3) BGR canvas; the query, scaled to fit an
        H x H square with a green frame, is on the right.
    """
    img = img.copy()
    for box, score in zip(matches.bboxes.tolist(), matches.scores.tolist()):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), MATCH_COLOR, 2)
        cv2.putText(img, f'{score:.2f}', (x1 + 2, max(y1 + 12, 12)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, MATCH_COLOR, 1)
    side = img.shape[0]
    column = np.full((side, side, 3), 255, np.uint8)
    scale = (side - 8) / max(query.shape[:2])
    h, w = (max(int(s * scale), 1) for s in query.shape[:2])
    column[4:4 + h, 4:4 + w] = cv2.resize(query, (w, h))
    cv2.rectangle(column, (2, 2), (w + 5, h + 5), QUERY_COLOR, 2)
    return np.concatenate([img, column], axis=1)


def read_query(img: str, query: str,
               query_bbox: Optional[List[float]]) -> Tuple[np.ndarray, list]:
    """Check the input files and the query box before loading the model.

    Args:
        img (str): The image to search.
        query (str): The query image file.
        query_bbox (list[float], optional): ``[x1, y1, x2, y2]`` in
            ``query``, or None for the whole file.

    Returns:
        tuple: The query image (h, w, 3) BGR and its box ``[x1, y1, x2,
        y2]``.
    """
    for name, path in (('IMG', img), ('QUERY_IMG', query)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name}: no such file: {path}')
    query_img = cv2.imread(query)
    if query_img is None:
        raise ValueError(f'QUERY_IMG: cannot decode {query} as an image')
    height, width = query_img.shape[:2]
    if query_bbox is None:
        return query_img, [0, 0, width, height]
    x1, y1, x2, y2 = query_bbox
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(
            f'--query-bbox {list(query_bbox)} is not a box inside '
            f'{query} ({width} x {height}): give X1 < X2 <= {width} and '
            f'Y1 < Y2 <= {height}, from 0')
    return query_img, list(query_bbox)


def run(config: str,
        checkpoint: str,
        img: str,
        query: str,
        query_bbox: Optional[List[float]] = None,
        score_thr: float = 0.5,
        topk: int = 10,
        out: str = 'oneshot_result.png',
        device: str = 'cpu') -> InstanceData:
    """Detect objects like the query in ``img`` and save the drawing.

    Args:
        config (str): One-shot config file.
        checkpoint (str): Its checkpoint.
        img (str): The image to search.
        query (str): The query image file.
        query_bbox (list[float], optional): ``[x1, y1, x2, y2]`` of the
            query object in ``query``; None takes the whole file.
        score_thr (float): Lowest match score drawn. Defaults to 0.5.
        topk (int): Most matches drawn. Defaults to 10.
        out (str): The drawing's file. Defaults to 'oneshot_result.png'.
        device (str): Device of the model. Defaults to 'cpu'.

    Returns:
        :obj:`InstanceData`: The drawn matches (``bboxes`` in ``img``'s
        pixels, ``scores``), best first.
    """
    query_img, query_bbox = read_query(img, query, query_bbox)
    # The crop the model sees (LoadOneShotQuery's window), to draw.
    x1, y1, x2, y2 = LoadOneShotQuery.crop_box(query_bbox, query_img.shape[1],
                                               query_img.shape[0])[0]
    register_all_modules()
    enable_safe_checkpoints()  # our checkpoints load with weights_only
    model = init_detector(config, checkpoint, device=device)
    data = build_pipeline(model.cfg)(
        dict(
            img_path=img,
            img_id=0,
            query_img_path=query,
            query_bbox=list(query_bbox)))
    result = model.test_step(pseudo_collate([data]))[0]
    matches = top_matches(result.pred_instances.cpu(), score_thr, topk)
    canvas = draw(cv2.imread(img), query_img[y1:y2, x1:x2], matches)
    cv2.imwrite(out, canvas)
    return matches


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    matches = run(args.config, args.checkpoint, args.img, args.query,
                  args.query_bbox, args.score_thr, args.topk, args.out,
                  args.device)
    for box, score in zip(matches.bboxes.tolist(), matches.scores.tolist()):
        print(f'match {score:.3f} at [' + ', '.join(f'{v:.1f}'
                                                    for v in box) + ']')
    print(f'{len(matches)} matches (score >= {args.score_thr}) drawn to '
          f'{args.out}')


if __name__ == '__main__':
    main()
