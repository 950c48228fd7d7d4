import zlib

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import init_default_scope

from mmdet_updetr.augmentation import (AUG_COL, AUG_PARAM_NAMES,
                                       IDENTITY_AUG_PARAMS, NUM_AUG_PARAMS)
from mmdet_updetr.datasets.transforms import QueryPatchTransform
from mmdet_updetr.datasets.transforms.query_patch import (crop_patches,
                                                          draw_patch_boxes)

SCALES = (320, 336, 352, 368, 400, 416, 432, 448, 464, 480)


def ramp_image(height=90, width=120):
    """Channel 0 = x, channel 1 = y, channel 2 = 7 (all < 256)."""
    ys, xs = np.mgrid[:height, :width]
    return np.dstack([xs, ys, np.full_like(xs, 7)]).astype(np.uint8)


def run(transform, img, seed=None):
    if seed is not None:
        np.random.seed(seed)
    return transform(dict(img=img.copy(), img_shape=img.shape[:2]))


def test_outputs_and_crops_equal_the_image_at_the_box():
    img = np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8)
    results = run(QueryPatchTransform(augment=False), img, seed=1)
    boxes = results['gt_bboxes']
    assert isinstance(boxes, HorizontalBoxes)
    assert boxes.tensor.dtype.is_floating_point and boxes.tensor.shape == (10,
                                                                           4)
    assert results['gt_bboxes_labels'].dtype == np.int64
    assert (results['gt_bboxes_labels'] == 0).all()
    assert results['gt_ignore_flags'].dtype == bool
    assert not results['gt_ignore_flags'].any()
    patches = results['query_patches']
    assert patches.shape == (10, 128, 128, 3) and patches.dtype == np.uint8
    aug = results['query_patch_aug']
    assert aug.shape == (10, NUM_AUG_PARAMS) and aug.dtype == np.float32
    np.testing.assert_array_equal(aug, np.tile(IDENTITY_AUG_PARAMS, (10, 1)))
    for patch, box in zip(patches, boxes.tensor.numpy().astype(int)):
        x1, y1, x2, y2 = box
        crop = img[y1:y2, x1:x2]
        np.testing.assert_array_equal(
            patch,
            cv2.resize(crop, (128, 128), interpolation=cv2.INTER_LINEAR))


def test_box_matches_the_cropped_pixels():
    """On a ramp image, a patch's first and last columns (rows) hold the
    x (y) of its box's edges: an off-by-one box fails."""
    img = ramp_image()
    transform = QueryPatchTransform(augment=False, patch_size=(128, 128))
    for seed in range(20):
        results = run(transform, img, seed=seed)
        for patch, box in zip(results['query_patches'],
                              results['gt_bboxes'].tensor.numpy()):
            x1, y1, x2, y2 = box.astype(int)
            patch = patch.astype(int)
            assert abs(patch[:, 0, 0].mean() - x1) <= 0.5
            assert abs(patch[:, -1, 0].mean() - (x2 - 1)) <= 0.5
            assert abs(patch[0, :, 1].mean() - y1) <= 0.5
            assert abs(patch[-1, :, 1].mean() - (y2 - 1)) <= 0.5


def test_patch_size_and_gray_image():
    img = np.random.default_rng(0).integers(0, 256, (50, 70), np.uint8)
    results = run(QueryPatchTransform(num_patches=3, patch_size=(32, 16)), img)
    assert results['query_patches'].shape == (3, 16, 32, 3)
    patches = results['query_patches']
    np.testing.assert_array_equal(patches[..., 0], patches[..., 2])


def test_sizes_and_positions_over_1000_draws():
    width, height, low = 40, 30, 8
    transform = QueryPatchTransform(min_size=low, patch_size=16)
    np.random.seed(0)
    boxes = np.concatenate(
        [transform._draw_boxes(width, height) for _ in range(1000)])
    assert boxes.shape == (10000, 4)
    sw, sh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    # Uniform over every integer of [min_size, side - min_size].
    assert set(sw) == set(range(low, width - low + 1))
    assert set(sh) == set(range(low, height - low + 1))
    counts = np.bincount(sw)[low:]
    assert counts.min() > 0.7 * counts.mean()
    assert counts.max() < 1.3 * counts.mean()
    # Reference semantics: x in [0, w - sw - 1], y in [0, h - sh - 1].
    assert (boxes[:, :2] >= 0).all()
    assert (boxes[:, 2] <= width - 1).all()
    assert (boxes[:, 3] <= height - 1).all()
    assert (boxes[:, 0] == width - sw - 1).any()
    assert (boxes[:, 0] == 0).any()
    # Given sw, x is uniform: for sw = 8 it takes 32 values equally often.
    xs = boxes[sw == low, 0]
    assert set(xs) == set(range(width - low))
    # The whole transform keeps the bounds too.
    img = np.zeros((height, width, 3), np.uint8)
    for seed in range(50):
        tensor = run(transform, img, seed=seed)['gt_bboxes'].tensor
        assert (tensor[:, 2:] - tensor[:, :2] >= low).all()
        assert (tensor[:, 2] < width).all() and (tensor[:, 3] < height).all()


