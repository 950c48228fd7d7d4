# Tiny CPU demo of UP-DETR pre-training on the photos scikit-image ships
# (written to data/demo_photos on first use): ResNet-18 from scratch, 2+2
# pre-norm transformer layers of width 128, N=30 queries, M=3 query patches.
# 1 CPU process x 2 images, 100 epochs (a few minutes on 2 cores), scored
# every 10 epochs on held-out photos (PatchLocalisationMetric, Fig. 7
# pictures in the work dir's vis_data/vis_image):
#   python tools/train.py configs/updetr/pretrain_demo_cpu.py
_base_ = './pretrain_in1k.py'

# No pre-trained CNN is available offline, and a frozen random CNN gives
# meaningless patch features, so the demo trains its CNN (the paper freezes
# a self-supervised one: see pretrain_in1k.py).
model = dict(
    num_queries=30,
    num_patches=3,
    patch_feat_dims=512,
    freeze_backbone=False,
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[512], out_channels=128),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=128, num_heads=4),
            ffn_cfg=dict(embed_dims=128, feedforward_channels=512))),
    decoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=128, num_heads=4),
            cross_attn_cfg=dict(embed_dims=128, num_heads=4),
            ffn_cfg=dict(embed_dims=128, feedforward_channels=512))),
    positional_encoding=dict(num_feats=64),
    bbox_head=dict(embed_dims=128),
    test_cfg=dict(max_per_img=30))

train_pipeline = [
    dict(type='SafeLoadImageFromFile'),
    dict(type='QueryPatchTransform', num_patches=3, patch_size=96),
    dict(
        type='RandomChoiceResize',
        scales=[(s, 320) for s in (192, 208, 224, 240)],
        keep_ratio=True),
    dict(type='PackUPDETRInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='DemoPhotoDataset',
        data_root='data/demo_photos',
        split='train',
        pipeline=train_pipeline))

# Held-out photos (DEMO_VAL_PHOTOS), the same patches every time.
val_pipeline = [
    dict(type='SafeLoadImageFromFile'),
    dict(
        type='QueryPatchTransform',
        num_patches=3,
        patch_size=96,
        augment=False,
        deterministic=True),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(
        type='PackUPDETRInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
val_dataloader = dict(
    _delete_=True,  # the base has none
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='DemoPhotoDataset',
        data_root='data/demo_photos',
        split='val',
        test_mode=True,
        pipeline=val_pipeline))
val_evaluator = dict(_delete_=True, type='PatchLocalisationMetric')
val_cfg = dict(_delete_=True, type='ValLoop')

optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
max_epochs = 100
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='MultiStepLR', end=max_epochs, by_epoch=True, milestones=[80])
]
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=10, max_keep_ckpts=1))
