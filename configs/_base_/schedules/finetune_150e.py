# DETR's fine-tuning schedule, as UP-DETR fine-tunes: AdamW, lr 1e-4 for the
# transformer and 5e-5 for the CNN, weight decay 1e-4, gradient clipping at
# 0.1, 150 epochs, lr x0.1 at epoch 100, batch 32 (8 GPUs x 4 images).
optim_wrapper = dict(
    type='OptimWrapper',
    # mmengine's constructor, with one log line for all frozen parameters.
    constructor='FrozenAwareOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.5, decay_mult=1.0)}))

max_epochs = 150
# mmengine's EpochBasedTrainLoop, continuing a mid-epoch checkpoint's epoch
# at its next batch (see ../default_runtime.py).
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[100],
        gamma=0.1)
]

# NOTE: `auto_scale_lr` scales the lr for other total batch sizes
# (enable with --auto-scale-lr). base_batch_size = 8 GPUs x 4 images.
auto_scale_lr = dict(enable=False, base_batch_size=32)
