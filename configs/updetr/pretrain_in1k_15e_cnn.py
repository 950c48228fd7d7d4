# Ablation (Table 6, case c): the CNN is trained during pre-training (lr
# x0.1, stem and layer1 frozen as in DETR), with feature reconstruction;
# otherwise pretrain_in1k_15e.py. The paper finds it worse than DETR.
# 8 GPUs x 32 images, 15 epochs, lr x0.1 at epoch 10 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k_15e_cnn.py 8
_base_ = './pretrain_in1k_15e.py'

model = dict(freeze_backbone=False)
