# UP-DETR pre-training on ImageNet-1k train, labels unused: R50 frozen at
# self-supervised (SwAV) weights, pre-norm transformer, N=100, M=10.
# 8 GPUs x 32 images, 60 epochs, lr x0.1 at epoch 40 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k.py 8
_base_ = [
    '../_base_/models/updetr_r50.py',
    '../_base_/datasets/imagenet_unlabeled.py',
    '../_base_/schedules/pretrain_60e.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)
# QueryPatchVisHook draws Fig. 7 at validations, when a config has them
# (pretrain_in1k_val.py, the demo); without validation it does nothing.
custom_hooks = _base_.custom_hooks + [
    dict(type='QueryPatchVisHook', interval=1, num_images=3)
]

# The frozen CNN is SwAV's ResNet-50, set in
# ../_base_/models/prenorm_detr_r50.py (model.backbone.init_cfg); put the
# file at checkpoints/swav_800ep_pretrain.pth.tar or point the key elsewhere.

# An epoch of ImageNet takes about 2 hours on 8 GPUs: a checkpoint every
# 1000 iterations (~25 min) too, so a pre-empted run loses little (only the
# newest iter_*.pth is kept).
default_hooks = dict(
    checkpoint=dict(interval=1, iter_interval=1000, max_keep_ckpts=3))
