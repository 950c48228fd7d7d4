# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""The fine-tuning recipe that detection and one-shot configs share."""
import re

from mmengine.config import Config

from ._utils import get_config_path


def check_finetune_recipe(cfg: Config, name: str) -> int:
    """Assert SPEC §3's recipe: AdamW 1e-4, wd 1e-4, clip 0.1, 8 GPUs x 4
    images (``auto_scale_lr`` 32), 150 / 300 epochs with the drop at 100 /
    200 as the name says, and a first comment that states it.

    Args:
        cfg (:obj:`Config`): The loaded config.
        name (str): Its path relative to ``configs/``, ending ``_<E>e.py``.

    Returns:
        int: The number of epochs.
    """
    epochs = int(re.search(r'_(\d+)e\.py$', name).group(1))
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[0].milestones == {
        150: [100],
        300: [200]
    }[epochs]
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.auto_scale_lr.base_batch_size == 8 * 4
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
    # The first comment names GPUs x batch and the schedule.
    header = open(get_config_path(name)).read().split('\n_base_')[0]
    assert '8 GPUs x 4 images' in header and f'{epochs} epochs' in header
    return epochs
