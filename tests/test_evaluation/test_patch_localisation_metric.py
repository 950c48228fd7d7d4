"""PatchLocalisationMetric against numbers computed by hand."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmdet_updetr.evaluation import PatchLocalisationMetric, patch_localisation

# The true box [0, 0, 10, 10] (area 100) and boxes that cover its top 8, 6
# and 3 rows: IoU 80/100, 60/100, 30/100.
TRUE = [0., 0., 10., 10.]
PRED = {0.8: [0., 0., 10., 8.], 0.6: [0., 0., 10., 6.], 0.3: [0., 0., 10., 3.]}


def sample(ious, scores, scale=1.0, shift=0.):
    """A model output: one group per patch, true boxes in the resized image
    (``scale`` times the original), predictions in the original."""
    data_sample = DetDataSample(
        metainfo=dict(img_path='x.jpg', scale_factor=(scale, scale)))
    true = torch.tensor([TRUE] * len(ious)) + shift
    data_sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(true * scale),
        labels=torch.zeros(len(ious), dtype=torch.long))
    data_sample.pred_group_instances = InstanceData(
        bboxes=torch.tensor([PRED[iou] for iou in ious]) + shift,
        scores=torch.tensor(scores),
        labels=torch.arange(len(ious)))
    return data_sample


def evaluate(samples):
    evaluator = Evaluator(dict(type='PatchLocalisationMetric'))
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_three_patches_by_hand():
    metrics = evaluate([sample([0.8, 0.6, 0.3], [0.9, 0.5, 0.1])])
    assert set(metrics) == {
        'pretext/loc_acc50', 'pretext/loc_acc75', 'pretext/mIoU',
        'pretext/match_score'
    }
    assert metrics['pretext/loc_acc50'] == pytest.approx(2 / 3)
    assert metrics['pretext/loc_acc75'] == pytest.approx(1 / 3)
    assert metrics['pretext/mIoU'] == pytest.approx((0.8 + 0.6 + 0.3) / 3)
    assert metrics['pretext/match_score'] == pytest.approx(0.5)


def test_averages_over_patches_not_images_and_undoes_the_resize():
    # Image A: IoUs 0.8 and 0.6, its true boxes at twice the size (a
    # resize by 2); image B: 0.3, elsewhere. Per patch: 2 of 3 >= 0.5 (per
    # image it would be (1 + 0) / 2).
    metrics = evaluate([
        sample([0.8, 0.6], [1.0, 0.5], scale=2.0),
        sample([0.3], [0.0], shift=20.)
    ])
    assert metrics['pretext/loc_acc50'] == pytest.approx(2 / 3)
    assert metrics['pretext/loc_acc75'] == pytest.approx(1 / 3)
    assert metrics['pretext/mIoU'] == pytest.approx(1.7 / 3)
    assert metrics['pretext/match_score'] == pytest.approx(0.5)


def test_the_boundaries_count_as_found():
    metrics = patch_localisation(
        np.array([0.5, 0.75, 0.4999]), np.array([0.2, 0.4, 0.6]))
    assert metrics == pytest.approx(
        dict(
            loc_acc50=2 / 3, loc_acc75=1 / 3, mIoU=1.7499 / 3,
            match_score=0.4))
    assert patch_localisation(np.zeros(0), np.zeros(0))['loc_acc50'] == 0


def test_clear_errors():
    metric = PatchLocalisationMetric()
    no_pred = sample([0.8], [0.5])
    del no_pred.pred_group_instances
    with pytest.raises(KeyError, match='pred_group_instances'):
        metric.process({}, [no_pred.to_dict()])
    no_gt = sample([0.8], [0.5])
    del no_gt.gt_instances
    with pytest.raises(KeyError, match='QueryPatchTransform'):
        metric.process({}, [no_gt.to_dict()])
    fewer = sample([0.8, 0.6], [0.5, 0.5])
    fewer.pred_group_instances = fewer.pred_group_instances[:1]
    with pytest.raises(ValueError, match='1 predicted groups for 2'):
        metric.process({}, [fewer.to_dict()])
