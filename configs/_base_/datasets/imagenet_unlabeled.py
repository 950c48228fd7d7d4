# dataset settings: unlabeled images for UP-DETR's pre-training.
# Every image under data_root + data_prefix.img_path is used, searched
# recursively (ImageNet's class folders are one case; labels are ignored).
# To list the images with a file instead (faster start on slow file systems),
# set ann_file='meta/train.txt' (one relative path per line, an integer
# label after it is ignored).
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

dataset_type = 'UnlabeledImageDataset'
data_root = 'data/imagenet/'
backend_args = None

# Random shorter side as in the paper (ImageNet images are small), longer
# side at most 600, no flip (it would make the pretext too hard).
train_scales = [320, 336, 352, 368, 400, 416, 432, 448, 464, 480]
train_resize = dict(
    type='RandomChoiceResize',
    scales=[(s, 600) for s in train_scales],
    keep_ratio=True)
train_pipeline = [
    # Bad files (truncated, empty, not images, sides <= 16 px) are skipped
    # with a warning and another image is drawn.
    dict(type='SafeLoadImageFromFile', backend_args=backend_args),
    # M = 10 random patches from the original image, their boxes as ground
    # truth; the patch augmentation runs batched in UPDETRDataPreprocessor.
    dict(
        type='QueryPatchTransform',
        num_patches=10,
        min_size=8,
        patch_size=128,
        augment=True),
    train_resize,
    dict(type='PackUPDETRInputs')
]
# For a validation loader over held-out images: fixed scale, no
# augmentation of the patches, the same patches for an image in every run and
# epoch (drawn from a seed of its file name).
val_pipeline = [
    dict(type='SafeLoadImageFromFile', backend_args=backend_args),
    dict(
        type='QueryPatchTransform',
        num_patches=10,
        min_size=8,
        patch_size=128,
        augment=False,
        deterministic=True),
    dict(type='Resize', scale=(600, 480), keep_ratio=True),
    dict(
        type='PackUPDETRInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    # Page-locked image batches: asynchronous uploads to the GPU.
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/'),
        pipeline=train_pipeline))

# No validation by default (the schedule sets val_cfg = None): ImageNet's
# train folder has no held-out images. ../../updetr/pretrain_in1k_val.py
# scores the pretext (PatchLocalisationMetric) on a held-out folder.
val_dataloader = None
val_evaluator = None
