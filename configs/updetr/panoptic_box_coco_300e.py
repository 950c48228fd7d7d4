# UP-DETR, panoptic box stage (paper Table 4): fine-tune from an UP-DETR
# pre-training checkpoint on the boxes of all COCO panoptic segments (80
# things + 53 stuff); otherwise ./detr_panoptic_box_coco_300e.py.
# 8 GPUs x 4 images, 300 epochs, lr x0.1 at epoch 200 (auto_scale_lr: 32).
#   tools/dist_train.sh configs/updetr/panoptic_box_coco_300e.py 8
# Next: configs/updetr/panoptic_mask_coco_25e.py (frozen, mask head).
_base_ = './detr_panoptic_box_coco_300e.py'

# The pre-training checkpoint (ours, or the reference's converted by
# tools/model_converters/updetr_to_mmdet.py); the CNN comes from it too.
model = dict(
    backbone=dict(init_cfg=None),
    init_cfg=dict(
        type='UPDETRPretrained',
        checkpoint='work_dirs/pretrain_in1k/epoch_60.pth'))
