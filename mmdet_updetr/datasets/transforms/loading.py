"""Image loading that never stops a run on a bad file."""
import io
import logging
from collections import deque
from typing import Deque, List, Optional, Set, Tuple

import cv2
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmengine.logging import print_log
from PIL import Image, ImageOps

# Files already reported by this process, so each is reported once.
_REPORTED_FILES: Set[str] = set()
# Every skip in this process, (path, reason), until pop_skipped_images
# takes them (SkippedFilesHook does, batch by batch); bounded, in case none
# does.
_SKIPPED: Deque[Tuple[str, str]] = deque(maxlen=100000)

JPEG_SOI = b'\xff\xd8'  # start of image
JPEG_SOS = b'\xff\xda'  # start of scan
JPEG_EOI = b'\xff\xd9'  # end of image
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_IEND = b'IEND'


def warn_bad_image(path: str, reason: str) -> None:
    """Log a warning about a skipped image, once per file and process, and
    record the skip for :func:`pop_skipped_images`.

    Args:
        path (str): The image's path.
        reason (str): Why it is skipped.
    """
    path = str(path)
    _SKIPPED.append((path, reason))
    if path in _REPORTED_FILES:
        return
    _REPORTED_FILES.add(path)
    print_log(
        f'Skipping image {path}: {reason}. Another image is drawn in its '
        'place.',
        logger='current',
        level=logging.WARNING)


def pop_skipped_images() -> List[Tuple[str, str]]:
    """Take the images this process skipped since the last call.

    Returns:
        list[tuple[str, str]]: ``(path, reason)`` per skip, in order.
    """
    skipped = list(_SKIPPED)
    _SKIPPED.clear()
    return skipped


def find_truncation(data: bytes) -> Optional[str]:
    """Detect a truncated JPEG or PNG from its markers.

    OpenCV decodes a truncated JPEG without an error (the missing rows come
    out gray), so the end is checked before decoding: a JPEG must have an
    end-of-image marker after its last start-of-scan marker (entropy-coded
    data never contains ``FF D9``; data appended after the image is
    allowed), and a PNG must contain its ``IEND`` chunk.

    Args:
        data (bytes): The file's content.

    Returns:
        str | None: Why the file is truncated, or None if it looks whole.
    """
    if data.startswith(JPEG_SOI):
        last_scan = data.rfind(JPEG_SOS)
        if last_scan >= 0 and data.find(JPEG_EOI, last_scan + 2) < 0:
            return 'truncated JPEG (no end-of-image marker)'
    elif data.startswith(PNG_SIGNATURE):
        if data.rfind(PNG_IEND) < 0:
            return 'truncated PNG (no IEND chunk)'
    return None


def _decode_with_pillow(data: bytes) -> np.ndarray:
    """Decode what OpenCV cannot (e.g. GIF) with Pillow, as BGR uint8."""
    with Image.open(io.BytesIO(data)) as pil_img:
        pil_img.load()
        pil_img = ImageOps.exif_transpose(pil_img)
        if pil_img.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
            arr = np.asarray(pil_img, dtype=np.float64)
            scale = 1 / 257 if pil_img.mode.startswith('I;16') else 1.0
            arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
            return np.repeat(arr[..., None], 3, axis=2)
        rgb = np.asarray(pil_img.convert('RGB'))
    return np.ascontiguousarray(rgb[..., ::-1])


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to a 3-channel BGR uint8 array.

    OpenCV's ``IMREAD_COLOR`` applies the EXIF orientation and turns gray,
    RGBA (alpha dropped, as ``PIL.Image.convert('RGB')`` does), palette and
    16-bit images into 8-bit BGR. Formats OpenCV cannot read go to Pillow.

    Args:
        data (bytes): The file's content.

    Returns:
        np.ndarray: The image, of shape (H, W, 3) and dtype uint8.

    Raises:
        ValueError: If the file is empty, truncated or not an image.
    """
    if len(data) == 0:
        raise ValueError('empty file (0 bytes)')
    truncation = find_truncation(data)
    if truncation is not None:
        raise ValueError(truncation)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        try:
            img = _decode_with_pillow(data)
        except Exception as err:
            raise ValueError(f'not a decodable image ({err})') from err
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'decoded to an unexpected array {img.shape} '
                         f'{img.dtype}')
    return img


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """Load an image as 3-channel BGR uint8, or skip it if it is bad.

    A file that cannot be read or decoded (missing, zero bytes, truncated,
    not an image) or whose shorter side is at most ``min_side`` pixels makes
    the transform return None, so that mmengine's ``BaseDataset`` draws
    another image in its place; a warning naming the file is logged once per
    file and process. Gray, RGBA, palette, 16-bit and EXIF-rotated images
    become upright 3-channel BGR uint8 images, see :func:`decode_image`.

    Required Keys:

    - img_path

    Modified Keys:

    - img
    - img_shape
    - ori_shape

    Args:
        min_side (int): Images whose shorter side is at most this many
            pixels are skipped. Defaults to 16.
        to_float32 (bool): Convert the image to float32. Defaults to False.
        backend_args (dict, optional): Arguments to instantiate the file
            backend, see :func:`mmengine.fileio.get`. Defaults to None.
    """

    def __init__(self,
                 min_side: int = 16,
                 to_float32: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(to_float32=to_float32, backend_args=backend_args)
        self.min_side = min_side

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image in ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict | None: The result dict with the image, or None if the file
            is bad.
        """
        filename = results['img_path']
        try:
            img_bytes = fileio.get(filename, backend_args=self.backend_args)
            img = decode_image(img_bytes)
        except Exception as err:
            warn_bad_image(filename, str(err) or type(err).__name__)
            return None
        height, width = img.shape[:2]
        if min(height, width) <= self.min_side:
            warn_bad_image(
                filename, f'too small ({width}x{height}, a side is at most '
                f'{self.min_side} px)')
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(min_side={self.min_side}, '
                f'to_float32={self.to_float32}, '
                f'backend_args={self.backend_args})')
