# DETR's training augmentation (after the flip), shared by the detection and
# panoptic data configs as `{{_base_.detr_augmentation}}`: shorter side
# 480-800 step 32, longer <= 1333; or resize 400/500/600 -> random crop
# 384-600 -> resize (mmdet's configs/detr/detr_r50_8xb2-150e_coco.py).
multi_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                (736, 1333), (768, 1333), (800, 1333)]
detr_augmentation = dict(
    type='RandomChoice',
    transforms=[[
        dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)
    ],
                [
                    dict(
                        type='RandomChoiceResize',
                        scales=[(400, 1333), (500, 1333), (600, 1333)],
                        keep_ratio=True),
                    dict(
                        type='RandomCrop',
                        crop_type='absolute_range',
                        crop_size=(384, 600),
                        allow_negative_crop=True),
                    dict(
                        type='RandomChoiceResize',
                        scales=multi_scales,
                        keep_ratio=True)
                ]])
