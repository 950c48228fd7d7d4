"""Batched query-patch augmentation of UP-DETR, in pure PyTorch.

The reference implementation augments every query patch on the CPU with
torchvision (``ColorJitter(0.4, 0.4, 0.4, 0.1)`` with p=0.8,
``RandomGrayscale(p=0.2)`` and MoCo's PIL Gaussian blur with p=0.5). Here the
random parameters are drawn per patch on the CPU by
:class:`mmdet_updetr.datasets.transforms.QueryPatchTransform` and stored as a
float32 array of :data:`NUM_AUG_PARAMS` columns; the pixel work runs batched
on the model's device in :class:`UPDETRDataPreprocessor` through
:func:`augment_patches`.

Column layout of the parameter array (one row per patch):

====  ==============  =====================================================
col   name            meaning
====  ==============  =====================================================
0     ``jitter``      1: apply the colour jitter (columns 1-8), 0: skip it
1     ``brightness``  brightness factor (1 = identity), in [0.6, 1.4]
2     ``contrast``    contrast factor (1 = identity), in [0.6, 1.4]
3     ``saturation``  saturation factor (1 = identity), in [0.6, 1.4]
4     ``hue``         hue shift in turns (0 = identity), in [-0.1, 0.1]
5-8   ``order0-3``    column 5 + k: the id of the k-th jitter op applied, a
                      permutation of 0-3 (0 = brightness, 1 = contrast,
                      2 = saturation, 3 = hue)
9     ``gray``        1: convert to 3-channel grayscale, 0: skip
10    ``blur``        1: apply the Gaussian blur, 0: skip
11    ``sigma``       the blur's standard deviation in pixels, in [0.1, 2.0]
====  ==============  =====================================================

Patches without jitter carry the identity factors (1, 1, 1, 0), the order
(0, 1, 2, 3) and, without blur, sigma 0 (see :data:`IDENTITY_AUG_PARAMS`).
The ops run in that order (jitter, grayscale, blur), as the reference's
``transforms.Compose`` does. Brightness blends with black, contrast with the
mean of the whole patch's grayscale, saturation with the grayscale image,
hue rotates the HSV hue, as torchvision's tensor ops do: on float RGB
images in [0, 1], clamped to [0, 1] (the reference works on uint8 PIL
images; nothing is rounded between ops here). Grayscale uses ITU-R 601-2
luma ``0.299 R + 0.587 G + 0.114 B`` (PIL's weights, which the reference
used). The blur is a true Gaussian (MoCo's PIL blur approximates it with
box blurs): a separable kernel of radius ``ceil(3 * sigma)``, normalised to
sum to 1, with reflect padding (``dcb|abcd|cba``, the edge not repeated).
"""
from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

AUG_PARAM_NAMES = ('jitter', 'brightness', 'contrast', 'saturation', 'hue',
                   'order0', 'order1', 'order2', 'order3', 'gray', 'blur',
                   'sigma')
NUM_AUG_PARAMS = len(AUG_PARAM_NAMES)
AUG_COL = {name: i for i, name in enumerate(AUG_PARAM_NAMES)}
# Columns 1-4 hold the factors of the jitter ops 0-3; 5-8 their order.
JITTER_FACTOR_COLS = (1, 2, 3, 4)
JITTER_ORDER_COLS = (5, 6, 7, 8)
# The parameters of a patch that is not augmented.
IDENTITY_AUG_PARAMS: Tuple[float, ...] = (0., 1., 1., 1., 0., 0., 1., 2., 3.,
                                          0., 0., 0.)

GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _per_sample(factor: Tensor) -> Tensor:
    """Reshape per-image factors of shape (N, ) to (N, 1, 1, 1)."""
    return factor.reshape(-1, 1, 1, 1)


def _blend(img1: Tensor, img2: Tensor, ratio: Tensor) -> Tensor:
    """``ratio * img1 + (1 - ratio) * img2`` clamped to [0, 1].

    Args:
        img1 (Tensor): Images of shape (N, 3, H, W).
        img2 (Tensor): Images broadcastable to ``img1``.
        ratio (Tensor): Per-image ratios of shape (N, ).

    Returns:
        Tensor: Blended images of shape (N, 3, H, W).
    """
    ratio = _per_sample(ratio).to(img1.dtype)
    return (ratio * img1 + (1.0 - ratio) * img2).clamp_(0.0, 1.0)


