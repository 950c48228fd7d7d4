import numpy as np
import torch
from mmdet.structures import DetDataSample

from mmdet_updetr.datasets.transforms import (PackUPDETRInputs,
                                              QueryPatchTransform)


def make_results(num_patches=4):
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8)
    results = dict(
        img=img,
        img_id=3,
        img_path='x.jpg',
        ori_shape=img.shape[:2],
        img_shape=img.shape[:2],
        scale_factor=(1.0, 1.0))
    np.random.seed(0)
    return QueryPatchTransform(num_patches=num_patches)(results)


def test_pack_query_patches():
    results = make_results()
    patches = results['query_patches'].copy()
    aug = results['query_patch_aug'].copy()
    boxes = results['gt_bboxes'].tensor.clone()
    packed = PackUPDETRInputs()(results)
    assert packed['inputs'].shape == (3, 60, 80)
    sample = packed['data_samples']
    assert isinstance(sample, DetDataSample)
    assert sample.query_patches.dtype == torch.uint8
    assert sample.query_patches.shape == (4, 3, 128, 128)
    np.testing.assert_array_equal(sample.query_patches.numpy(),
                                  patches.transpose(0, 3, 1, 2))
    assert sample.query_patch_aug.dtype == torch.float32
    np.testing.assert_array_equal(sample.query_patch_aug.numpy(), aug)
    # Box i stays with patch i; one class, label 0.
    torch.testing.assert_close(sample.gt_instances.bboxes.tensor, boxes)
    assert sample.gt_instances.labels.tolist() == [0, 0, 0, 0]
    assert len(sample.ignored_instances) == 0
    assert sample.img_id == 3 and sample.img_path == 'x.jpg'


def test_pack_without_query_patches():
    img = np.zeros((20, 30, 3), np.uint8)
    packed = PackUPDETRInputs()(dict(img=img))
    assert 'query_patches' not in packed['data_samples']
    assert 'query_patch_aug' not in packed['data_samples']
