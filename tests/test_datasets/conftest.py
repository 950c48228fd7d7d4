"""Fixtures of the dataset tests: good and bad image files in a temporary
folder (written by ``mmdet_updetr.testing``), mmengine's log, the loader's
memory of reported files."""
import logging

import pytest
from mmengine.logging import MMLogger

from mmdet_updetr.testing import write_good_and_bad


@pytest.fixture
def mixed_folder(tmp_path):
    """A folder of good and bad images; returns (folder, names)."""
    folder = tmp_path / 'mixed'
    return folder, write_good_and_bad(folder)


@pytest.fixture
def mm_caplog(caplog):
    """``caplog`` that also sees mmengine's current logger (which does not
    propagate to the root logger)."""
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture(autouse=True)
def forget_reported_files():
    """Each test starts with no file reported yet."""
    from mmdet_updetr.datasets.transforms import loading
    loading._REPORTED_FILES.clear()
    yield
    loading._REPORTED_FILES.clear()
