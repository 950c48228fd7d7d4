# COCO panoptic train2017 -> val2017 (mmdet's CocoPanopticDataset, 133 classes:
# 80 things then 53 stuff) with DETR's augmentation (flip; shorter side 480-800
# step 32, longer <= 1333; or resize 400/500/600 -> random crop 384-600 ->
# resize), 4 images per GPU. Every segment is a target: things from the
# annotation, stuff from the panoptic map (PanopticStuffToInstances), boxes
# and masks. Test: shorter side 800, longer <= 1333; PQ/SQ/RQ by
# CocoPanopticMetric (needs panopticapi: `pip install panopticapi-lite`).
_base_ = ['mmdet::_base_/datasets/coco_panoptic.py', './detr_augmentation.py']

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='LoadPanopticAnnotations',
        with_mask=True,
        with_seg=True,
        backend_args={{_base_.backend_args}}),
    dict(type='RandomFlip', prob=0.5),
    {{_base_.detr_augmentation}},  # ./detr_augmentation.py
    dict(type='PanopticStuffToInstances', num_things_classes=80),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        # Images with stuff only are training samples too (as the reference).
        filter_cfg=dict(filter_empty_gt=False, min_size=32),
        pipeline=train_pipeline))
