# UP-DETR's architecture (./updetr_r50.py: R50, pre-norm transformer, N=100)
# as a plain detector for fine-tuning: no query patches (num_patches=0), a
# trainable CNN (stem and layer1 stay frozen, as in DETR) and DETR's head.
# Pre-training and fine-tuning share one architecture definition, so they
# cannot drift apart. Dataset configs set bbox_head.num_classes.
_base_ = './updetr_r50.py'

model = dict(
    num_patches=0,
    freeze_backbone=False,
    data_preprocessor=dict(type='DetDataPreprocessor'),
    decoder=dict(use_group_mask=False),
    bbox_head=dict(
        _delete_=True,
        type='DETRHead',
        num_classes=80,
        embed_dims=256,
        loss_cls=dict(
            type='CrossEntropyLoss',
            bg_cls_weight=0.1,
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)))
