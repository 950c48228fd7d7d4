# COCO train2017 -> val2017 with DETR's augmentation (flip; shorter side
# 480-800 step 32, longer <= 1333; or resize 400/500/600 -> random crop
# 384-600 -> resize), 4 images per GPU. Test: shorter side 800, longer <= 1333
# (mmdet's), scored by CocoMetric (AP, AP50, AP75, APs, APm, APl).
_base_ = ['mmdet::_base_/datasets/coco_detection.py', './detr_augmentation.py']

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    {{_base_.detr_augmentation}},  # ./detr_augmentation.py
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
