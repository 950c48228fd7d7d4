# Ablation (Fig. 6): no attention mask between the query groups (the plain
# pre-norm decoder instead of GroupMaskedDecoder); otherwise
# pretrain_in1k_15e.py.
# 8 GPUs x 32 images, 15 epochs, lr x0.1 at epoch 10 (auto_scale_lr: 256).
#   tools/dist_train.sh configs/updetr/pretrain_in1k_15e_nomask.py 8
_base_ = './pretrain_in1k_15e.py'

model = dict(decoder=dict(type='PreNormDetrTransformerDecoder'))
