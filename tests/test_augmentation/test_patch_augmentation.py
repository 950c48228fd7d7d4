import colorsys
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from mmdet_updetr.augmentation import (AUG_COL, IDENTITY_AUG_PARAMS,
                                       NUM_AUG_PARAMS, augment_patches)
from mmdet_updetr.augmentation import patch_augmentation as pa


def pixel(r, g, b, size=(1, 1)):
    """A (1, 3, H, W) image of one colour."""
    return torch.tensor([r, g, b],
                        dtype=torch.float32).view(1, 3, 1,
                                                  1).repeat(1, 1, *size)


def params(num=1, **values):
    out = torch.tensor(IDENTITY_AUG_PARAMS).repeat(num, 1)
    for name, value in values.items():
        out[:, AUG_COL[name]] = torch.as_tensor(value, dtype=torch.float32)
    return out


def test_brightness_literal():
    out = pa.adjust_brightness(pixel(0.5, 0.25, 0.9), torch.tensor([1.2]))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.6, 0.3, 1.0]))
    out = pa.adjust_brightness(pixel(0.5, 0.25, 0.9), torch.tensor([0.6]))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.3, 0.15, 0.54]))


def test_contrast_against_hand_computed_mean():
    img = torch.tensor([[[0.2, 1.0]], [[0.4, 0.0]], [[0.6, 0.5]]]).unsqueeze(0)
    # Gray: 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6 = 0.3630 and
    # 0.299 * 1.0 + 0.587 * 0.0 + 0.114 * 0.5 = 0.3560; mean 0.3595.
    mean = 0.3595
    out = pa.adjust_contrast(img, torch.tensor([0.5]))
    expected = 0.5 * img + 0.5 * mean
    torch.testing.assert_close(out, expected)
    out = pa.adjust_contrast(img, torch.tensor([1.4]))
    torch.testing.assert_close(out, (1.4 * img - 0.4 * mean).clamp(0, 1))


def test_saturation():
    img = pixel(0.8, 0.4, 0.2)
    gray = 0.299 * 0.8 + 0.587 * 0.4 + 0.114 * 0.2
    out = pa.adjust_saturation(img, torch.tensor([0.0]))
    torch.testing.assert_close(out.flatten(), torch.full((3, ), gray))
    out = pa.adjust_saturation(img, torch.tensor([1.4]))
    expected = (1.4 * torch.tensor([0.8, 0.4, 0.2]) - 0.4 * gray).clamp(0, 1)
    torch.testing.assert_close(out.flatten(), expected)


def test_hue_red_to_cyan_and_gray_unchanged():
    out = pa.adjust_hue(pixel(1.0, 0.0, 0.0), torch.tensor([0.5]))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 1.0, 1.0]))
    out = pa.adjust_hue(pixel(1.0, 0.0, 0.0), torch.tensor([1 / 3]))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 1.0, 0.0]))
    gray = pixel(0.3, 0.3, 0.3)
    torch.testing.assert_close(pa.adjust_hue(gray, torch.tensor([0.2])), gray)


def test_hue_against_colorsys():
    img = torch.rand(3, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    img[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.2])  # tie of max channels
    shifts = torch.tensor([0.1, -0.07, 0.5])
    out = pa.adjust_hue(img, shifts)
    for n in range(3):
        for i in range(4):
            for j in range(5):
                hue, sat, val = colorsys.rgb_to_hsv(*img[n, :, i, j].tolist())
                expected = colorsys.hsv_to_rgb((hue + shifts[n].item()) % 1.0,
                                               sat, val)
                np.testing.assert_allclose(
                    out[n, :, i, j].numpy(), expected, atol=1e-5)


def test_grayscale_weights_and_equal_channels():
    out = pa.to_grayscale(pixel(1.0, 0.5, 0.25, size=(2, 3)))
    assert out.shape == (1, 3, 2, 3)
    expected = 0.299 * 1.0 + 0.587 * 0.5 + 0.114 * 0.25
    torch.testing.assert_close(out, torch.full_like(out, expected))


def gaussian_2d(sigma, size):
    """A centred delta blurred by hand: normalised outer product of a
    Gaussian of radius ceil(3 sigma)."""
    radius = math.ceil(3 * sigma)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-offsets**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    out = np.zeros((size, size))
    center = size // 2
    out[center - radius:center + radius + 1,
        center - radius:center + radius + 1] = np.outer(kernel, kernel)
    return out


