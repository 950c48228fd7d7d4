# UP-DETR, panoptic mask stage (paper Table 4: PQ 44.7 vs DETR 44.3): the
# box-stage detector (./panoptic_box_coco_300e.py) frozen, DETR's mask head
# trained; otherwise ./detr_panoptic_mask_coco_25e.py.
# 8 GPUs x 2 images, 25 epochs, lr x0.1 at epoch 15 (auto_scale_lr: 16).
#   tools/dist_train.sh configs/updetr/panoptic_mask_coco_25e.py 8
_base_ = './detr_panoptic_mask_coco_25e.py'

load_from = 'work_dirs/panoptic_box_coco_300e/epoch_300.pth'
