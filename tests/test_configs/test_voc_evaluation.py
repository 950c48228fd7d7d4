"""VOC scored COCO-style (CocoMetric from the XML) and by VOCMetric.

The evaluators and the test set come from ``configs/_base_/datasets/
voc0712.py``, pointed at a tiny VOC set written here; predictions are made
from the ground truth, so the right scores are known.
"""
import copy
from collections import Counter

import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmdet_updetr.testing import get_config_path, write_tiny_voc

IOU_SHIFTED = 0.625  # 3 of COCO's 10 IoU thresholds (0.5, 0.55, 0.6) pass


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    """A test split of 5 images; the last box of the first image with
    several boxes is marked difficult.

    Returns:
        tuple: The data root, the written boxes (id -> boxes) and the
        (image id, box index) of the difficult box.
    """
    root = tmp_path_factory.mktemp('voc')
    boxes = write_tiny_voc(str(root), num_trainval=1, num_test=5, seed=3)
    test_ids = (root / 'VOC2007/ImageSets/Main/test.txt').read_text().split()
    img_id = next(i for i in test_ids if len(boxes[i]) > 1)
    xml = root / 'VOC2007' / 'Annotations' / f'{img_id}.xml'
    text = xml.read_text()
    head, _, tail = text.rpartition('<difficult>0</difficult>')
    xml.write_text(head + '<difficult>1</difficult>' + tail)
    return str(root), {
        i: boxes[i]
        for i in test_ids
    }, (img_id, len(boxes[img_id]) - 1)


@pytest.fixture(scope='module')
def config():
    return Config.fromfile(get_config_path('_base_/datasets/voc0712.py'))


def _samples(config, root):
    dataset_cfg = copy.deepcopy(config.test_dataloader.dataset)
    dataset_cfg.data_root = root
    dataset = DATASETS.build(dataset_cfg)
    return dataset, [dataset[i]['data_samples'] for i in range(len(dataset))]


def _evaluate(config, dataset, samples):
    evaluator = Evaluator(copy.deepcopy(config.test_evaluator))
    evaluator.dataset_meta = dataset.metainfo
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def _predict_ground_truth(samples, with_difficult):
    """Each sample predicts its boxes (original image coordinates)."""
    for sample in samples:
        instances = [
            ann for ann in sample.instances
            if with_difficult or not ann['ignore_flag']
        ]
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([a['bbox'] for a in instances],
                                dtype=torch.float32).reshape(-1, 4),
            scores=torch.ones(len(instances)),
            labels=torch.tensor([a['bbox_label'] for a in instances],
                                dtype=torch.long))
    return samples


def test_difficult_box_is_marked(config, voc):
    root, _, (img_id, index) = voc
    dataset, samples = _samples(config, root)
    sample = next(s for s in samples if s.img_id == img_id)
    assert [a['ignore_flag'] for a in sample.instances].count(1) == 1
    assert sample.instances[index]['ignore_flag'] == 1
    assert len(sample.ignored_instances) == 1


@pytest.mark.parametrize('with_difficult', [False, True])
def test_ground_truth_scores_one(config, voc, with_difficult):
    """Difficult boxes neither count as missed nor, when detected, as false
    positives."""
    root = voc[0]
    dataset, samples = _samples(config, root)
    metrics = _evaluate(config, dataset,
                        _predict_ground_truth(samples, with_difficult))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75',
                'pascal_voc/mAP'):
        assert metrics[key] == pytest.approx(1.0), key


def test_shifted_box_scores_known_values(config, voc):
    """One box of a class seen once moved right to IoU 0.625: that class
    has COCO AP 3/10, AP50 1, AP75 0; VOC's AP50 stays 1."""
    root, boxes, (difficult_id, difficult_index) = voc
    counts = Counter(box[0] for img_id, img_boxes in boxes.items()
                     for i, box in enumerate(img_boxes)
                     if (img_id, i) != (difficult_id, difficult_index))
    dataset, samples = _samples(config, root)
    samples = _predict_ground_truth(samples, with_difficult=False)
    classes = dataset.metainfo['classes']
    sample, row = next((s, i) for s in samples
                       for i, label in enumerate(s.pred_instances.labels)
                       if counts[classes[label]] == 1)
    bboxes = sample.pred_instances.bboxes
    width = bboxes[row, 2] - bboxes[row, 0]
    shift = width * (1 - IOU_SHIFTED) / (1 + IOU_SHIFTED)
    bboxes[row, 0::2] += shift
    metrics = _evaluate(config, dataset, samples)
    num_classes = len(counts)  # classes with a non-difficult box
    assert metrics['coco/bbox_mAP'] == pytest.approx(
        (num_classes - 1 + 0.3) / num_classes, abs=1e-3)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(1.0)
    assert metrics['coco/bbox_mAP_75'] == pytest.approx(
        (num_classes - 1) / num_classes, abs=1e-3)
    assert metrics['pascal_voc/mAP'] == pytest.approx(1.0)
