# UP-DETR one-shot detection on VOC (CoAE split: 16 seen classes on VOC07+12
# trainval -> all 20 on VOC2007 test), the paper's Table 3: the DETR set-up
# (./detr_oneshot_voc0712_300e.py) started from an UP-DETR pre-training
# checkpoint, keeping patch2query and the 2-way match classifier.
# 8 GPUs x 4 images, 300 epochs, lr x0.1 at epoch 200 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/oneshot_voc0712_300e.py 8
_base_ = './detr_oneshot_voc0712_300e.py'

# The pre-training checkpoint: ours (configs/updetr/pretrain_in1k.py) or the
# reference one converted by tools/model_converters/updetr_to_mmdet.py. It
# gives the CNN, transformer, queries, patch2query and both heads' branches;
# only the pretext's feature_align is dropped (the log lists the keys).
model = dict(
    backbone=dict(init_cfg=None),
    init_cfg=dict(
        type='UPDETRPretrained',
        checkpoint='work_dirs/pretrain_in1k/epoch_60.pth',
        keep_classifier=True))
