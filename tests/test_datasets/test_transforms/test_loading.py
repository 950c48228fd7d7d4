import io
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from mmdet_updetr.datasets.transforms import SafeLoadImageFromFile
from mmdet_updetr.datasets.transforms.loading import (decode_image,
                                                      find_truncation)
from mmdet_updetr.testing import (encode, exif_rotated_jpeg, smooth_image,
                                  truncated_jpeg)


def load(path, **kwargs):
    return SafeLoadImageFromFile(**kwargs)(dict(img_path=str(path)))


def test_good_files_become_bgr_uint8(mixed_folder):
    folder, names = mixed_folder
    for name in names['good']:
        results = load(folder / name)
        img = results['img']
        assert img.dtype == np.uint8 and img.ndim == 3, name
        assert img.shape[2] == 3, name
        assert results['img_shape'] == results['ori_shape'] == img.shape[:2]


def test_gray_rgba_palette_values(tmp_path):
    color = smooth_image(30, 40)
    gray = color[..., 1]
    (tmp_path / 'gray.png').write_bytes(encode(gray))
    img = load(tmp_path / 'gray.png')['img']
    for channel in range(3):
        np.testing.assert_array_equal(img[..., channel], gray)

    rgba = np.dstack([color, np.full(gray.shape, 7, np.uint8)])
    (tmp_path / 'rgba.png').write_bytes(encode(rgba))
    np.testing.assert_array_equal(load(tmp_path / 'rgba.png')['img'], color)

    pil_palette = Image.fromarray(color[..., ::-1].copy()).convert('P')
    pil_palette.save(tmp_path / 'palette.png')
    expected = np.asarray(pil_palette.convert('RGB'))[..., ::-1]
    np.testing.assert_array_equal(
        load(tmp_path / 'palette.png')['img'], expected)


def test_16bit_png_scaled_to_8bit(tmp_path):
    values = np.array([[0, 255, 256, 4095], [32768, 40000, 65280, 65535]],
                      dtype=np.uint16)
    values = np.repeat(np.repeat(values, 10, axis=0), 10, axis=1)
    (tmp_path / 'deep.png').write_bytes(encode(values))
    img = load(tmp_path / 'deep.png')['img']
    assert img.dtype == np.uint8
    for channel in range(3):
        # The high byte: 65535 -> 255, 32768 -> 128, 255 -> 0.
        np.testing.assert_array_equal(img[..., channel], values >> 8)


def test_exif_orientation_applied(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:20, :30] = (0, 0, 255)  # red top-left quadrant
    img[20:, 30:] = (255, 0, 0)  # blue bottom-right quadrant
    # Orientation 6: the stored image is shown turned 90 degrees clockwise.
    (tmp_path / 'exif.jpg').write_bytes(exif_rotated_jpeg(img, 6))
    loaded = load(tmp_path / 'exif.jpg')['img'].astype(int)
    expected = np.rot90(img, k=-1).astype(int)  # clockwise
    assert loaded.shape == expected.shape == (60, 40, 3)
    assert np.abs(loaded - expected).mean() < 3


def test_bad_files_return_none_and_warn_once(mixed_folder, mm_caplog):
    folder, names = mixed_folder
    transform = SafeLoadImageFromFile()
    for _ in range(2):
        for name in names['bad']:
            assert transform(dict(img_path=str(folder / name))) is None, name
    messages = [r.getMessage() for r in mm_caplog.records]
    assert len(messages) == len(names['bad'])
    for name in names['bad']:
        assert sum(osp.join(str(folder), name) in m for m in messages) == 1
    reasons = ' '.join(messages)
    for reason in ('truncated JPEG', 'empty file', 'not a decodable image',
                   'too small (10x10', 'too small (40x16'):
        assert reason in reasons


def test_missing_file_is_skipped(tmp_path, mm_caplog):
    assert load(tmp_path / 'gone.jpg') is None
    assert 'gone.jpg' in mm_caplog.text


@pytest.mark.parametrize('side,ok', [(16, False), (17, True)])
def test_min_side_boundary(tmp_path, side, ok):
    (tmp_path / 'img.png').write_bytes(encode(smooth_image(side, 100)))
    assert (load(tmp_path / 'img.png') is not None) == ok
    assert load(tmp_path / 'img.png', min_side=8) is not None


def test_jpeg_markers():
    jpg = encode(smooth_image(32, 32), '.jpg')
    assert find_truncation(jpg) is None
    assert find_truncation(jpg + b'\0' * 100 + b'trailer') is None
    assert 'JPEG' in find_truncation(jpg[:-2])
    assert 'JPEG' in find_truncation(jpg[:len(jpg) * 3 // 4])
    png = encode(smooth_image(32, 32))
    assert find_truncation(png) is None
    assert 'PNG' in find_truncation(png[:-12])
    with pytest.raises(ValueError, match='(?i)truncated'):
        decode_image(jpg[:len(jpg) // 2])
    # Cut inside the image data: OpenCV alone would return an image.
    cut = truncated_jpeg()
    assert cv2.imdecode(np.frombuffer(cut, np.uint8),
                        cv2.IMREAD_COLOR) is not None
    with pytest.raises(ValueError, match='truncated JPEG'):
        decode_image(cut)
    # Data after the end of the image is fine.
    assert decode_image(jpg + b'trailing bytes').shape == (32, 32, 3)


def test_pillow_fallback_for_gif():
    img = smooth_image(24, 30)
    buf = io.BytesIO()
    Image.fromarray(img[..., ::-1].copy()).save(buf, 'GIF')
    assert cv2.imdecode(
        np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR) is None
    decoded = decode_image(buf.getvalue())
    assert decoded.shape == (24, 30, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - img).mean() < 10


def test_to_float32_and_repr(mixed_folder):
    folder, names = mixed_folder
    results = load(folder / names['good'][0], to_float32=True)
    assert results['img'].dtype == np.float32
    assert repr(SafeLoadImageFromFile(min_side=20)) == (
        'SafeLoadImageFromFile(min_side=20, to_float32=False, '
        'backend_args=None)')
