# UP-DETR pre-training model: the pre-norm DETR (./prenorm_detr_r50.py: R50,
# pre-norm transformer, N=100) plus the pretext, as the paper pre-trains it:
# M=10 query patches through the frozen CNN and patch2query onto groups of
# 10 queries, the decoder's self-attention masked by group, the 2-way
# UPDETRHead with feature reconstruction.
_base_ = './prenorm_detr_r50.py'

model = dict(
    type='UPDETR',
    num_patches=10,
    patch_feat_dims=2048,
    mask_ratio=0.1,
    freeze_backbone=True,
    query_shuffle=False,
    data_preprocessor=dict(type='UPDETRDataPreprocessor'),
    decoder=dict(type='GroupMaskedDecoder'),
    # N, M and the feature size come from the model; the no-match weight is
    # M / N.
    bbox_head=dict(
        _delete_=True,
        type='UPDETRHead',
        embed_dims=256,
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        loss_rec=dict(type='PatchReconstructionLoss', loss_weight=1.0)))
