"""A tiny end-to-end panoptic run on a dataset the test writes: box stage,
then the mask stage (frozen detector) from its checkpoint, then PQ."""
import math

import torch
from mmengine.runner import Runner

from mmdet_updetr.testing import tiny_panoptic_cfg, write_tiny_coco_panoptic


def test_box_then_mask_stage_then_pq(tmp_path):
    paths = write_tiny_coco_panoptic(str(tmp_path / 'data'))
    # Box stage: things and stuff boxes (the panoptic json's things are
    # scored by CocoMetric).
    cfg = tiny_panoptic_cfg('updetr/detr_panoptic_box_coco_300e.py', paths,
                            str(tmp_path / 'box'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    box_metrics = runner.val()
    assert math.isfinite(box_metrics['coco/bbox_mAP'])
    box_ckpt = str(tmp_path / 'box' / 'epoch_1.pth')
    box_sd = torch.load(box_ckpt, map_location='cpu')['state_dict']

    # Mask stage: load the box stage, train the mask head only.
    cfg = tiny_panoptic_cfg('updetr/detr_panoptic_mask_coco_25e.py', paths,
                            str(tmp_path / 'mask'))
    cfg.load_from = box_ckpt
    # Keep every query, so that the metric sees segments of both kinds.
    cfg.model.panoptic_fusion_head.test_cfg.object_mask_thr = 0.
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    # The optimizer holds the mask branches' parameters and nothing else.
    mask_params = {
        id(p)
        for n, p in model.named_parameters()
        if n.startswith(('bbox_head.bbox_attention.', 'bbox_head.mask_head.'))
    }
    optim_params = {
        id(p)
        for group in runner.optim_wrapper.optimizer.param_groups
        for p in group['params']
    }
    assert mask_params and optim_params == mask_params
    for key, value in box_sd.items():  # the detector did not move
        torch.testing.assert_close(
            model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    metrics = runner.test()
    for kind in ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st'):
        assert math.isfinite(metrics[f'coco_panoptic/{kind}']), metrics


def test_panoptic_configs_state_their_batch():
    from mmengine.config import Config

    from mmdet_updetr.testing import get_config_path
    for name, batch, epochs in (('panoptic_box_coco_300e', 4,
                                 300), ('detr_panoptic_box_coco_300e', 4, 300),
                                ('panoptic_mask_coco_25e', 2,
                                 25), ('detr_panoptic_mask_coco_25e', 2, 25)):
        path = get_config_path(f'updetr/{name}.py')
        cfg = Config.fromfile(path)
        assert cfg.train_dataloader.batch_size == batch
        assert cfg.auto_scale_lr.base_batch_size == 8 * batch
        assert cfg.train_cfg.max_epochs == epochs
        # Stuff targets come from the map after every geometric transform.
        steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
        assert steps[-2:] == ['PanopticStuffToInstances', 'PackDetInputs']
        assert steps[-3] == 'RandomChoice'
        with open(path) as f:
            assert f'8 GPUs x {batch} images, {epochs} epochs' in f.read()
        if 'mask' in name:
            assert cfg.model.freeze_detector
            # The UP-DETR reference's per-head attention maps.
            assert cfg.model.bbox_head.softmax_per_head is True
            assert cfg.load_from.endswith(
                name.replace('mask_coco_25e', 'box_coco_300e/epoch_300.pth'))
        if name.startswith('panoptic_box'):
            assert cfg.model.init_cfg.type == 'UPDETRPretrained'
