# UP-DETR fine-tuned on PASCAL VOC07+12 trainval -> VOC2007 test: DETR's
# training (./detr_voc0712_300e.py) started from an UP-DETR pre-training
# checkpoint (CNN, transformer, queries, box head; new classifier).
# 8 GPUs x 4 images, 300 epochs, lr x0.1 at epoch 200 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/finetune_voc0712_300e.py 8
_base_ = './detr_voc0712_300e.py'

# The pre-training checkpoint: ours (configs/updetr/pretrain_in1k.py) or the
# reference one converted by tools/model_converters/updetr_to_mmdet.py. The
# log lists the loaded, dropped (patch2query, feature_align) and newly
# initialised (classifier) keys. The CNN comes from it too: no ImageNet init.
model = dict(
    backbone=dict(init_cfg=None),
    init_cfg=dict(
        type='UPDETRPretrained',
        checkpoint='work_dirs/pretrain_in1k/epoch_60.pth'))