def rgb_to_gray(img: Tensor) -> Tensor:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` of RGB images.

    Args:
        img (Tensor): RGB images of shape (N, 3, H, W).

    Returns:
        Tensor: Gray images of shape (N, 1, H, W).
    """
    weights = img.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (img * weights).sum(dim=1, keepdim=True)


def adjust_brightness(img: Tensor, factor: Tensor) -> Tensor:
    """Multiply images by per-image factors (blend with black).

    Args:
        img (Tensor): RGB images in [0, 1] of shape (N, 3, H, W).
        factor (Tensor): Brightness factors of shape (N, ), 1 = identity.

    Returns:
        Tensor: Adjusted images of shape (N, 3, H, W).
    """
    return (img * _per_sample(factor).to(img)).clamp_(0.0, 1.0)


def adjust_contrast(img: Tensor, factor: Tensor) -> Tensor:
    """Blend images with the mean of their grayscale version.

    Args:
        img (Tensor): RGB images in [0, 1] of shape (N, 3, H, W).
        factor (Tensor): Contrast factors of shape (N, ), 1 = identity.

    Returns:
        Tensor: Adjusted images of shape (N, 3, H, W).
    """
    mean = rgb_to_gray(img).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(img, mean, factor)


def adjust_saturation(img: Tensor, factor: Tensor) -> Tensor:
    """Blend images with their grayscale version.

    Args:
        img (Tensor): RGB images in [0, 1] of shape (N, 3, H, W).
        factor (Tensor): Saturation factors of shape (N, ), 1 = identity.

    Returns:
        Tensor: Adjusted images of shape (N, 3, H, W).
    """
    return _blend(img, rgb_to_gray(img), factor)


def adjust_hue(img: Tensor, factor: Tensor) -> Tensor:
    """Rotate the hue of images by per-image shifts (in turns).

    This is the HSV hue rotation of torchvision's ``adjust_hue`` (RGB ->
    HSV, ``h = (h + factor) mod 1``, HSV -> RGB) in closed form: value
    ``v = max(r, g, b)`` and chroma ``c = v - min(r, g, b)`` are kept, the
    hue sextant ``H = 6 h`` is ``(g - b) / c``, ``2 + (b - r) / c`` or
    ``4 + (r - g) / c`` when ``v`` is r, g or b, and channel ``n`` (5, 3, 1
    for R, G, B) becomes ``v - c clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + H + 6 factor) mod 6``. Gray pixels (``c = 0``) are unchanged.

    Args:
        img (Tensor): RGB images in [0, 1] of shape (N, 3, H, W).
        factor (Tensor): Hue shifts of shape (N, ), 0 = identity;
            0.5 turns red into cyan.

    Returns:
        Tensor: Adjusted images of shape (N, 3, H, W).
    """
    r, g, b = img.unbind(dim=1)
    maxc = img.amax(dim=1, keepdim=True)
    chroma = maxc - img.amin(dim=1, keepdim=True)
    sextant = torch.where(
        r == maxc[:, 0], g - b,
        torch.where(g == maxc[:, 0], 2.0 * chroma[:, 0] + b - r,
                    4.0 * chroma[:, 0] + r - g))
    sextant = sextant / torch.where(chroma[:, 0] > 0, chroma[:, 0], 1.0)
    shift = 6.0 * factor.to(img).view(-1, 1, 1, 1)
    n = img.new_tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1)
    k = torch.remainder(n + sextant.unsqueeze(1) + shift, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return (maxc - chroma * ramp).clamp_(0.0, 1.0)


def to_grayscale(img: Tensor) -> Tensor:
    """Convert RGB images to 3-channel grayscale (equal channels).

    Args:
        img (Tensor): RGB images of shape (N, 3, H, W).

    Returns:
        Tensor: Gray images of shape (N, 3, H, W).
    """
    return rgb_to_gray(img).expand_as(img).contiguous()


def gaussian_kernels(sigma: Tensor) -> Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma.

    The kernel of ``sigma`` has radius ``ceil(3 * sigma)``; all kernels are
    zero-padded to the largest radius so that they share one length.

    Args:
        sigma (Tensor): Standard deviations in pixels of shape (N, ).

    Returns:
        Tensor: Kernels of shape (N, 2 * R + 1), R the largest radius.
    """
    sigma = sigma.float().clamp_min(1e-6)
    radii = torch.ceil(3.0 * sigma)
    max_radius = int(radii.max().item()) if sigma.numel() else 0
    offsets = torch.arange(
        -max_radius, max_radius + 1, device=sigma.device,
        dtype=sigma.dtype).view(1, -1)
    kernels = torch.exp(-offsets**2 / (2.0 * sigma.view(-1, 1)**2))
    kernels = kernels * (offsets.abs() <= radii.view(-1, 1))
    return kernels / kernels.sum(dim=1, keepdim=True)


def gaussian_blur(img: Tensor, sigma: Tensor) -> Tensor:
    """Blur each image with its own Gaussian (separable, reflect padding).

    Args:
        img (Tensor): Images of shape (N, C, H, W).
        sigma (Tensor): Standard deviations in pixels of shape (N, ).

    Returns:
        Tensor: Blurred images of shape (N, C, H, W).
    """
    num, channels, height, width = img.shape
    if num == 0:
        return img
    kernels = gaussian_kernels(sigma.to(img.device)).to(img.dtype)
    radius = (kernels.shape[1] - 1) // 2
    if radius >= min(height, width):
        raise ValueError(f'Blur radius {radius} needs images larger than '
                         f'{height}x{width} for reflect padding.')
    weight = kernels.repeat_interleave(channels, dim=0)
    out = img.reshape(1, num * channels, height, width)
    out = F.pad(out, (radius, radius, 0, 0), mode='reflect')
    out = F.conv2d(
        out, weight.view(num * channels, 1, 1, -1), groups=num * channels)
    out = F.pad(out, (0, 0, radius, radius), mode='reflect')
    out = F.conv2d(
        out, weight.view(num * channels, 1, -1, 1), groups=num * channels)
    return out.view(num, channels, height, width).clamp_(0.0, 1.0)


# The jitter ops by id, as in torchvision's ColorJitter.
JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation,
              adjust_hue)


def _apply_where(img: Tensor, mask: Tensor, op: Callable, *args:
                 Tensor) -> Tensor:
    """Apply ``op`` in place to the images selected by a boolean mask."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() > 0:
        img[idx] = op(img[idx], *(arg[idx] for arg in args))
    return img


def color_jitter(img: Tensor, params: Tensor) -> Tensor:
    """The colour jitter: brightness, contrast, saturation and hue.

    Each image gets its own factors and op order (columns 1-8 of the
    parameters); images whose ``jitter`` column is 0 are left untouched.

    Args:
        img (Tensor): RGB images in [0, 1] of shape (N, 3, H, W).
        params (Tensor): Augmentation parameters of shape (N, P).

    Returns:
        Tensor: Jittered images of shape (N, 3, H, W).
    """
    enabled = params[:, AUG_COL['jitter']] > 0.5
    order = params[:, list(JITTER_ORDER_COLS)].round().long()
    for step in range(len(JITTER_OPS)):
        for op_id, op in enumerate(JITTER_OPS):
            mask = enabled & (order[:, step] == op_id)
            img = _apply_where(img, mask, op,
                               params[:, JITTER_FACTOR_COLS[op_id]])
    return img


def augment_patches(img: Tensor, params: Tensor) -> Tensor:
    """Augment query patches: colour jitter, grayscale, Gaussian blur.

    Args:
        img (Tensor): RGB patches in [0, 1] of shape (N, 3, H, W).
        params (Tensor): Per-patch parameters of shape (N, P) with
            ``P = NUM_AUG_PARAMS`` in the layout of this module's docstring.

    Returns:
        Tensor: Augmented patches in [0, 1] of shape (N, 3, H, W), a new
        tensor (the input is not modified).
    """
    if params.shape != (img.shape[0], NUM_AUG_PARAMS):
        raise ValueError(f'Expected augmentation parameters of shape '
                         f'({img.shape[0]}, {NUM_AUG_PARAMS}), got '
                         f'{tuple(params.shape)}.')
    img = img.clone()
    params = params.to(device=img.device, dtype=torch.float32)
    img = color_jitter(img, params)
    img = _apply_where(img, params[:, AUG_COL['gray']] > 0.5, to_grayscale)
    img = _apply_where(img, params[:, AUG_COL['blur']] > 0.5, gaussian_blur,
                       params[:, AUG_COL['sigma']])
    return img
