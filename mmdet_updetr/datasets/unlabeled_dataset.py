"""A dataset of unlabeled images: a folder, or a list file of paths."""
import logging
import os
import os.path as osp
from typing import List, Optional, Sequence, Set, Tuple

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.fileio import list_from_file
from mmengine.logging import print_log
from mmengine.utils import is_abs

# The extensions torchvision's ImageFolder and mmengine accept.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


def _scan_dir(path: str, rel: str, extensions: Tuple[str, ...],
              include_hidden: bool, visited: Set[Tuple[int, int]],
              found: List[str], pending: List[str]) -> None:
    """List one directory: images go to ``found``, sub-directories (links
    followed, each real directory once) to ``pending``."""
    subdirs = []
    prefix = rel + os.sep if rel else ''
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            if name[0] == '.' and not include_hidden:
                continue
            # is_file/is_dir follow links; for plain entries they use the
            # directory's type field and cost no system call.
            if name.lower().endswith(extensions) and entry.is_file():
                found.append(prefix + name)
            elif entry.is_dir():
                subdirs.append(entry)
    # In name order, and popped smallest first, so that the path under
    # which a directory reached by several links is listed does not depend
    # on the file system's order.
    new_dirs = []
    for entry in sorted(subdirs, key=lambda e: e.name):
        stat = entry.stat()
        key = (stat.st_dev, stat.st_ino)
        if key not in visited:  # guards against link cycles
            visited.add(key)
            new_dirs.append(prefix + entry.name)
    pending.extend(reversed(new_dirs))


def scan_images(folder: str,
                extensions: Sequence[str] = IMG_EXTENSIONS,
                include_hidden: bool = False) -> List[str]:
    """Find image files under a folder, recursively.

    Links to files and folders are followed; every real folder is listed
    once, however many links lead to it, so link cycles end. Unreadable
    sub-folders are skipped with a warning.

    Args:
        folder (str): The folder to search.
        extensions (Sequence[str]): File extensions to keep, compared
            case-insensitively. Defaults to :data:`IMG_EXTENSIONS`.
        include_hidden (bool): Also list names starting with '.'.
            Defaults to False.

    Returns:
        list[str]: Paths relative to ``folder``, sorted.
    """
    extensions = tuple(ext.lower() for ext in extensions)
    stat = os.stat(folder)
    visited = {(stat.st_dev, stat.st_ino)}
    found: List[str] = []
    pending = ['']
    while pending:
        rel = pending.pop()
        path = osp.join(folder, rel) if rel else folder
        try:
            _scan_dir(path, rel, extensions, include_hidden, visited, found,
                      pending)
        except OSError as err:
            print_log(
                f'Cannot list {path}, skipped: {err}',
                logger='current',
                level=logging.WARNING)
    found.sort()
    return found


def parse_list_line(line: str) -> Optional[str]:
    """Read a relative path from a line of a list file.

    Empty lines and lines starting with '#' are skipped; a trailing integer
    label (as in ``n01440764/n01440764_10026.JPEG 0``) is dropped.

    Args:
        line (str): One line of the list file.

    Returns:
        str | None: The path, or None for a line without one.
    """
    line = line.strip()
    if not line or line.startswith('#'):
        return None
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and parts[1].lstrip('-').isdigit():
        return parts[0]
    return line


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """Unlabeled images for UP-DETR's pre-training.

    The images are either every image file under the image folder
    ``data_prefix['img_path']`` (joined to ``data_root``), searched
    recursively with links followed and sorted by path, or, when
    ``ann_file`` is given, the paths listed in that file, one per line,
    relative to the image folder (like ImageNet's ``train.txt``; a trailing
    integer label is ignored, as are labels given by sub-folders).

    Each data info is ``dict(img_path=str, img_id=int)`` with ``img_id`` the
    index in the sorted list. Bad files are not detected here (that would
    mean reading millions of files) but by
    :class:`SafeLoadImageFromFile`, which returns None for them: in
    training another random image is drawn (mmengine's behaviour); in
    ``test_mode`` the next images in order are tried, so a run never stops
    and stays deterministic.

    Args:
        extensions (Sequence[str]): Image file extensions (case-insensitive)
            of the folder mode. Defaults to :data:`IMG_EXTENSIONS`.
        include_hidden (bool): Also list files and folders whose name
            starts with '.' (e.g. macOS' ``._x.jpg`` files, which are not
            images). Defaults to False.
        **kwargs: Arguments of :class:`mmengine.dataset.BaseDataset`, e.g.
            ``data_root``, ``data_prefix=dict(img_path=...)``, ``ann_file``,
            ``pipeline``, ``test_mode``, ``max_refetch``.
    """

    METAINFO = dict(classes=('patch', ))

    def __init__(self,
                 *args,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 include_hidden: bool = False,
                 **kwargs) -> None:
        self.extensions = tuple(extensions)
        self.include_hidden = include_hidden
        super().__init__(*args, **kwargs)

    @property
    def img_folder(self) -> str:
        """str: The image folder (``data_root`` joined with the prefix)."""
        return self.data_prefix.get('img_path', '') or self.data_root or ''

    def load_data_list(self) -> List[dict]:
        """List the images of the folder or of the list file.

        Returns:
            list[dict]: ``dict(img_path, img_id)`` per image.
        """
        if self.ann_file:
            paths = self._read_list_file()
        else:
            paths = self._scan_folder()
        return [
            dict(img_path=path, img_id=idx) for idx, path in enumerate(paths)
        ]

    def _scan_folder(self) -> List[str]:
        """The image paths under :attr:`img_folder`."""
        folder = self.img_folder
        hint = ('Set `data_root` and `data_prefix=dict(img_path=...)` to a '
                'folder of images, or `ann_file` to a file listing them.')
        if not folder:
            raise FileNotFoundError(f'No image folder is configured. {hint}')
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'Image folder {folder!r} does not exist or is not a '
                f'folder. {hint}')
        paths = scan_images(folder, self.extensions, self.include_hidden)
        if not paths:
            raise FileNotFoundError(
                f'Image folder {folder!r} holds no image files (searched '
                f'recursively for {", ".join(self.extensions)}, any case). '
                f'Put images there or point the dataset elsewhere. {hint}')
        return [osp.join(folder, path) for path in paths]

    def _read_list_file(self) -> List[str]:
        """The image paths listed in ``ann_file``, relative to the folder."""
        try:
            lines = list_from_file(self.ann_file)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'List file {self.ann_file!r} does not exist. Set `ann_file`'
                ' to a file with one image path per line, or leave it empty '
                'to search the image folder.') from err
        paths = [p for p in map(parse_list_line, lines) if p is not None]
        if not paths:
            raise ValueError(f'List file {self.ann_file!r} lists no images.')
        folder = self.img_folder
        return [
            path if is_abs(path) or not folder else osp.join(folder, path)
            for path in paths
        ]

    def __getitem__(self, idx: int) -> dict:
        """Get the processed sample ``idx``, skipping bad files.

        In training, mmengine's :meth:`BaseDataset.__getitem__` draws a random
        image in place of a bad one. In ``test_mode`` the next images in order
        are tried instead (mmengine would raise).

        Args:
            idx (int): The index of the sample.

        Returns:
            dict: The output of the pipeline.
        """
        if not self.test_mode:
            return super().__getitem__(idx)
        if not self._fully_initialized:
            self.full_init()
        for offset in range(min(self.max_refetch + 1, len(self))):
            data = self.prepare_data((idx + offset) % len(self))
            if data is not None:
                return data
        raise RuntimeError(
            f'No valid image found from index {idx} on after '
            f'{self.max_refetch} retries; see the warnings above.')
