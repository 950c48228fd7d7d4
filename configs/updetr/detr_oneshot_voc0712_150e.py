# DETR baseline for one-shot detection on VOC (CoAE split: 16 seen classes on
# VOC07+12 trainval -> all 20 on VOC2007 test): the one-shot model of
# UP-DETR (query crop -> CNN -> GAP -> patch2query on all 100 queries, 2-way
# head), the transformer, queries and patch2query from scratch, the CNN from
# SwAV, as the paper's DETR baselines (../_base_/models/prenorm_detr_r50.py).
# 8 GPUs x 4 images, 150 epochs, lr x0.1 at epoch 100 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/detr_oneshot_voc0712_150e.py 8
_base_ = [
    '../_base_/models/updetr_r50_oneshot.py',
    '../_base_/datasets/oneshot_voc0712.py',
    '../_base_/schedules/finetune_150e.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdet_updetr'], allow_failed_imports=False)

# 5 test episodes per class present in each of the 4952 test images (tens
# of thousands): validate every 50 epochs, not every 10.
train_cfg = dict(val_interval=50)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
