# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""A local file backend whose writes are atomic, and checks of checkpoint
files before a resume."""
import os
import os.path as osp
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Union

from mmengine.fileio import LocalBackend, register_backend

#: The name under which :class:`AtomicLocalBackend` is registered.
ATOMIC_BACKEND = 'atomic_local'
#: Prefix of the temporary files (left behind only by a killed save).
TMP_PREFIX = '.tmp-'


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` is atomic.

    The bytes go to a temporary file in the destination folder, which is
    flushed to disk (``fsync``) and renamed over the destination
    (``os.replace``). A process killed while writing leaves the previous
    file untouched (and a ``.tmp-*`` file, removed by the next save), so
    readers see either the old or the new file, never part of one.
    Select it with ``backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically (see the class)."""
        filepath = str(filepath)
        folder = osp.dirname(filepath) or '.'
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=TMP_PREFIX + osp.basename(filepath) + '.')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise
        _fsync_dir(folder)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why a checkpoint file cannot be loaded, or None if it looks whole.

    torch writes checkpoints as zip archives: a file that was cut short
    (a copy or a save that was killed, a full disk) lacks the archive's
    central directory, and a damaged one fails the CRC check of its
    members. Files in torch's legacy (non-zip) format are not checked.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str | None: The problem, or None.
    """
    if not osp.isfile(path):
        return 'the file does not exist'
    if osp.getsize(path) == 0:
        return 'the file is empty (0 bytes)'
    with open(path, 'rb') as f:
        magic = f.read(2)
    if magic != b'PK':
        return None  # torch's legacy format: left to torch.load
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'it is truncated or not a checkpoint ({err})'
    if bad is not None:
        return f'it is corrupt (CRC error in {bad})'
    return None
