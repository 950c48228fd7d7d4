# The mask stage of DETR's panoptic recipe (the reference's `--masks --epochs
# 25 --lr_drop 15 --frozen_weights ...`): AdamW, lr 1e-4, weight decay 1e-4,
# gradient clipping at 0.1, 25 epochs, lr x0.1 at epoch 15, batch 16 (8 GPUs x
# 2 images: the reference README's 8-GPU command with its default
# --batch_size 2). Only the mask head trains (the detector is frozen).
_base_ = './finetune_150e.py'

max_epochs = 25
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[15],
        gamma=0.1)
]

# base_batch_size = 8 GPUs x 2 images (enable with --auto-scale-lr).
auto_scale_lr = dict(enable=False, base_batch_size=16)
