# UP-DETR fine-tuned on your own COCO-format dataset: set the paths and the
# class names below (the json's category names, in the json's order).
# 8 GPUs x 4 images, 150 epochs, lr x0.1 at epoch 100 (auto_scale_lr: 32;
# on fewer GPUs add --auto-scale-lr). Everything else is
# ./finetune_coco_150e.py: the pre-training checkpoint, DETR's augmentation,
# CocoMetric (AP, AP50, AP75, APs, APm, APl).
#   tools/dist_train.sh configs/updetr/finetune_custom_coco.py 8
_base_ = './finetune_coco_150e.py'

data_root = 'data/my_dataset/'
classes = ('cat', 'dog')
metainfo = dict(classes=classes)

model = dict(bbox_head=dict(num_classes=len(classes)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/')))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
