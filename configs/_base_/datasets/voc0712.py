# PASCAL VOC07+12 trainval (16551 images, each once per epoch: no
# RepeatDataset) -> VOC2007 test (4952 images), with DETR's augmentation and
# test scale (./coco_detection.py), 4 images per GPU. Boxes of any size are
# trained on (no bbox_min_size); "difficult" boxes are ignored in training.
# Scored twice: COCO-style AP / AP50 / AP75 (the paper's numbers) by
# CocoMetric, which builds its ground truth from the XML annotations packed
# as `instances` (difficult -> iscrowd: detections of them count neither as
# true nor as false positives), and VOC's own AP50 by VOCMetric (area under
# the whole precision-recall curve, difficult ignored).
_base_ = './coco_detection.py'

dataset_type = 'VOCDataset'
data_root = 'data/VOCdevkit/'

voc_trainval = dict(
    type=dataset_type,
    data_root=data_root,
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline={{_base_.train_pipeline}},
    backend_args={{_base_.backend_args}})
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        # VOCDataset's metainfo `dataset_type` differs between the years.
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                voc_trainval,
                ann_file='VOC2007/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2007/')),
            dict(
                voc_trainval,
                ann_file='VOC2012/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2012/'))
        ]))

test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # `instances` (the raw annotations) are CocoMetric's ground truth.
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='VOC2007/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args={{_base_.backend_args}}))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='CocoMetric', ann_file=None, metric='bbox'),
    dict(type='VOCMetric', metric='mAP', eval_mode='area')
]
test_evaluator = val_evaluator
