# DETR with UP-DETR's pre-norm transformer (R50, 6 + 6 layers of width 256,
# N=100 queries): the detector that UP-DETR fine-tunes and the paper's DETR
# baselines train, with DETR's head and a trainable CNN (stem and layer1
# frozen, as in DETR). The pre-training model (./updetr_r50.py) extends it
# with the pretext, so pre-training and fine-tuning share one architecture
# definition and cannot drift apart. Dataset configs set
# bbox_head.num_classes.
model = dict(
    type='PreNormDETR',
    num_queries=100,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # The paper's CNN, for pre-training and for the DETR baselines alike:
        # SwAV's self-supervised ResNet-50 (800 epochs), from
        # https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar
        # ('torchvision://resnet50' gives the supervised-CNN rows of Table 2).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/swav_800ep_pretrain.pth.tar')),
    neck=dict(
        type='ChannelMapper',
        in_channels=[2048],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=None,
        num_outs=1),
    encoder=dict(
        type='PreNormDetrTransformerEncoder',
        num_layers=6,
        normalize_before=True,
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            ffn_cfg=dict(
                embed_dims=256,
                feedforward_channels=2048,
                num_fcs=2,
                ffn_drop=0.1,
                act_cfg=dict(type='ReLU', inplace=True)))),
    decoder=dict(
        type='PreNormDetrTransformerDecoder',
        num_layers=6,
        normalize_before=True,
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            cross_attn_cfg=dict(
                embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            ffn_cfg=dict(
                embed_dims=256,
                feedforward_channels=2048,
                num_fcs=2,
                ffn_drop=0.1,
                act_cfg=dict(type='ReLU', inplace=True))),
        return_intermediate=True),
    positional_encoding=dict(num_feats=128, normalize=True),
    bbox_head=dict(
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
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=1.),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))
