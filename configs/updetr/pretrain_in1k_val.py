# pretrain_in1k.py, its pretext scored after every epoch on held-out images
# (pretext/loc_acc50, loc_acc75, mIoU, match_score) with Fig. 7 pictures of
# 3 of them. 8 GPUs x 32 images, 60 epochs, lr x0.1 at epoch 40.
# The held-out folder is data/imagenet/val/ (any folder of images, searched
# recursively; no labels); point it elsewhere with
#   --cfg-options val_dataloader.dataset.data_prefix.img_path=PATH
_base_ = './pretrain_in1k.py'

val_dataloader = dict(
    _delete_=True,  # the base has none
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root='data/imagenet/',
        data_prefix=dict(img_path='val/'),
        test_mode=True,
        pipeline={{_base_.val_pipeline}}))
val_evaluator = dict(_delete_=True, type='PatchLocalisationMetric')
val_cfg = dict(_delete_=True, type='ValLoop')
train_cfg = dict(val_interval=1)
