# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""The query-patch augmentation of UP-DETR: its parameters, draw and apply.

The reference implementation augments every query patch on the CPU with
torchvision (``ColorJitter(0.4, 0.4, 0.4, 0.1)`` with p=0.8,
``RandomGrayscale(p=0.2)`` and MoCo's PIL Gaussian blur with p=0.5). Here,
as mmpretrain's batch augments do, one module owns the augmentation, in two
halves that run in two places:

- the **draw** (:meth:`QueryPatchAugmentation.draw`, numpy, on the CPU):
  the dataset transforms (``QueryPatchTransform``, ``LoadOneShotQuery``)
  call it under ``cache_randomness``, so that a seed fixes the run, and
  store its parameters per patch in ``query_patch_aug``, a float32 array of
  :data:`NUM_AUG_PARAMS` columns;
- the **apply** (:func:`augment_patches`, torch): ``UPDETRDataPreprocessor``
  runs the pixel work batched on the model's device, in float32 whatever
  ``torch.autocast`` says.

This module imports neither ``mmdet_updetr.datasets`` nor
``mmdet_updetr.models``: both layers import it.

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

(The ranges are those of the default strengths.) Patches without jitter
carry the identity factors (1, 1, 1, 0), the order (0, 1, 2, 3) and,
without blur, sigma 0 (see :data:`IDENTITY_AUG_PARAMS`).
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
import contextlib
from typing import (Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import numpy as np
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


def identity_aug_params(num: int) -> np.ndarray:
    """The parameters of ``num`` patches that are not augmented.

    Args:
        num (int): Number of patches.

    Returns:
        np.ndarray: float32 array of shape (num, P), each row
        :data:`IDENTITY_AUG_PARAMS`.
    """
    return np.tile(np.asarray(IDENTITY_AUG_PARAMS, np.float32), (num, 1))


class QueryPatchAugmentation:
    """SimCLR-style augmentation of query patches, without flip.

    Colour jitter with probability ``jitter_prob`` (brightness, contrast,
    saturation and hue in a random order, as torchvision's ``ColorJitter``),
    then grayscale with probability ``gray_prob``, then a Gaussian blur of
    sigma uniform in ``blur_sigma`` with probability ``blur_prob``, drawn
    independently per patch. :meth:`draw` draws the parameters (numpy, the
    global ``np.random`` state: call it from a method under
    ``cache_randomness``); :func:`augment_patches` applies them to a batch.
    Dataset transforms build it from their ``augment`` argument with
    :meth:`from_cfg`.

    Args:
        jitter (Sequence[float]): Strengths of brightness, contrast,
            saturation and hue, as torchvision's ``ColorJitter``.
            Defaults to (0.4, 0.4, 0.4, 0.1).
        jitter_prob (float): Probability of the colour jitter.
            Defaults to 0.8.
        gray_prob (float): Probability of the grayscale conversion.
            Defaults to 0.2.
        blur_prob (float): Probability of the Gaussian blur.
            Defaults to 0.5.
        blur_sigma (Sequence[float]): Range ``(low, high)`` of the blur's
            sigma in pixels. Defaults to (0.1, 2.0).
        enabled (bool): Draw random parameters. If False every patch gets
            the identity parameters (validation, testing) and no random
            number is drawn. Defaults to True.
    """

    def __init__(self,
                 jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.2,
                 blur_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 2.0),
                 enabled: bool = True) -> None:
        if len(jitter) != 4 or min(jitter) < 0 or not jitter[3] <= 0.5:
            raise ValueError('jitter must be (brightness, contrast, '
                             f'saturation, hue<=0.5) >= 0, got {jitter}')
        for name, prob in (('jitter_prob', jitter_prob),
                           ('gray_prob', gray_prob), ('blur_prob', blur_prob)):
            if not 0 <= prob <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {prob}')
        if len(blur_sigma) != 2 or not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError('blur_sigma must be (low, high) with '
                             f'0 < low <= high, got {blur_sigma}')
        self.enabled = bool(enabled)
        self.jitter = tuple(float(j) for j in jitter)
        self.jitter_prob = jitter_prob
        self.gray_prob = gray_prob
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(float(s) for s in blur_sigma)

    @classmethod
    def from_cfg(cls, augment: Union[bool, dict]) -> 'QueryPatchAugmentation':
        """Build the augmentation of a transform's ``augment`` argument.

        Args:
            augment (bool | dict): True: the default augmentation; False:
                none (identity parameters); a dict: the arguments of this
                class, e.g. ``dict(blur_prob=0.2)``.

        Returns:
            :obj:`QueryPatchAugmentation`: The augmentation.
        """
        if isinstance(augment, bool):
            return cls(enabled=augment)
        if isinstance(augment, dict):
            try:
                return cls(**augment)
            except TypeError as err:
                raise TypeError(
                    f'augment={augment!r}: {err}. Its keys are the '
                    'arguments of QueryPatchAugmentation (jitter, '
                    'jitter_prob, gray_prob, blur_prob, blur_sigma, enabled).'
                ) from None
        raise TypeError('augment must be True, False or a dict of '
                        'QueryPatchAugmentation arguments, got '
                        f'{augment!r}')

    def draw(self, num: int) -> np.ndarray:
        """Draw the augmentation parameters of ``num`` patches.

        Uses the global ``np.random`` state: same seed, same parameters.

        Args:
            num (int): Number of patches.

        Returns:
            np.ndarray: float32 array of shape (num, P) in the layout of this
            module's docstring.
        """
        params = identity_aug_params(num)
        if not self.enabled:
            return params
        jitter = np.random.rand(num) < self.jitter_prob
        bright, contrast, sat, hue = self.jitter
        low = np.array([1 - bright, 1 - contrast, 1 - sat, -hue])
        high = np.array([1 + bright, 1 + contrast, 1 + sat, hue])
        factors = np.random.uniform(
            np.maximum(low, [0, 0, 0, -hue]), high, (num, 4))
        # A uniformly random permutation of the 4 ops for each patch.
        order = np.argsort(np.random.rand(num, 4), axis=1)
        gray = np.random.rand(num) < self.gray_prob
        blur = np.random.rand(num) < self.blur_prob
        sigma = np.random.uniform(*self.blur_sigma, num)
        params[jitter, AUG_COL['jitter']] = 1
        params[np.ix_(jitter, JITTER_FACTOR_COLS)] = factors[jitter]
        params[np.ix_(jitter, JITTER_ORDER_COLS)] = order[jitter]
        params[:, AUG_COL['gray']] = gray
        params[:, AUG_COL['blur']] = blur
        params[blur, AUG_COL['sigma']] = sigma[blur]
        return params

    def args_repr(self) -> str:
        """The arguments but ``enabled``, as ``__repr__`` lists them (the
        transforms that hold this augmentation list them after their
        ``augment=``)."""
        return (f'jitter={self.jitter}, jitter_prob={self.jitter_prob}, '
                f'gray_prob={self.gray_prob}, blur_prob={self.blur_prob}, '
                f'blur_sigma={self.blur_sigma}')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(enabled={self.enabled}, '
                f'{self.args_repr()})')


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


def gaussian_kernels(sigma: Tensor,
                     max_radius: Optional[int] = None) -> Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma.

    The kernel of ``sigma`` has radius ``ceil(3 * sigma)``; all kernels are
    zero-padded to the largest radius so that they share one length.

    Args:
        sigma (Tensor): Standard deviations in pixels of shape (N, ).
        max_radius (int, optional): The largest radius, if the caller knows
            it (see :func:`blur_radius`); computed from ``sigma`` otherwise,
            which waits for ``sigma``'s device. Defaults to None.

    Returns:
        Tensor: Kernels of shape (N, 2 * R + 1), R the largest radius.
    """
    sigma = sigma.float().clamp_min(1e-6)
    radii = torch.ceil(3.0 * sigma)
    if max_radius is None:
        max_radius = int(radii.max().item()) if sigma.numel() else 0
    offsets = torch.arange(
        -max_radius, max_radius + 1, device=sigma.device,
        dtype=sigma.dtype).view(1, -1)
    kernels = torch.exp(-offsets**2 / (2.0 * sigma.view(-1, 1)**2))
    kernels = kernels * (offsets.abs() <= radii.view(-1, 1))
    return kernels / kernels.sum(dim=1, keepdim=True)


def blur_radius(sigma: Tensor) -> int:
    """The largest kernel radius ``ceil(3 * sigma)`` of some sigmas.

    Args:
        sigma (Tensor): Standard deviations in pixels of shape (N, ), best
            on the host (on a device, reading it waits for the device).

    Returns:
        int: The largest radius, 0 for no sigma.
    """
    if not sigma.numel():
        return 0
    return int(torch.ceil(3.0 * sigma.float().clamp_min(1e-6)).max())


def gaussian_blur(img: Tensor,
                  sigma: Tensor,
                  max_radius: Optional[int] = None) -> Tensor:
    """Blur each image with its own Gaussian (separable, reflect padding).

    Args:
        img (Tensor): Images of shape (N, C, H, W).
        sigma (Tensor): Standard deviations in pixels of shape (N, ).
        max_radius (int, optional): ``blur_radius(sigma)`` if known.
            Defaults to None.

    Returns:
        Tensor: Blurred images of shape (N, C, H, W).
    """
    num, channels, height, width = img.shape
    if num == 0:
        return img
    kernels = gaussian_kernels(sigma.to(img.device), max_radius).to(img.dtype)
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


class AugStep(NamedTuple):
    """One step of :func:`augment_patches`.

    ``op(img[indices], **{name: params[indices, col]}, **extra)`` for each
    ``name, col`` of ``columns``.
    """
    op: Callable
    indices: Tensor
    columns: Dict[str, int]
    extra: Dict[str, int]


def augmentation_steps(params: Tensor) -> List[AugStep]:
    """The ops that parameters ask for, in the order they run.

    The colour jitter in 4 rounds (round ``k`` runs, on each patch whose
    ``jitter`` is 1, the op of id ``order<k>``), then grayscale, then blur;
    steps that change no patch are left out.

    Args:
        params (Tensor): Augmentation parameters of shape (N, P), on the
            host (reading them on a device waits for the device).

    Returns:
        list[:obj:`AugStep`]: The steps, their indices int64 (K, ) on the
        host.
    """
    jittered = params[:, AUG_COL['jitter']] > 0.5
    order = params[:, list(JITTER_ORDER_COLS)].round().long()
    steps = []
    for step in range(len(JITTER_OPS)):
        for op_id, op in enumerate(JITTER_OPS):
            steps.append((op, jittered & (order[:, step] == op_id),
                          dict(factor=JITTER_FACTOR_COLS[op_id])))
    steps.append((to_grayscale, params[:, AUG_COL['gray']] > 0.5, {}))
    blur = params[:, AUG_COL['blur']] > 0.5
    steps.append((gaussian_blur, blur, dict(sigma=AUG_COL['sigma'])))
    # The blur's kernel length, known here: no wait for the device there.
    radius = dict(max_radius=blur_radius(params[blur, AUG_COL['sigma']]))
    return [
        AugStep(op,
                mask.nonzero().squeeze(1), columns,
                radius if op is gaussian_blur else {})
        for op, mask, columns in steps if mask.any()
    ]


@contextlib.contextmanager
def autocast_off(device: torch.device) -> Iterator[None]:
    """Switch ``torch.autocast`` off on ``device`` (if it has autocast)."""
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device.type, enabled=False):
            yield
    else:
        yield


def augment_patches(img: Tensor, params: Tensor) -> Tensor:
    """Augment query patches: colour jitter, grayscale, Gaussian blur.

    The batched apply of :class:`QueryPatchAugmentation`'s parameters, on
    ``img``'s device, in float32 even inside ``torch.autocast`` (which it
    switches off). Each op runs once on the patches that need it; the
    choice of patches is made on the host from ``params`` (give them on the
    host: then nothing waits for the device) and sent to the device at
    once.

    Args:
        img (Tensor): RGB patches in [0, 1] of shape (N, 3, H, W).
        params (Tensor): Per-patch parameters of shape (N, P) with
            ``P = NUM_AUG_PARAMS`` in the layout of this module's docstring.

    Returns:
        Tensor: Augmented float32 patches in [0, 1] of shape (N, 3, H, W),
        a new tensor (the input is not modified).
    """
    if params.shape != (img.shape[0], NUM_AUG_PARAMS):
        raise ValueError(f'Expected augmentation parameters of shape '
                         f'({img.shape[0]}, {NUM_AUG_PARAMS}), got '
                         f'{tuple(params.shape)}.')
    steps = augmentation_steps(params.detach().to('cpu', torch.float32))
    img = img.to(torch.float32, copy=True)
    if not steps:
        return img
    # One upload of all indices, one of the parameters.
    indices = torch.cat([step.indices for step in steps]).to(
        img.device, non_blocking=True)
    indices = indices.split([len(step.indices) for step in steps])
    params = params.to(img.device, torch.float32, non_blocking=True)
    with autocast_off(img.device):
        for step, idx in zip(steps, indices):
            kwargs = {
                name: params[idx, col]
                for name, col in step.columns.items()
            }
            img[idx] = step.op(img[idx], **kwargs, **step.extra)
    return img
