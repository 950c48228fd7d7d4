# One-shot detection on PASCAL VOC, CoAE's split (SPEC §3): unseen classes
# aeroplane, cat, cow, sheep; train on VOC07+12 trainval (16 seen classes:
# per image and epoch a seen class present in it and a query object of that
# class from another training image), test on VOC2007 test (every class
# present in an image, seen and unseen, 5 query draws shuffled by image id).
# CoAE's protocol (Hsieh et al., NeurIPS 2019), which the paper's Table 3
# compares with: query pools of every ground-truth box of the split (difficult
# and small ones too), the query crop padded to a square before resizing,
# training classes drawn by inverse box frequency, VOC2007 11-point AP50.
# The target image gets DETR's augmentation, the 128x128 query crop the
# pre-training patch augmentation (UPDETRDataPreprocessor applies it).
# 4 images per GPU. Scored by OneShotVOCMetric (AP50 per class, mean over
# the 5 draws, seen / unseen means, a table like the paper's Table 3 and the
# protocol used). Our easier variant (README, "One-shot detection"):
# query_exclude_difficult=True, query_min_size=32, pad_to_square=False,
# class_sampling='uniform', eval_mode='area'.
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

dataset_type = 'OneShotVOCDataset'
data_root = 'data/VOCdevkit/'
backend_args = None
unseen_classes = ('aeroplane', 'cat', 'cow', 'sheep')
oneshot_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction', 'oneshot_class',
                     'oneshot_draw', 'query_img_id')

multi_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='LoadOneShotQuery',
        patch_size=128,
        augment=True,
        pad_to_square=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True),
                # A crop keeps at least one box of the query's class
                # (else the dataset draws another sample).
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=False),
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ]
        ]),
    dict(type='PackUPDETRInputs', meta_keys=oneshot_meta_keys)
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    # The episode's ground truth: its class's boxes, difficult ones ignored.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='LoadOneShotQuery',
        patch_size=128,
        augment=False,
        pad_to_square=True),
    dict(type='PackUPDETRInputs', meta_keys=oneshot_meta_keys)
]

voc_trainval = dict(
    type='VOCDataset', data_root=data_root, backend_args=backend_args)
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        unseen_classes=unseen_classes,
        query_min_size=0,
        query_exclude_difficult=False,
        class_sampling='inverse_frequency',
        dataset=dict(
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
            ]),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        unseen_classes=unseen_classes,
        num_draws=5,
        query_min_size=0,
        query_exclude_difficult=False,
        dataset=dict(
            type='VOCDataset',
            data_root=data_root,
            ann_file='VOC2007/ImageSets/Main/test.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            test_mode=True,
            backend_args=backend_args),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='OneShotVOCMetric', iou_thr=0.5, eval_mode='11points')
test_evaluator = val_evaluator
