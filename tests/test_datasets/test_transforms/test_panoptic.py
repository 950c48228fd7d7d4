"""Tests of ``PanopticStuffToInstances``."""
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmdet.datasets.transforms import RandomFlip, Resize
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmdet_updetr.datasets.transforms import PanopticStuffToInstances

# Things 0, 1; stuff 2, 3; 255 void.
SEG = np.array(
    [[2, 2, 2, 2, 255], [2, 0, 0, 2, 255], [3, 0, 0, 3, 3], [3, 3, 3, 3, 3]],
    dtype=np.uint8)


def _results(with_masks=True):
    results = dict(
        gt_seg_map=SEG.copy(),
        gt_bboxes=HorizontalBoxes(np.array([[1., 1., 3., 3.]], np.float32)),
        gt_bboxes_labels=np.array([0]),
        gt_ignore_flags=np.array([False]))
    if with_masks:
        results['gt_masks'] = BitmapMasks((SEG == 0)[None].astype(np.uint8), 4,
                                          5)
    return results


def test_stuff_becomes_instances():
    out = PanopticStuffToInstances(num_things_classes=2)(_results())
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [0, 2, 3])
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(),
                                  [[1, 1, 3, 3], [0, 0, 4, 2], [0, 2, 5, 4]])
    np.testing.assert_array_equal(out['gt_ignore_flags'], [0, 0, 0])
    masks = out['gt_masks'].masks
    assert masks.shape == (3, 4, 5)
    for mask, label in zip(masks, (0, 2, 3)):
        np.testing.assert_array_equal(mask, SEG == label)


def test_without_masks_and_errors():
    out = PanopticStuffToInstances(num_things_classes=2)(
        _results(with_masks=False))
    assert 'gt_masks' not in out and len(out['gt_bboxes']) == 3
    # Everything a thing: nothing added.
    out = PanopticStuffToInstances(num_things_classes=4)(_results())
    assert len(out['gt_bboxes']) == 1 and len(out['gt_masks']) == 1
    with pytest.raises(KeyError, match='LoadPanopticAnnotations'):
        PanopticStuffToInstances()(dict(img=np.zeros((2, 2, 3))))
    assert 'num_things_classes=80' in repr(PanopticStuffToInstances())


def test_after_flip_and_resize_boxes_come_from_the_new_map():
    # mmdet's flip and 2x resize, then the stuff: boxes of the flipped,
    # doubled map (sky x in [1, 5) -> [2, 10); grass [0, 5) -> [0, 10)).
    pipeline = Compose([
        RandomFlip(prob=1., direction='horizontal'),
        Resize(scale_factor=2.),
        PanopticStuffToInstances(num_things_classes=2)
    ])
    results = _results()
    results.update(img=np.zeros((4, 5, 3), np.uint8), img_shape=(4, 5))
    out = pipeline(results)
    seg = np.repeat(np.repeat(SEG[:, ::-1], 2, 0), 2, 1)
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(),
                                  [[4, 2, 8, 6], [2, 0, 10, 4], [0, 4, 10, 8]])
    for mask, label in zip(out['gt_masks'].masks, (0, 2, 3)):
        np.testing.assert_array_equal(mask, seg == label)


def test_masks_of_another_size_are_refused():
    results = _results()
    results['gt_masks'] = BitmapMasks(np.ones((1, 8, 10), np.uint8), 8, 10)
    with pytest.raises(ValueError, match='transform both alike'):
        PanopticStuffToInstances(num_things_classes=2)(results)
