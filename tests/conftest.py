"""Shared test set-up: mmdet's default scope and our registrations."""
import pytest
from mmdet.utils import register_all_modules

import mmdet_updetr  # noqa: F401  (registers modules, safe checkpoints)

register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    import numpy as np
    import torch
    torch.manual_seed(0)
    np.random.seed(0)
