"""Tiny one-shot runs for Runner and demo tests (a few 2-image steps)."""
import os.path as osp

from mmdet_updetr.testing import get_tiny_cfg, write_tiny_voc

#: Seen (dog, car, person) and unseen (aeroplane, cat) classes.
TINY_CLASSES = ('aeroplane', 'cat', 'dog', 'car', 'person')


def tiny_oneshot_cfg(tmp_path,
                     checkpoint=None,
                     config='updetr/oneshot_voc0712_150e.py',
                     max_epochs=1):
    """A one-shot config on a tiny VOC set written under ``tmp_path``.

    The model is ``get_tiny_cfg``'s (ResNet-18, width 32, one encoder and
    one decoder layer) with N=10 queries and one query crop; it starts from
    ``checkpoint`` (a tiny pre-training run) or from scratch if None. Images
    stay at 96 x 128, query crops are 32 x 32; the config's CoAE protocol.
    """
    root = osp.join(tmp_path, 'VOCdevkit')
    write_tiny_voc(
        root, num_trainval=12, num_test=6, classes=TINY_CLASSES, seed=1)
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
