# UP-DETR pre-training schedule: AdamW 1e-4, weight decay 1e-4, gradient
# clipping at 0.1, 60 epochs, lr x0.1 at epoch 40, batch 256 (8 GPUs x 32).
optim_wrapper = dict(
    type='OptimWrapper',
    # mmengine's constructor, with one log line for all frozen parameters.
    constructor='FrozenAwareOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    # Parameters with requires_grad=False (the frozen CNN) are left out of
    # the optimizer; if the CNN is trained, it learns at 0.1x (DETR's 1e-5).
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))

max_epochs = 60
# mmengine's EpochBasedTrainLoop, continuing a mid-epoch checkpoint's epoch
# at its next batch (see ../default_runtime.py).
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
test_cfg = None

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[40],
        gamma=0.1)
]

# NOTE: `auto_scale_lr` scales the lr for other total batch sizes
# (enable with --auto-scale-lr). base_batch_size = 8 GPUs x 32 images.
auto_scale_lr = dict(enable=False, base_batch_size=256)
