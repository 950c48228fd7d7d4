# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Good and bad image files, written for the loading tests.

Smooth random images (resampling barely changes them), their encodings,
a JPEG with an EXIF orientation tag, a truncated JPEG, and a folder holding
every kind of file the loader must decode or skip.
"""
import io
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
from PIL import Image


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random BGR uint8 image (resampling barely changes it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def encode(img: np.ndarray, ext: str = '.png') -> bytes:
    """The bytes of ``img`` encoded by OpenCV as ``ext``."""
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def exif_rotated_jpeg(img_bgr: np.ndarray, orientation: int = 6) -> bytes:
    """A JPEG whose pixels are ``img_bgr`` with an EXIF orientation tag."""
    pil_img = Image.fromarray(img_bgr[..., ::-1].copy())
    exif = pil_img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil_img.save(buf, 'JPEG', quality=95, exif=exif.tobytes())
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG cut inside its image data, which OpenCV still decodes (the
    missing rows come out gray) unless the loader checks the markers."""
    rng = np.random.default_rng(0)
    data = encode(rng.integers(0, 256, (120, 160, 3), np.uint8), '.jpg')
    return data[:len(data) * 3 // 5]


def write_good_and_bad(folder: Path) -> Dict[str, List[str]]:
    """Write every kind of file the loader must handle into ``folder``.

    Args:
        folder (Path): Created if missing.

    Returns:
        dict: ``bad`` and ``good`` lists of file names.
    """
    folder.mkdir(parents=True, exist_ok=True)
    deep = np.linspace(0, 65535, 40 * 50).reshape(40, 50).astype(np.uint16)
    rgba = np.dstack([smooth_image(40, 50, seed=6), np.full((40, 50), 100)])
    palette = io.BytesIO()
    pil_img = Image.fromarray(smooth_image(40, 50, seed=7))
    pil_img.convert('P').save(palette, 'PNG')
    files = dict([
        ('bad_truncated.jpg', truncated_jpeg()),
        ('bad_text.jpg', b'this is not an image at all\n' * 10),
        ('bad_empty.jpg', b''),
        ('bad_tiny.png', encode(smooth_image(10, 10))),
        ('bad_side16.png', encode(smooth_image(16, 40))),
        ('good_a.jpg', encode(smooth_image(48, 64, seed=1), '.jpg')),
        ('good_b.png', encode(smooth_image(40, 56, seed=2))),
        ('good_c.JPEG', encode(smooth_image(64, 48, seed=3), '.jpg')),
        ('good_16bit.png', encode(deep)),
        ('good_gray.png', encode(smooth_image(40, 50, seed=4)[..., 0])),
        ('good_exif.jpg', exif_rotated_jpeg(smooth_image(40, 60, seed=5))),
        ('good_rgba.png', encode(rgba.astype(np.uint8))),
        ('good_palette.png', palette.getvalue()),
    ])
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return dict(
        bad=sorted(n for n in files if n.startswith('bad')),
        good=sorted(n for n in files if n.startswith('good')))
