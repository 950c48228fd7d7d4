"""Tiny pre-training runs for Runner tests (a few 2-image iterations)."""
import os.path as osp

from mmdet_updetr.datasets.demo_photos import write_demo_photos
from mmdet_updetr.testing import get_tiny_cfg


def tiny_pretrain_cfg(tmp_path, max_epochs: int = 1, num_images: int = 4):
    """The demo config with a tiny model, small images and ``num_images``
    photos, working in ``tmp_path``."""
    photos = osp.join(tmp_path, 'photos')
    write_demo_photos(photos)
    cfg = get_tiny_cfg('updetr/pretrain_demo_cpu.py')
    pipeline = cfg.train_dataloader.dataset.pipeline
    for t in pipeline:
        if t['type'] == 'QueryPatchTransform':
            t['patch_size'] = 32
        if t['type'] == 'RandomChoiceResize':
            t['scales'] = [(96, 128), (112, 128)]
    cfg.train_dataloader.dataset.update(data_root=photos, indices=num_images)
    cfg.work_dir = osp.join(tmp_path, 'work_dir')
    cfg.train_cfg.max_epochs = max_epochs
    cfg.param_scheduler[0].end = max_epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg
