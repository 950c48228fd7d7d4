"""Shared test set-up: mmdet's default scope, our registrations and
checkpoints that load with ``weights_only`` (as the tools take them)."""
import pytest
from mmdet.utils import register_all_modules

import mmdet_updetr  # noqa: F401  registers UP-DETR's modules
from mmdet_updetr.engine import enable_safe_checkpoints

register_all_modules(init_default_scope=True)
enable_safe_checkpoints()


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    import numpy as np
    import torch
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope='session')
def tiny_pretrain_checkpoint(tmp_path_factory):
    """A checkpoint of a tiny pre-training run (1 epoch, 2 iterations).

    Its model is ``get_tiny_cfg``'s default (ResNet-18, width 32, one
    encoder and one decoder layer, N=10, M=2), so fine-tuning and one-shot
    configs shrunk the same way can start from it.
    """
    import os.path as osp

    from mmengine.runner import Runner

    from mmdet_updetr.testing import tiny_pretrain_cfg
    cfg = tiny_pretrain_cfg(tmp_path_factory.mktemp('tiny_pretrain'))
    Runner.from_cfg(cfg).train()
    return osp.join(cfg.work_dir, 'epoch_1.pth')
