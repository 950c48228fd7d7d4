# UP-DETR pre-training for the paper's ablations (Section 4.5, Tables 5-6):
# as pretrain_in1k.py (R50 frozen at SwAV weights, pre-norm, N=100, M=10,
# feature reconstruction, group mask) but 15 epochs, lr x0.1 at epoch 10.
# Each ablation is then fine-tuned with finetune_voc0712_150e.py:
#   --cfg-options model.init_cfg.checkpoint=work_dirs/<this>/epoch_15.pth
# 8 GPUs x 32 images, 15 epochs, lr x0.1 at epoch 10 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k_15e.py 8
_base_ = './pretrain_in1k.py'

max_epochs = 15
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[10],
        gamma=0.1)
]
