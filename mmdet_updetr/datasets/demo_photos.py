"""A small folder of real photos, written from ``skimage.data`` on first use.
"""
import logging
import os
import os.path as osp
import tempfile
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .unlabeled_dataset import UnlabeledImageDataset

# Photos that scikit-image ships in its wheel (no download): name of the
# file to write -> (function of ``skimage.data``, index into its tuple).
DEMO_PHOTOS = {
    'astronaut': ('astronaut', None),
    'chelsea': ('chelsea', None),
    'coffee': ('coffee', None),
    'hubble_deep_field': ('hubble_deep_field', None),
    'immunohistochemistry': ('immunohistochemistry', None),
    'motorcycle_left': ('stereo_motorcycle', 0),
    'motorcycle_right': ('stereo_motorcycle', 1),
    'retina': ('retina', None),
    'rocket': ('rocket', None),
    'camera': ('camera', None),  # gray
    'coins': ('coins', None),  # gray
}

#: The photos held out for validation (never in the 'train' split).
DEMO_VAL_PHOTOS = ('coffee', 'rocket', 'coins')


def _load_skimage_photo(func_name: str,
                        index: Optional[int]) -> Optional[np.ndarray]:
    """Load a photo of ``skimage.data`` as BGR or gray uint8, or None."""
    try:
        import skimage.data
        img = getattr(skimage.data, func_name)()
    except Exception as err:  # missing in this version, or not offline
        print_log(
            f'skimage.data.{func_name} is not available: {err}',
            logger='current',
            level=logging.WARNING)
        return None
    if index is not None:
        img = img[index]
    img = np.asarray(img, dtype=np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
    return img


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so
    that readers never see a partial file and concurrent writers are safe."""
    folder = osp.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_demo_photos(folder: str,
                      names: Sequence[str] = tuple(DEMO_PHOTOS),
                      quality: int = 95) -> List[str]:
    """Write scikit-image's photos as JPEG files into ``folder``.

    Idempotent: files already there are kept. Safe when several processes
    call it at once (each file appears atomically).

    Args:
        folder (str): Destination folder, created if missing.
        names (Sequence[str]): Keys of :data:`DEMO_PHOTOS` to write.
        quality (int): JPEG quality. Defaults to 95.

    Returns:
        list[str]: The paths of the photos now in the folder.
    """
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in names:
        path = osp.join(folder, f'{name}.jpg')
        if not osp.exists(path):
            img = _load_skimage_photo(*DEMO_PHOTOS[name])
            if img is None:
                continue
            ok, buf = cv2.imencode('.jpg', img,
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError(f'Could not encode the photo {name}.')
            _write_atomic(path, buf.tobytes())
        paths.append(path)
    return paths


@DATASETS.register_module()
class DemoPhotoDataset(UnlabeledImageDataset):
    """:class:`UnlabeledImageDataset` over scikit-image's sample photos.

    On first use the image folder (``data_root``, ``data/demo_photos`` by
    default) is filled with the photos of :data:`DEMO_PHOTOS` that the
    installed scikit-image ships (colour photos and two gray ones), as JPEG
    files; then it is listed as usual. It backs the CPU demo config and the
    tests; no download is needed.

    ``split`` keeps part of the photos: ``'val'`` those of
    :data:`DEMO_VAL_PHOTOS` (held out), ``'train'`` the others (and any
    other image put into the folder), ``'all'`` every image.

    Args:
        data_root (str): The folder of the photos.
            Defaults to 'data/demo_photos'.
        split (str): 'all', 'train' or 'val'. Defaults to 'all'.
        **kwargs: Arguments of :class:`UnlabeledImageDataset`.
    """

    SPLITS = ('all', 'train', 'val')

    def __init__(self,
                 data_root: str = 'data/demo_photos',
                 split: str = 'all',
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'DemoPhotoDataset: split must be one of '
                             f'{self.SPLITS}, got {split!r}')
        self.split = split
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Write the photos if missing, then list the folder.

        Returns:
            list[dict]: ``dict(img_path, img_id)`` per image of the split.
        """
        if not self.ann_file:
            paths = write_demo_photos(self.img_folder)
            if not paths:
                raise RuntimeError(
                    'The installed scikit-image ships none of the demo '
                    f'photos {sorted(DEMO_PHOTOS)}; put images into '
                    f'{self.img_folder!r} instead.')
        data_list = super().load_data_list()
        if self.split == 'all':
            return data_list
        # UP-DETR: held-out photos never train; selected by file name.
        held_out = {f'{name}.jpg' for name in DEMO_VAL_PHOTOS}
        keep = [
            info for info in data_list
            if (osp.basename(info['img_path']) in held_out) == (
                self.split == 'val')
        ]
        if not keep:
            raise RuntimeError(
                f'DemoPhotoDataset: no photo of the {self.split!r} split in '
                f'{self.img_folder!r} (held out: {DEMO_VAL_PHOTOS}).')
        return [dict(info, img_id=i) for i, info in enumerate(keep)]