def test_image_too_small_returns_none():
    transform = QueryPatchTransform(min_size=8)
    assert run(transform, np.zeros((15, 100, 3), np.uint8)) is None
    assert run(transform, np.zeros((16, 16, 3), np.uint8)) is not None


def test_same_seed_same_draws():
    img = np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8)
    transform = QueryPatchTransform()
    first, second = run(transform, img, seed=3), run(transform, img, seed=3)
    other = run(transform, img, seed=4)
    for key in ('query_patches', 'query_patch_aug'):
        np.testing.assert_array_equal(first[key], second[key])
    np.testing.assert_array_equal(first['gt_bboxes'].tensor,
                                  second['gt_bboxes'].tensor)
    assert not np.array_equal(first['query_patch_aug'],
                              other['query_patch_aug'])


def test_augmentation_parameter_statistics():
    transform = QueryPatchTransform()
    np.random.seed(0)
    params = np.concatenate(
        [transform._draw_aug_params() for _ in range(2000)])
    assert params.shape == (20000, 12) and params.dtype == np.float32
    jitter = params[:, AUG_COL['jitter']] == 1
    gray = params[:, AUG_COL['gray']] == 1
    blur = params[:, AUG_COL['blur']] == 1
    assert abs(jitter.mean() - 0.8) < 0.015
    assert abs(gray.mean() - 0.2) < 0.015
    assert abs(blur.mean() - 0.5) < 0.015
    flags = params[:, [0, 9, 10]]
    assert set(np.unique(flags)) == {0.0, 1.0}
    # Jittered patches: factors in torchvision's ranges, a permutation.
    factors = params[jitter][:, 1:5]
    for col, (low, high) in enumerate([(0.6, 1.4)] * 3 + [(-0.1, 0.1)]):
        assert factors[:, col].min() >= low and factors[:, col].max() <= high
        assert factors[:, col].min() < low + 0.01
        assert factors[:, col].max() > high - 0.01
        assert abs(factors[:, col].mean() - (low + high) / 2) < 0.01
    order = params[jitter][:, 5:9]
    np.testing.assert_array_equal(
        np.sort(order, axis=1), np.tile([0, 1, 2, 3], (len(order), 1)))
    # Every op comes first in about a quarter of the patches.
    first = np.bincount(order[:, 0].astype(int), minlength=4) / len(order)
    assert np.abs(first - 0.25).max() < 0.02
    # Patches without jitter carry the identity factors and order.
    np.testing.assert_array_equal(
        params[~jitter][:, :9],
        np.tile(IDENTITY_AUG_PARAMS[:9], ((~jitter).sum(), 1)))
    sigma = params[:, AUG_COL['sigma']]
    assert (sigma[~blur] == 0).all()
    assert sigma[blur].min() >= 0.1 and sigma[blur].max() <= 2.0
    assert abs(sigma[blur].mean() - 1.05) < 0.03
    # The three choices are independent.
    assert abs((jitter & gray).mean() - 0.16) < 0.015


def test_augment_off_draws_identity():
    transform = QueryPatchTransform(augment=False, num_patches=4)
    np.testing.assert_array_equal(transform._draw_aug_params(),
                                  np.tile(IDENTITY_AUG_PARAMS, (4, 1)))
    assert AUG_PARAM_NAMES[0] == 'jitter' and len(AUG_PARAM_NAMES) == 12


@pytest.mark.parametrize('resize', ['train', 'val'])
def test_boxes_follow_the_resize(resize):
    from mmcv.transforms import Compose

    import mmdet_updetr.datasets  # noqa: F401
    init_default_scope('mmdet')
    if resize == 'train':
        resize_cfg = dict(
            type='RandomChoiceResize',
            scales=[(s, 600) for s in SCALES],
            keep_ratio=True)
    else:
        resize_cfg = dict(type='Resize', scale=(600, 480), keep_ratio=True)
    transform = QueryPatchTransform()
    pipeline = Compose([resize_cfg])
    rng = np.random.default_rng(0)
    for seed, (height, width) in enumerate([(90, 120), (300, 200), (100, 400),
                                            (500, 500)]):
        img = rng.integers(0, 256, (height, width, 3), np.uint8)
        results = run(transform, img, seed=seed)
        before = results['gt_bboxes'].tensor.clone()
        results = pipeline(results)
        new_h, new_w = results['img'].shape[:2]
        assert max(new_h, new_w) <= 600
        shorter = min(new_h, new_w)
        if max(height, width) / min(height, width) * 480 <= 600:
            assert shorter in (SCALES if resize == 'train' else (480, ))
        w_scale, h_scale = results['scale_factor']
        assert w_scale == pytest.approx(new_w / width)
        expected = before * before.new_tensor(
            [w_scale, h_scale, w_scale, h_scale])
        np.testing.assert_allclose(
            results['gt_bboxes'].tensor.numpy(), expected.numpy(), rtol=1e-5)
        # Patches are untouched by the resize.
        assert results['query_patches'].shape == (10, 128, 128, 3)


