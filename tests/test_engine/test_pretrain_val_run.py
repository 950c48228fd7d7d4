"""Pre-training validates on held-out photos: the pretext metric and its
pictures in a real Runner run of the tiny demo config."""
import glob
import os.path as osp

import cv2
from mmdet.structures.bbox import get_box_tensor
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_updetr.testing import tiny_pretrain_cfg

KEYS = ('pretext/loc_acc50', 'pretext/loc_acc75', 'pretext/mIoU',
        'pretext/match_score')


class _Record(Hook):
    """The metrics and the true patch boxes of every validation."""

    def __init__(self):
        self.metrics, self.boxes = [], []

    def before_val_epoch(self, runner):
        self.boxes.append({})

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for sample in outputs:
            self.boxes[-1][osp.basename(sample.img_path)] = \
                get_box_tensor(sample.gt_instances.bboxes).tolist()

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics))


def test_validation_scores_fixed_patches_of_held_out_photos(tmp_path):
    cfg = tiny_pretrain_cfg(tmp_path, max_epochs=2)
    cfg.train_cfg.val_interval = 1
    cfg.custom_hooks = [dict(type='QueryPatchVisHook', interval=2)]
    # A visualizer of its own (mmengine's instances outlive earlier runs).
    cfg.visualizer.name = f'vis_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    record = _Record()
    runner.register_hook(record)
    runner.train()
    assert len(record.metrics) == 2
    for metrics in record.metrics:
        assert set(KEYS) <= set(metrics)
        assert all(0 <= metrics[k] <= 1 for k in KEYS)
    # The held-out photos, none of them trained on, the same patches in
    # both epochs.
    held_out = {'coffee.jpg', 'rocket.jpg', 'coins.jpg'}
    assert set(record.boxes[0]) == held_out
    train_set = runner.train_dataloader.dataset
    trained = {
        osp.basename(train_set.get_data_info(i)['img_path'])
        for i in range(len(train_set))
    }
    assert not trained & held_out
    assert record.boxes[0] == record.boxes[1]
    # Pictures of the 3 photos at epoch 2 only, the photo's size plus the
    # column of patches.
    pictures = sorted(
        glob.glob(
            osp.join(cfg.work_dir, '*', 'vis_data', 'vis_image', '*.png')))
    assert [osp.basename(p) for p in pictures] == [
        'query_patch_coffee_2.png', 'query_patch_coins_2.png',
        'query_patch_rocket_2.png'
    ]
    photo = cv2.imread(osp.join(tmp_path, 'photos', 'coffee.jpg'))
    h, w = photo.shape[:2]
    assert cv2.imread(pictures[0]).shape == (h, w + h // 2, 3)
