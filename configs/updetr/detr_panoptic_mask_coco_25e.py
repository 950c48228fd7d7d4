# DETR baseline, panoptic mask stage: the box-stage detector
# (./detr_panoptic_box_coco_300e.py) frozen, DETR's mask head (attention maps
# over the encoder memory + FPN-style conv head on the CNN's stride 16/8/4
# features) trained with focal + dice losses; PQ/SQ/RQ on val2017.
# 8 GPUs x 2 images, 25 epochs, lr x0.1 at epoch 15 (auto_scale_lr: 16).
#   tools/dist_train.sh configs/updetr/detr_panoptic_mask_coco_25e.py 8
_base_ = [
    '../_base_/models/prenorm_detr_r50.py',
    '../_base_/datasets/coco_panoptic.py',
    '../_base_/schedules/panoptic_mask_25e.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

model = dict(
    type='UPDETRPanoptic',
    freeze_detector=True,
    # All four stages for the mask head; the box stage's weights load over.
    backbone=dict(out_indices=(0, 1, 2, 3), init_cfg=None),
    # DETRHead's classes, boxes and losses as the box stage; the mask branch
    # and its losses (the reference's focal and dice, weights 1) added.
    bbox_head=dict(
        type='PanopticDETRHead',
        num_classes=133,
        num_heads=8,
        # The attention maps softmaxed per head, as the UP-DETR reference
        # (facebookresearch/detr's own panoptic checkpoints need False).
        softmax_per_head=True,
        fpn_channels=(1024, 512, 256),
        loss_mask=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=1.0)),
    panoptic_fusion_head=dict(
        type='DETRFusionHead',
        num_things_classes=80,
        num_stuff_classes=53,
        test_cfg=dict(object_mask_thr=0.85, min_area=4)))

train_dataloader = dict(batch_size=2)

# The box stage's last checkpoint; the mask head's keys are missing from it
# and start from their own initialisation (the log lists them).
load_from = 'work_dirs/detr_panoptic_box_coco_300e/epoch_300.pth'
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3))
