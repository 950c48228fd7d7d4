# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""AP50 of one-shot detection on VOC, averaged over query draws (SPEC §3)."""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.evaluation.functional import average_precision, bbox_overlaps
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from terminaltables import AsciiTable

#: The column order and short names of the paper's Table 3.
TABLE3_NAMES = {
    'pottedplant': 'plant',
    'sofa': 'sofa',
    'tvmonitor': 'tv',
    'car': 'car',
    'bottle': 'bottle',
    'boat': 'boat',
    'chair': 'chair',
    'person': 'person',
    'bus': 'bus',
    'train': 'train',
    'horse': 'horse',
    'bicycle': 'bike',
    'dog': 'dog',
    'bird': 'bird',
    'motorbike': 'mbike',
    'diningtable': 'table',
    'cow': 'cow',
    'sheep': 'sheep',
    'cat': 'cat',
    'aeroplane': 'aero'
}

#: One episode: detections (n, 5) xyxy + score, GT boxes (k, 4), ignored
#: GT boxes (j, 4).
Episode = Tuple[np.ndarray, np.ndarray, np.ndarray]


def match_episode(
        dets: np.ndarray,
        gts: np.ndarray,
        ignored: np.ndarray,
        iou_thr: float = 0.5,
        use_legacy_coordinate: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """True / false positives of one episode's detections, matched in the
    order given (the caller's ranking).

    As VOC's evaluation (and mmdet's ``tpfp_default``): each detection in
    turn takes the GT box (or ignored box) of highest IoU; at IoU >=
    ``iou_thr`` it is a true positive if that box is a not yet claimed GT
    box, a false positive if it is claimed, and neither if it is ignored
    (difficult); below ``iou_thr`` it is a false positive. Unlike
    ``tpfp_default``, which re-sorts the detections with numpy's unstable
    sort, the order is the caller's, so that tied detections are matched in
    the order in which they are ranked.

    Args:
        dets (np.ndarray): Detections in matching order, (n, 5) xyxy +
            score (the score is not used).
        gts (np.ndarray): GT boxes, (k, 4).
        ignored (np.ndarray): Ignored GT boxes, (j, 4).
        iou_thr (float): IoU threshold. Defaults to 0.5.
        use_legacy_coordinate (bool): Widths are ``x2 - x1 + 1``. Defaults
            to True.

    Returns:
        tuple[np.ndarray, np.ndarray]: float32 ``tp`` and ``fp`` flags, (n,).
    """
    tp = np.zeros(len(dets), dtype=np.float32)
    fp = np.zeros(len(dets), dtype=np.float32)
    boxes = np.vstack([gts.reshape(-1, 4), ignored.reshape(-1, 4)])
    if not len(boxes):
        fp[:] = 1
        return tp, fp
    ious = bbox_overlaps(
        dets[:, :4], boxes, use_legacy_coordinate=use_legacy_coordinate)
    best, best_iou = ious.argmax(axis=1), ious.max(axis=1)
    claimed = np.zeros(len(boxes), dtype=bool)
    for i in range(len(dets)):
        if best_iou[i] < iou_thr:
            fp[i] = 1
        elif best[i] >= len(gts):  # an ignored (difficult) box
            continue
        elif claimed[best[i]]:
            fp[i] = 1
        else:
            claimed[best[i]] = True
            tp[i] = 1
    return tp, fp


def episodes_ap(episodes: Sequence[Episode],
                iou_thr: float = 0.5,
                eval_mode: str = '11points',
                use_legacy_coordinate: bool = True) -> float:
    """VOC AP of one class over a set of episodes.

    All detections are ranked in one stable order: by score, ties in
    episode order, then in their order within the episode. Each episode is
    matched on its own (as an image of VOC's evaluation) in that same order
    (:func:`match_episode`), so that among tied detections the one that
    claims a box is never ranked behind a duplicate of it.

    Args:
        episodes (Sequence[tuple]): ``(dets, gt_bboxes, ignored_bboxes)``.
        iou_thr (float): IoU threshold. Defaults to 0.5.
        eval_mode (str): '11points' (VOC2007's devkit, CoAE's) or 'area'
            (VOC2010+). Defaults to '11points'.
        use_legacy_coordinate (bool): Widths are ``x2 - x1 + 1``, as VOC's
            devkit and mmdet's VOCMetric. Defaults to True.

    Returns:
        float: The AP, NaN when the episodes have no non-ignored GT box.
    """
    tps, fps, scores, num_gts = [], [], [], 0
    for dets, gts, ignored in episodes:
        order = np.argsort(-dets[:, 4], kind='stable')
        tp, fp = match_episode(dets[order], gts, ignored, iou_thr,
                               use_legacy_coordinate)
        tps.append(tp)
        fps.append(fp)
        scores.append(dets[order, 4])
        num_gts += len(gts)
    if num_gts == 0:
        return float('nan')
    # Stable: ties keep episode order, and within an episode the order in
    # which they were matched.
    order = np.argsort(-np.concatenate(scores), kind='stable')
    tp = np.cumsum(np.concatenate(tps)[order])
    fp = np.cumsum(np.concatenate(fps)[order])
    eps = np.finfo(np.float32).eps
    recalls = tp / num_gts
    precisions = tp / np.maximum(tp + fp, eps)
    return float(average_precision(recalls, precisions, eval_mode))


@METRICS.register_module()
class OneShotVOCMetric(BaseMetric):
    """One-shot detection AP on VOC, as the paper's Table 3.

    Every data sample is an episode of :class:`OneShotVOCDataset`: an image,
    a query of class ``oneshot_class`` (draw ``oneshot_draw``), the image's
    boxes of that class as ground truth (difficult ones ignored) and the
    model's boxes with their match scores. For each class and draw ``d``,
    the episodes of that draw over all test images give one VOC AP
    (:func:`episodes_ap`); a class's AP is the mean over the draws; the seen
    and unseen means average the classes (NaN-free: classes without
    episodes or without non-difficult GT are left out and shown as '-').

    Metrics (with the default prefix ``oneshot/``): ``<class>_AP50``,
    ``seen_AP50``, ``unseen_AP50`` (fractions in [0, 1]); the log gets a
    table in percent with the classes as columns grouped seen / unseen, one
    row per draw and their mean, like the paper's Table 3, and under it the
    protocol (:meth:`protocol`): CoAE's (Hsieh et al., NeurIPS 2019), with
    which Table 3 compares, or where the run departs from it.

    The pipeline's packer must keep ``oneshot_class`` and ``oneshot_draw``
    in ``meta_keys``, and the ground truth (``LoadAnnotations``).

    Args:
        iou_thr (float): IoU threshold. Defaults to 0.5.
        eval_mode (str): '11points' (VOC2007's devkit, which CoAE's code
            used on VOC2007 test) or 'area' (area under the interpolated
            precision / recall curve, VOC2010+). Defaults to '11points'.
        unseen_classes (Sequence[str], optional): Class names of the unseen
            group; None reads ``unseen_classes`` of the dataset's metainfo.
        use_legacy_coordinate (bool): VOC's ``+ 1`` widths. Defaults to True.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Metric name prefix. Defaults to 'oneshot'.
    """

    default_prefix: Optional[str] = 'oneshot'

    def __init__(self,
                 iou_thr: float = 0.5,
                 eval_mode: str = '11points',
                 unseen_classes: Optional[Sequence[str]] = None,
                 use_legacy_coordinate: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if eval_mode not in ('area', '11points'):
            raise ValueError("eval_mode must be 'area' or '11points', got "
                             f'{eval_mode!r}')
        self.iou_thr = iou_thr
        self.eval_mode = eval_mode
        self.unseen_classes = unseen_classes
        self.use_legacy_coordinate = use_legacy_coordinate
        self.ap_name = f'AP{round(iou_thr * 100)}'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each episode's class, draw, ground truth and detections.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): The episodes' data samples with
                ``pred_instances``, ``gt_instances``, ``ignored_instances``.
        """
        for sample in data_samples:
            for key in ('oneshot_class', 'oneshot_draw'):
                if key not in sample:
                    raise KeyError(
                        f'OneShotVOCMetric: data samples lack `{key}`: add '
                        "'oneshot_class' and 'oneshot_draw' to the meta_keys"
                        ' of PackUPDETRInputs in the test pipeline and use '
                        'OneShotVOCDataset.')
            pred = sample['pred_instances']
            dets = np.hstack([
                pred['bboxes'].cpu().numpy().reshape(-1, 4),
                pred['scores'].cpu().numpy().reshape(-1, 1)
            ]).astype(np.float32)
            self.results.append(
                dict(
                    label=int(sample['oneshot_class']),
                    draw=int(sample['oneshot_draw']),
                    dets=dets,
                    gts=sample['gt_instances']['bboxes'].cpu().numpy(),
                    ignored=sample['ignored_instances']
                    ['bboxes'].cpu().numpy().reshape(-1, 4)))

    def class_aps(self, results: List[dict]) -> Dict[int, Dict[int, float]]:
        """AP of every class and draw.

        Args:
            results (list[dict]): The processed episodes.

        Returns:
            dict[int, dict[int, float]]: class index -> draw -> AP.
        """
        groups = defaultdict(list)
        for res in results:
            groups[(res['label'], res['draw'])].append(
                (res['dets'], res['gts'].reshape(-1, 4), res['ignored']))
        aps = defaultdict(dict)
        for (label, draw), episodes in sorted(groups.items()):
            aps[label][draw] = episodes_ap(episodes, self.iou_thr,
                                           self.eval_mode,
                                           self.use_legacy_coordinate)
        return aps

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Per-class AP averaged over draws, and the seen / unseen means.

        Args:
            results (list[dict]): The processed episodes of all ranks.

        Returns:
            dict[str, float]: ``<class>_AP50``, ``seen_AP50``,
            ``unseen_AP50``.
        """
        classes = self.dataset_meta['classes']
        unseen = self.unseen_classes
        if unseen is None:
            unseen = self.dataset_meta.get('unseen_classes', ())
        aps = self.class_aps(results)
        metrics, groups = {}, dict(seen=[], unseen=[])
        for label, draws in aps.items():
            ap = self._cell_ap(draws, None)
            if np.isnan(ap):
                continue
            metrics[f'{classes[label]}_{self.ap_name}'] = float(ap)
            groups['unseen' if classes[label] in unseen else 'seen'].append(ap)
        for group, values in groups.items():
            metrics[f'{group}_{self.ap_name}'] = float(
                np.mean(values)) if values else float('nan')
        print_log(
            '\n' + self.table(aps, classes, unseen) + '\n' + self.protocol(),
            logger='current')
        return metrics

    def protocol(self) -> str:
        """The one-shot protocol of the run, compared with CoAE's.

        The AP is this metric's; the query pool and the query crop come
        from the dataset's metainfo ``oneshot_protocol`` (set by
        :class:`OneShotVOCDataset`; 'unknown' without it).

        Returns:
            str: ``Protocol: CoAE's (...)`` or ``Protocol: not CoAE's
            (<parts> differ) (...)``, with the settings.
        """
        ap = ('VOC2007 11-point '
              if self.eval_mode == '11points' else 'area ') + self.ap_name
        meta = (self.dataset_meta or {}).get('oneshot_protocol', {})
        pool = tuple(meta.get('query_pool', ('unknown', False)))
        crop = tuple(meta.get('query_crop', ('unknown', False)))
        parts = {
            'AP': (ap, self.eval_mode == '11points'),
            'query pool': pool,
            'query crop': crop
        }
        differ = [name for name, (_, coae) in parts.items() if not coae]
        head = f"not CoAE's ({', '.join(differ)} differ)" if differ else \
            "CoAE's"
        return (f'Protocol: {head} ({ap}; query pool: {pool[0]}; '
                f'query crop: {crop[0]})')

    def table(self, aps: Dict[int, Dict[int, float]], classes: Sequence[str],
              unseen: Sequence[str]) -> str:
        """The log table: classes as columns (seen, mean, unseen, mean),
        one row per draw and the mean, in percent.

        Args:
            aps (dict): class index -> draw -> AP, from :meth:`class_aps`.
            classes (Sequence[str]): Class names of the dataset.
            unseen (Sequence[str]): Names of the unseen classes.

        Returns:
            str: The table.
        """
        order = list(TABLE3_NAMES) + [
            c for c in classes if c not in TABLE3_NAMES
        ]
        labels = sorted((classes.index(c) for c in order if c in classes),
                        key=lambda i: order.index(classes[i]))
        groups = [[i for i in labels if (classes[i] in unseen) == flag]
                  for flag in (False, True)]
        draws = sorted({d for per in aps.values() for d in per})
        header, rows = [''], [[f'draw {d}'] for d in draws] + [['mean']]
        for name, group in zip(('seen', 'unseen'), groups):
            header += [TABLE3_NAMES.get(classes[i], classes[i]) for i in group]
            header.append(f'{name} {self.ap_name}')
            for row, draw in zip(rows, draws + [None]):
                values = [self._cell_ap(aps.get(i, {}), draw) for i in group]
                finite = [v for v in values if not np.isnan(v)]
                values.append(np.mean(finite) if finite else float('nan'))
                row += [
                    '-' if np.isnan(v) else f'{100 * v:.1f}' for v in values
                ]
        return AsciiTable(
            [header] + rows, title=f'One-shot {self.ap_name}').table

    @staticmethod
    def _cell_ap(draws: Dict[int, float], draw: Optional[int]) -> float:
        """AP of one draw, or the mean over draws when ``draw`` is None."""
        values = list(draws.values()) if draw is None else [
            draws.get(draw, float('nan'))
        ]
        finite = [v for v in values if not np.isnan(v)]
        return float(np.mean(finite)) if finite else float('nan')
