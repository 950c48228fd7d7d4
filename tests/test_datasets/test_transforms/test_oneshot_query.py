import cv2
import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params

from mmdet_updetr.augmentation import IDENTITY_AUG_PARAMS, NUM_AUG_PARAMS
from mmdet_updetr.datasets.transforms import (LoadOneShotQuery,
                                              QueryPatchTransform)
from mmdet_updetr.datasets.transforms.oneshot_query import pad_to_square


@pytest.fixture
def query_file(tmp_path):
    """A 60 x 80 image, black but for a (B, G, R) = (10, 200, 30) block at
    x 20..49, y 10..29, with a white pixel column right of it."""
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:30, 20:50] = (10, 200, 30)
    img[:, 50] = 255
    path = tmp_path / 'query.png'
    cv2.imwrite(str(path), img)
    return str(path)


def test_crop_is_the_query_box_stretched(query_file):
    """``pad_to_square=False``: the box alone, stretched to the size."""
    transform = LoadOneShotQuery(
        patch_size=(24, 16), augment=False, pad_to_square=False)
    results = transform(
        dict(query_img_path=query_file, query_bbox=[20., 10., 50., 30.]))
    patch = results['query_patches']
    assert patch.shape == (1, 16, 24, 3) and patch.dtype == np.uint8
    # Only the block: neither the black border nor the white column.
    assert (patch == np.array([10, 200, 30], np.uint8)).all()
    np.testing.assert_array_equal(results['query_patch_aug'],
                                  [IDENTITY_AUG_PARAMS])


BLOCK = np.array([10, 200, 30], np.uint8)


def test_crop_is_padded_to_a_square_by_default(query_file):
    """CoAE's crop: the 30 x 20 block centred in a black 30 x 30 square
    (5 rows above, 5 below), then resized (here to its own size)."""
    transform = LoadOneShotQuery(patch_size=30, augment=False)
    assert transform.pad_to_square
    patch = transform(
        dict(query_img_path=query_file, query_bbox=[20., 10., 50.,
                                                    30.]))['query_patches'][0]
    assert patch.shape == (30, 30, 3)
    assert (patch[:5] == 0).all() and (patch[25:] == 0).all()
    assert (patch[5:25] == BLOCK).all()
    # A tall box (x 20..29, y 10..29, 10 x 20): 5 black columns each side.
    patch = LoadOneShotQuery(
        patch_size=20, augment=False)(dict(
            query_img_path=query_file, query_bbox=[20., 10., 30.,
                                                   30.]))['query_patches'][0]
    assert (patch[:, :5] == 0).all() and (patch[:, 15:] == 0).all()
    assert (patch[:, 5:15] == BLOCK).all()
    assert 'pad_to_square=True' in repr(transform)


def test_pad_to_square_places_the_crop_as_coae():
    """Offset ``side // 2 - size // 2`` along the shorter side, zeros
    around; a square is left as it is."""
    crop = np.arange(1, 2 * 5 * 3 + 1, dtype=np.uint8).reshape(2, 5, 3)
    square = pad_to_square(crop)
    assert square.shape == (5, 5, 3) and square.dtype == np.uint8
    # 5 // 2 - 2 // 2 = 1 row above, 2 below.
    np.testing.assert_array_equal(square[1:3], crop)
    assert (square[[0, 3, 4]] == 0).all()
    tall = pad_to_square(np.full((7, 2, 3), 9, np.uint8), pad_val=5)
    assert tall.shape == (7, 7, 3)
    # 7 // 2 - 2 // 2 = 2 columns left, 3 right.
    assert (tall[:, 2:4] == 9).all()
    assert (tall[:, [0, 1, 4, 5, 6]] == 5).all()
    same = np.ones((4, 4, 3), np.uint8)
    np.testing.assert_array_equal(pad_to_square(same), same)


def test_crop_window_rounds_outwards_and_clips():
    assert LoadOneShotQuery.crop_box([2.4, 3.6, 10.2, 20.], 100,
                                     50).tolist() == [[2, 3, 11, 20]]
    assert LoadOneShotQuery.crop_box([-5, -1, 120, 70], 100,
                                     50).tolist() == [[0, 0, 100, 50]]
    # A degenerate box still gives one pixel.
    assert LoadOneShotQuery.crop_box([7, 7, 7, 7], 100,
                                     50).tolist() == [[7, 7, 8, 8]]


def test_augmentation_is_drawn_as_for_pretraining_patches(query_file):
    transform = LoadOneShotQuery(patch_size=32, augment=True)
    np.random.seed(5)
    params = transform(
        dict(query_img_path=query_file, query_bbox=[0, 0, 80,
                                                    60]))['query_patch_aug']
    patcher = QueryPatchTransform(num_patches=1)
    np.random.seed(5)
    expected = patcher._draw_aug_params()
    assert params.shape == (1, NUM_AUG_PARAMS)
    np.testing.assert_array_equal(params, expected)
    assert not np.array_equal(params[0], IDENTITY_AUG_PARAMS)


def test_augmentation_draw_is_cached_by_cache_random_params(query_file):
    """Inside ``cache_random_params`` the same pipeline applied twice draws
    the augmentation once (e.g. to treat several images alike)."""
    transform = LoadOneShotQuery(patch_size=32, augment=True)
    results = dict(query_img_path=query_file, query_bbox=[0, 0, 80, 60])
    np.random.seed(0)
    with cache_random_params(transform):
        first = transform(dict(results))['query_patch_aug']
        again = transform(dict(results))['query_patch_aug']
    np.testing.assert_array_equal(first, again)
    np.random.seed(0)
    other = [transform(dict(results))['query_patch_aug']
             for _ in range(2)]  # outside the context: fresh draws
    np.testing.assert_array_equal(other[0], first)
    assert not np.array_equal(other[0], other[1])


def test_missing_keys_and_repr(query_file):
    transform = LoadOneShotQuery()
    with pytest.raises(KeyError, match='query_bbox.*OneShotVOCDataset'):
        transform(dict(query_img_path=query_file))
    assert repr(transform).startswith(
        'LoadOneShotQuery(patch_size=(128, 128), augment=True')


def test_augment_dict_configures_the_draw(query_file):
    transform = LoadOneShotQuery(
        patch_size=16, augment=dict(jitter_prob=1.0, blur_prob=0.0))
    results = dict(query_img_path=query_file, query_bbox=[0, 0, 80, 60])
    for seed in range(5):
        np.random.seed(seed)
        aug = transform(dict(results))['query_patch_aug']
        assert aug[0, 0] == 1 and aug[0, 10] == 0
    assert 'jitter_prob=1.0, gray_prob=0.2, blur_prob=0.0' in repr(transform)