def test_repr():
    assert repr(QueryPatchTransform(num_patches=5, augment=False)) == (
        'QueryPatchTransform(num_patches=5, min_size=8, '
        'patch_size=(128, 128), augment=False, '
        'jitter=(0.4, 0.4, 0.4, 0.1), jitter_prob=0.8, gray_prob=0.2, '
        "blur_prob=0.5, blur_sigma=(0.1, 2.0), interpolation='bilinear', "
        'deterministic=False)')


def test_deterministic_draws_depend_on_the_file_name_only():
    """Validation: the same boxes for an image whatever the run's random
    state or folder, other boxes for another name, the state restored."""
    img = np.zeros((90, 120, 3), np.uint8)
    transform = QueryPatchTransform(num_patches=4, deterministic=True)

    def boxes(path, seed):
        np.random.seed(seed)
        results = transform(dict(img=img, img_path=path))
        # The run's random state went on as if nothing had been drawn.
        after = np.random.rand()
        np.random.seed(seed)
        assert after == np.random.rand()
        return results['gt_bboxes'].tensor.numpy()

    first = boxes('/a/val/x.jpg', seed=0)
    np.testing.assert_array_equal(first, boxes('/b/x.jpg', seed=5))
    assert not np.array_equal(first, boxes('/a/val/y.jpg', seed=0))
    # The seed is the CRC-32 of the file name.
    np.random.seed(zlib.crc32(b'x.jpg'))
    np.testing.assert_array_equal(first, draw_patch_boxes(120, 90, 4))
    # Without it, the run's state decides.
    random = QueryPatchTransform(num_patches=4)
    np.random.seed(0)
    a = random(dict(img=img, img_path='x.jpg'))['gt_bboxes'].tensor
    np.random.seed(1)
    b = random(dict(img=img, img_path='x.jpg'))['gt_bboxes'].tensor
    assert not np.array_equal(a.numpy(), b.numpy())


def test_invalid_arguments():
    with pytest.raises(ValueError, match='min_size'):
        QueryPatchTransform(min_size=0)
    with pytest.raises(ValueError, match='num_patches'):
        QueryPatchTransform(num_patches=0)
    with pytest.raises(ValueError, match='jitter'):
        QueryPatchTransform(augment=dict(jitter=(0.4, 0.4, 0.4, 0.7)))


def test_public_draw_and_crop_are_the_transforms():
    img = np.random.default_rng(0).integers(0, 256, (50, 70), np.uint8)
    transform = QueryPatchTransform(
        num_patches=4, min_size=6, patch_size=(20, 12), augment=False)
    results = run(transform, img, seed=7)
    np.random.seed(7)
    boxes = draw_patch_boxes(70, 50, num_patches=4, min_size=6)
    np.testing.assert_array_equal(results['gt_bboxes'].tensor.numpy(), boxes)
    np.testing.assert_array_equal(results['query_patches'],
                                  crop_patches(img, boxes, (20, 12)))
    patches = crop_patches(img, np.array([[3, 4, 13, 9]]), 5, 'nearest')
    assert patches.shape == (1, 5, 5, 3)
    expected = cv2.resize(
        img[4:9, 3:13], (5, 5), interpolation=cv2.INTER_NEAREST)
    for channel in range(3):
        np.testing.assert_array_equal(patches[0, ..., channel], expected)


def test_augment_dict_configures_the_draw():
    transform = QueryPatchTransform(
        num_patches=6, augment=dict(jitter_prob=0.0, gray_prob=1.0))
    aug = run(
        transform, np.zeros((40, 40, 3), np.uint8), seed=0)['query_patch_aug']
    assert (aug[:, AUG_COL['jitter']] == 0).all()
    assert (aug[:, AUG_COL['gray']] == 1).all()
    assert repr(transform).startswith(
        'QueryPatchTransform(num_patches=6, min_size=8, '
        'patch_size=(128, 128), augment=True, '
        'jitter=(0.4, 0.4, 0.4, 0.1), jitter_prob=0.0, gray_prob=1.0,')
    with pytest.raises(TypeError, match='augment'):
        QueryPatchTransform(augment=dict(gray=1.0))
