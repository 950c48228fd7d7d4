# The 300-epoch fine-tuning schedule: as `finetune_150e.py` (AdamW, lr 1e-4,
# CNN 5e-5, batch 32 = 8 GPUs x 4 images), lr x0.1 at epoch 200.
_base_ = './finetune_150e.py'

max_epochs = 300
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[200],
        gamma=0.1)
]
