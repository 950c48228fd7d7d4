"""``configs/updetr/finetune_custom_coco.py`` on a tiny COCO-format set
written here: only paths (and the class names it already has) change."""
import math
import os.path as osp

import pytest
from mmengine.runner import Runner

from mmdet_updetr.testing import (small_scales, tiny_finetune_cfg,
                                  write_tiny_coco)


@pytest.fixture(scope='module')
def finetuned(tiny_pretrain_checkpoint, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('custom_coco')
    cfg = tiny_finetune_cfg(tmp_path, tiny_pretrain_checkpoint,
                            'updetr/finetune_custom_coco.py')
    root = osp.join(tmp_path, 'my_dataset')
    write_tiny_coco(root, cfg.metainfo.classes)
    for dataset in (cfg.train_dataloader.dataset, cfg.test_dataloader.dataset):
        dataset.data_root = root
        small_scales(dataset.pipeline)
    cfg.test_evaluator.ann_file = osp.join(root, 'annotations', 'val.json')
    cfg.val_evaluator = cfg.test_evaluator
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, runner.test()


def test_trains_on_the_custom_classes(finetuned):
    runner, metrics = finetuned
    assert runner.train_dataloader.dataset.metainfo['classes'] == ('cat',
                                                                   'dog')
    assert runner.train_dataloader.dataset.cat_ids == [2, 4]
    assert runner.model.bbox_head.fc_cls.out_features == 3  # + background
    assert runner.iter == 2  # 4 images, 2 per batch, 1 epoch
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert math.isfinite(metrics[key]), key
