# DETR baseline for UP-DETR on COCO train2017 -> val2017: the same
# architecture (R50, pre-norm transformer, N=100), the transformer from
# scratch, the CNN from SwAV
# (the paper's "DETR (SwAV CNN)"; ../_base_/models/prenorm_detr_r50.py).
# 8 GPUs x 4 images, 150 epochs, lr x0.1 at epoch 100 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/detr_coco_150e.py 8
_base_ = [
    '../_base_/models/prenorm_detr_r50.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/finetune_150e.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
