# Ablation (Table 5): a single query patch per image (M=1) instead of 10;
# otherwise pretrain_in1k_15e.py. The one patch feature goes onto all 100
# queries (one group: no mask), the no-match weight is M/N = 0.01.
# 8 GPUs x 32 images, 15 epochs, lr x0.1 at epoch 10 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k_15e_m1.py 8
_base_ = './pretrain_in1k_15e.py'

model = dict(num_patches=1)

# The pipeline crops as many patches as the model has groups (a list in the
# base, so it is restated here with num_patches=1).
train_pipeline = [
    dict(type='SafeLoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='QueryPatchTransform',
        num_patches=1,
        min_size=8,
        patch_size=128,
        augment=True),
    {{_base_.train_resize}},  # ../_base_/datasets/imagenet_unlabeled.py
    dict(type='PackUPDETRInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