@pytest.mark.parametrize('sigma', [0.1, 0.5, 1.0, 1.7, 2.0])
def test_blur_of_a_delta_is_the_kernel(sigma):
    size = 31
    img = torch.zeros(1, 3, size, size)
    img[:, :, size // 2, size // 2] = 1.0
    out = pa.gaussian_blur(img, torch.tensor([sigma]))
    expected = gaussian_2d(sigma, size)
    for channel in range(3):
        np.testing.assert_allclose(
            out[0, channel].numpy(), expected, atol=1e-6)
    assert out.sum().item() == pytest.approx(3.0, abs=1e-4)


def test_blur_batched_sigmas_and_reflect_padding():
    size = 31
    img = torch.zeros(2, 3, size, size)
    img[:, :, size // 2, size // 2] = 1.0
    out = pa.gaussian_blur(img, torch.tensor([0.4, 2.0]))
    np.testing.assert_allclose(
        out[0, 0].numpy(), gaussian_2d(0.4, size), atol=1e-6)
    np.testing.assert_allclose(
        out[1, 0].numpy(), gaussian_2d(2.0, size), atol=1e-6)
    # Reflect padding ("dcb|abcd|cba") on a random image, checked against
    # scipy's "mirror" mode (the same padding) with radius ceil(3 sigma).
    img = torch.rand(2, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    sigmas = [0.7, 1.9]
    out = pa.gaussian_blur(img, torch.tensor(sigmas))
    for n, sigma in enumerate(sigmas):
        for channel in range(3):
            expected = ndimage.gaussian_filter(
                img[n, channel].double().numpy(),
                sigma,
                mode='mirror',
                radius=math.ceil(3 * sigma))
            np.testing.assert_allclose(
                out[n, channel].numpy(), expected, atol=1e-6)
    constant = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(
        pa.gaussian_blur(constant, torch.tensor([2.0])), constant)


def manual(img, ops):
    for op, factor in ops:
        img = op(img, torch.tensor([factor]))
    return img


def test_augment_applies_ops_in_the_given_order():
    img = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    factors = dict(brightness=1.3, contrast=0.7, saturation=1.2, hue=0.08)
    ops = [(pa.adjust_brightness, 1.3), (pa.adjust_contrast, 0.7),
           (pa.adjust_saturation, 1.2), (pa.adjust_hue, 0.08)]
    results = []
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        prm = params(jitter=1, **factors)
        prm[0, 5:9] = torch.tensor(order, dtype=torch.float32)
        out = augment_patches(img, prm)
        torch.testing.assert_close(out, manual(img, [ops[i] for i in order]))
        results.append(out)
    assert not torch.allclose(results[0], results[1])


def test_augment_flags():
    img = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    # The identity and "jitter off" (whatever the factors) change nothing.
    torch.testing.assert_close(augment_patches(img, params(4)), img)
    off = params(4, jitter=0, brightness=1.4, hue=0.1)
    torch.testing.assert_close(augment_patches(img, off), img)
    prm = params(4, gray=[1, 0, 1, 0], blur=[0, 0, 1, 1], sigma=[0, 0, 1, 2])
    out = augment_patches(img, prm)
    for n in (0, 2):  # grayscale: equal channels
        torch.testing.assert_close(out[n, 0], out[n, 1])
        torch.testing.assert_close(out[n, 1], out[n, 2])
    torch.testing.assert_close(out[1], img[1])
    torch.testing.assert_close(
        out[2:3],
        pa.gaussian_blur(pa.to_grayscale(img[2:3]), torch.tensor([1.0])))
    torch.testing.assert_close(out[3:],
                               pa.gaussian_blur(img[3:], torch.tensor([2.0])))
    assert out.min() >= 0 and out.max() <= 1
    # The input is not modified.
    assert not torch.equal(out, img)


def test_augment_checks_the_parameter_shape():
    with pytest.raises(ValueError, match=str(NUM_AUG_PARAMS)):
        augment_patches(torch.rand(2, 3, 8, 8), torch.zeros(2, 5))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_apply_is_float32_under_autocast(dtype):
    """Under CPU autocast the blur's conv2d would run in low precision and
    the index put of its result into the float32 batch used to fail."""
    np.random.seed(0)
    prm = torch.from_numpy(pa.QueryPatchAugmentation(blur_prob=1.0).draw(16))
    img = torch.rand(16, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    expected = augment_patches(img, prm)
    with torch.autocast('cpu', dtype=dtype):
        out = augment_patches(img, prm)
    assert out.dtype == torch.float32
    assert torch.equal(out, expected)
    # A low-precision input is augmented in float32 too.
    assert augment_patches(img.to(dtype), prm).dtype == torch.float32


def test_steps_follow_the_parameters():
    prm = params(
        3, jitter=[1, 0, 1], gray=[0, 1, 1], blur=[1, 0, 0], sigma=[1.2, 0, 0])
    prm[2, 5:9] = torch.tensor([3., 0., 2., 1.])  # hue first
    # Round by round; within a round, by op id.
    steps = [(step.op, step.indices.tolist(), step.columns, step.extra)
             for step in pa.augmentation_steps(prm)]
    assert steps == [
        (pa.adjust_brightness, [0], dict(factor=1), {}),
        (pa.adjust_hue, [2], dict(factor=4), {}),
        (pa.adjust_brightness, [2], dict(factor=1), {}),
        (pa.adjust_contrast, [0], dict(factor=2), {}),
        (pa.adjust_saturation, [0, 2], dict(factor=3), {}),
        (pa.adjust_contrast, [2], dict(factor=2), {}),
        (pa.adjust_hue, [0], dict(factor=4), {}),
        (pa.to_grayscale, [1, 2], {}, {}),
        (pa.gaussian_blur, [0], dict(sigma=11), dict(max_radius=4)),
    ]
    assert pa.augmentation_steps(params(2)) == []


def test_kernels_with_a_known_radius():
    sigma = torch.tensor([0.1, 0.7, 1.9])
    assert pa.blur_radius(sigma) == 6 and pa.blur_radius(sigma[:0]) == 0
    assert pa.blur_radius(torch.tensor([1.0])) == 3
    torch.testing.assert_close(
        pa.gaussian_kernels(sigma, max_radius=6),
        pa.gaussian_kernels(sigma),
        rtol=0,
        atol=0)


def draws(augmentation, num, seed=0):
    np.random.seed(seed)
    return augmentation.draw(num)


def test_draw_follows_the_configuration():
    aug = pa.QueryPatchAugmentation.from_cfg(
        dict(
            jitter_prob=0.0,
            gray_prob=1.0,
            blur_prob=1.0,
            blur_sigma=(0.5, 0.5)))
    out = draws(aug, 50)
    assert out.shape == (50, NUM_AUG_PARAMS) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :9],
                                  np.tile(IDENTITY_AUG_PARAMS[:9], (50, 1)))
    assert (out[:, AUG_COL['gray']] == 1).all()
    assert (out[:, AUG_COL['blur']] == 1).all()
    np.testing.assert_allclose(out[:, AUG_COL['sigma']], 0.5)
    # True is the default augmentation: same seed, same draws.
    np.testing.assert_array_equal(
        draws(pa.QueryPatchAugmentation.from_cfg(True), 7),
        draws(pa.QueryPatchAugmentation(), 7))


def test_disabled_draws_the_identity_and_no_random_number():
    aug = pa.QueryPatchAugmentation.from_cfg(False)
    assert not aug.enabled
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    np.testing.assert_array_equal(
        aug.draw(3), np.tile(IDENTITY_AUG_PARAMS, (3, 1)))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(
        pa.identity_aug_params(2), np.tile(IDENTITY_AUG_PARAMS, (2, 1)))


def test_invalid_configurations():
    with pytest.raises(ValueError, match='jitter'):
        pa.QueryPatchAugmentation(jitter=(0.4, 0.4, 0.4, 0.7))
    with pytest.raises(ValueError, match='jitter'):
        pa.QueryPatchAugmentation(jitter=(0.4, 0.4, 0.4))
    with pytest.raises(ValueError, match='gray_prob'):
        pa.QueryPatchAugmentation(gray_prob=1.5)
    with pytest.raises(ValueError, match='blur_sigma'):
        pa.QueryPatchAugmentation(blur_sigma=(2.0, 0.1))
    with pytest.raises(TypeError, match='blur_porb.*QueryPatchAugmentation'):
        pa.QueryPatchAugmentation.from_cfg(dict(blur_porb=0.5))
    with pytest.raises(TypeError, match='augment must be'):
        pa.QueryPatchAugmentation.from_cfg('yes')


def test_repr():
    assert repr(pa.QueryPatchAugmentation(gray_prob=0.1)) == (
        'QueryPatchAugmentation(enabled=True, jitter=(0.4, 0.4, 0.4, 0.1), '
        'jitter_prob=0.8, gray_prob=0.1, blur_prob=0.5, '
        'blur_sigma=(0.1, 2.0))')
