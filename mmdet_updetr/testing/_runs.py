# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Tiny Runner configs (a few 2-image iterations) for tests on a CPU:
pre-training on the demo photos, fine-tuning from a checkpoint (on a tiny
VOC set, or on data the caller points it to) and one-shot detection on a
tiny VOC set."""
import os.path as osp
from pathlib import Path
from typing import Optional, Union

from mmengine.config import Config

from mmdet_updetr.datasets.demo_photos import write_demo_photos
from ._utils import get_tiny_cfg
from ._voc import write_tiny_voc


def tiny_pretrain_cfg(tmp_path: Union[str, Path],
                      max_epochs: int = 1,
                      num_images: int = 4) -> Config:
    """The demo config with a tiny model, small images and ``num_images``
    training photos, working in ``tmp_path``; it validates on the held-out
    photos after the last epoch."""
    photos = osp.join(tmp_path, 'photos')
    write_demo_photos(photos)
    cfg = get_tiny_cfg('updetr/pretrain_demo_cpu.py')
    pipeline = cfg.train_dataloader.dataset.pipeline + \
        cfg.val_dataloader.dataset.pipeline
    for t in pipeline:
        if t['type'] == 'QueryPatchTransform':
            t['patch_size'] = 32
        if t['type'] == 'RandomChoiceResize':
            t['scales'] = [(96, 128), (112, 128)]
        if t['type'] == 'Resize':
            t['scale'] = (128, 112)
    cfg.train_dataloader.dataset.update(data_root=photos, indices=num_images)
    cfg.val_dataloader.dataset.data_root = photos
    cfg.work_dir = osp.join(tmp_path, 'work_dir')
    cfg.train_cfg.max_epochs = max_epochs
    cfg.param_scheduler[0].end = max_epochs
    cfg.default_hooks.checkpoint = dict(
        type='ResumableCheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def small_scales(pipeline: list) -> None:
    """Keep DETR's augmentation, at the tiny images' scale (in place)."""
    for transform in pipeline:
        if transform.type == 'RandomChoice':
            small_scales(sum(transform.transforms, []))
        elif transform.type == 'RandomChoiceResize':
            transform.scales = [(64, 160), (96, 160)]
        elif transform.type == 'RandomCrop':
            transform.crop_size = (48, 80)
        elif transform.type == 'Resize':
            transform.scale = (160, 96)


def tiny_finetune_cfg(tmp_path: Union[str, Path], checkpoint: str,
                      config: str) -> Config:
    """``configs/<config>`` shrunk, for one epoch of 2-image batches from
    ``checkpoint``; its data must be pointed somewhere by the caller."""
    cfg = get_tiny_cfg(config)
    cfg.model.init_cfg.checkpoint = checkpoint
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader = cfg.test_dataloader
    cfg.train_cfg.update(max_epochs=1, val_interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = osp.join(tmp_path, 'work_dir')
    return cfg


def tiny_voc_finetune_cfg(tmp_path: Union[str, Path],
                          checkpoint: str) -> Config:
    """``finetune_voc0712_150e.py`` on a tiny VOC2007 set (4 + 2 images)."""
    root = osp.join(tmp_path, 'VOCdevkit')
    write_tiny_voc(root, num_trainval=4, num_test=2)
    cfg = tiny_finetune_cfg(tmp_path, checkpoint,
                            'updetr/finetune_voc0712_150e.py')
    train_set = cfg.train_dataloader.dataset.datasets[0]  # VOC2007 only
    cfg.train_dataloader.dataset = train_set
    for dataset in (train_set, cfg.test_dataloader.dataset):
        dataset.data_root = root
        small_scales(dataset.pipeline)
    return cfg


#: Seen (dog, car, person) and unseen (aeroplane, cat) classes.
TINY_ONESHOT_CLASSES = ('aeroplane', 'cat', 'dog', 'car', 'person')


def tiny_oneshot_cfg(tmp_path: Union[str, Path],
                     checkpoint: Optional[str] = None,
                     config: str = 'updetr/oneshot_voc0712_150e.py',
                     max_epochs: int = 1) -> Config:
    """A one-shot config on a tiny VOC set written under ``tmp_path``.

    The model is ``get_tiny_cfg``'s (ResNet-18, width 32, one encoder and
    one decoder layer) with N=10 queries and one query crop; it starts from
    ``checkpoint`` (a tiny pre-training run) or from scratch if None. Images
    stay at 96 x 128, query crops are 32 x 32; the config's CoAE protocol.
    """
    root = osp.join(tmp_path, 'VOCdevkit')
    write_tiny_voc(
        root,
        num_trainval=12,
        num_test=6,
        classes=TINY_ONESHOT_CLASSES,
        seed=1)
    cfg = get_tiny_cfg(config, num_patches=1)
    cfg.model.backbone.init_cfg = None
    cfg.model.init_cfg = None if checkpoint is None else dict(
        type='UPDETRPretrained', checkpoint=checkpoint, keep_classifier=True)
    small = [(128, 96), (144, 108)]
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        dataset = loader.dataset
        inner = dataset.dataset
        for voc in inner.get('datasets', [inner]):
            voc.data_root = root
            voc.ann_file = 'VOC2007/ImageSets/Main/' + osp.basename(
                voc.ann_file)
            voc.data_prefix = dict(sub_data_root='VOC2007/')
        for t in dataset.pipeline:
            if t['type'] == 'LoadOneShotQuery':
                t['patch_size'] = 32
            if t['type'] == 'RandomChoice':
                t.update(
                    type='RandomChoiceResize', scales=small, keep_ratio=True)
                t.pop('transforms')
            if t['type'] == 'Resize':
                t['scale'] = small[0]
    cfg.val_dataloader = cfg.test_dataloader
    cfg.work_dir = osp.join(tmp_path, 'work_dir')
    cfg.train_cfg.update(max_epochs=max_epochs, val_interval=max_epochs)
    cfg.param_scheduler[0].end = max_epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'INFO'
    return cfg
