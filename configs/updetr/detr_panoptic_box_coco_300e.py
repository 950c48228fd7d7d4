# DETR baseline, panoptic box stage: the UP-DETR architecture (R50, pre-norm
# transformer, N=100) trained from scratch (CNN from SwAV) on the boxes of
# all COCO panoptic segments (80 things + 53 stuff), as DETR trains its
# panoptic detector before the mask head.
# 8 GPUs x 4 images, 300 epochs, lr x0.1 at epoch 200 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/detr_panoptic_box_coco_300e.py 8
# Next: configs/updetr/detr_panoptic_mask_coco_25e.py (frozen, mask head).
_base_ = [
    '../_base_/models/prenorm_detr_r50.py',
    '../_base_/datasets/coco_panoptic.py',
    '../_base_/schedules/finetune_300e.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

model = dict(bbox_head=dict(num_classes=133))

# Validation of the box stage: box AP of the things of the panoptic json (a
# check while training; mmdet's panoptic dataset drops crowd regions, so
# detections there count as false positives and it reads lower than AP on
# instances_val2017). PQ comes after the mask stage.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox')
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
