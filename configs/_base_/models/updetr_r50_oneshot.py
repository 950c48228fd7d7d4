# UP-DETR's architecture (./updetr_r50.py: R50, pre-norm transformer, N=100)
# for one-shot detection (the paper's Fig. 3b): one query crop (M=1) through
# the shared CNN, global average pooling and patch2query, added to all 100
# object queries; 2-way classification (matches the query or not), DETR's
# box losses, no feature reconstruction; the CNN is trained (stem and layer1
# frozen, as in DETR).
_base_ = './updetr_r50.py'

model = dict(
    type='OneShotUPDETR',
    num_patches=1,
    # The query is the task here, not a pretext: never drop its feature.
    mask_ratio=0.0,
    freeze_backbone=False,
    # One group of queries: no group mask to apply.
    decoder=dict(type='PreNormDetrTransformerDecoder'),
    bbox_head=dict(
        loss_rec=None,
        # DETR's no-object weight (M / N would make it 1 / 100 with M = 1).
        bg_cls_weight=0.1))
