# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""How well UP-DETR finds its query patches: the pretext's metric."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import METRICS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmengine.evaluator import BaseMetric
from torch import Tensor


def patch_localisation(ious: np.ndarray,
                       scores: np.ndarray) -> Dict[str, float]:
    """The metric's numbers from the IoU and match score of each patch.

    Args:
        ious (np.ndarray): IoU of each patch's chosen box with the patch's
            true box, shape (n, ).
        scores (np.ndarray): Match score of each chosen box, shape (n, ).

    Returns:
        dict[str, float]: ``loc_acc50`` and ``loc_acc75`` (fraction of
        patches with IoU >= 0.5 / 0.75), ``mIoU`` (mean IoU) and
        ``match_score`` (mean score); all 0 without patches.
    """
    if not len(ious):
        return dict(loc_acc50=0., loc_acc75=0., mIoU=0., match_score=0.)
    return dict(
        loc_acc50=float(np.mean(ious >= 0.5)),
        loc_acc75=float(np.mean(ious >= 0.75)),
        mIoU=float(np.mean(ious)),
        match_score=float(np.mean(scores)))


def _true_patch_boxes(data_sample: dict) -> Tensor:
    """The query patches' true boxes in the original image, (k, 4) xyxy."""
    gt_instances = data_sample.get('gt_instances')
    if gt_instances is None or 'bboxes' not in gt_instances:
        raise KeyError(
            'PatchLocalisationMetric needs the query patches\' true boxes '
            'in each data sample (`gt_instances.bboxes`): the validation '
            'pipeline must hold QueryPatchTransform and PackUPDETRInputs.')
    boxes = get_box_tensor(gt_instances['bboxes']).float()
    # The pipeline's boxes follow the resize; the predictions do not.
    scale = boxes.new_tensor(data_sample.get('scale_factor', (1., 1.)))
    return boxes / scale.repeat(2)


@METRICS.register_module()
class PatchLocalisationMetric(BaseMetric):
    """Localisation of the query patches: UP-DETR's pretext, scored.

    For every query patch of every image, its group's best box (the query
    of the group with the highest match score, ``pred_group_instances``:
    the readout of the paper's Fig. 7) is compared with the box the patch
    was cropped from. With ``prefix='pretext'`` the metrics are:

    - ``pretext/loc_acc50``: fraction of patches found with IoU >= 0.5;
    - ``pretext/loc_acc75``: the same at IoU >= 0.75;
    - ``pretext/mIoU``: mean IoU of the chosen boxes;
    - ``pretext/match_score``: mean match probability of the chosen boxes.

    A model that ignores its patches and predicts one box for all scores
    about the IoU of that box with random crops (a few % ``loc_acc50``).

    Args:
        collect_device (str): Device to gather results on, 'cpu' or 'gpu'.
            Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names.
            Defaults to 'pretext'.
    """
    default_prefix: Optional[str] = 'pretext'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score each patch of a batch's images.

        Args:
            data_batch (dict): The data from the dataloader (unused).
            data_samples (Sequence[dict]): Outputs of the model, with
                ``pred_group_instances`` (one row per patch, in patch order)
                and ``gt_instances`` (the patches' boxes, in patch order).
        """
        for data_sample in data_samples:
            pred = data_sample.get('pred_group_instances')
            if pred is None:
                raise KeyError(
                    'PatchLocalisationMetric needs `pred_group_instances` '
                    'in the outputs: evaluate a UPDETR model.')
            gt_boxes = _true_patch_boxes(data_sample)
            pred_boxes = torch.as_tensor(pred['bboxes']).float().cpu()
            if len(pred_boxes) != len(gt_boxes):
                raise ValueError(
                    f'{data_sample.get("img_path")}: {len(pred_boxes)} '
                    f'predicted groups for {len(gt_boxes)} query patches.')
            ious = bbox_overlaps(pred_boxes, gt_boxes.cpu(), is_aligned=True)
            self.results.append(
                dict(
                    ious=ious.numpy(),
                    scores=torch.as_tensor(
                        pred['scores']).float().cpu().numpy()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the metrics over all patches of all images.

        Args:
            results (list[dict]): The per-image ``ious`` and ``scores``.

        Returns:
            dict[str, float]: See the class docstring.
        """
        ious = np.concatenate([r['ious'] for r in results] or [np.zeros(0)])
        scores = np.concatenate([r['scores'] for r in results]
                                or [np.zeros(0)])
        return patch_localisation(ious, scores)
