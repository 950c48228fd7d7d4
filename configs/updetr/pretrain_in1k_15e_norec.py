# Ablation (Table 6, case b): frozen CNN, no feature reconstruction (no
# feature_align, no reconstruction loss); otherwise pretrain_in1k_15e.py.
# 8 GPUs x 32 images, 15 epochs, lr x0.1 at epoch 10 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k_15e_norec.py 8
_base_ = './pretrain_in1k_15e.py'

model = dict(bbox_head=dict(loss_rec=None))
