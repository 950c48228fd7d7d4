import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmdet_updetr.testing import get_tiny_cfg

SHAPES = [(64, 80), (48, 64)]


def _model(**overrides):
    cfg = get_tiny_cfg('updetr/detr_oneshot_voc0712_150e.py', num_patches=1)
    cfg.model.backbone.init_cfg = None
    cfg.model.update(overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _data(queries):
    """Two images (uint8) and one uint8 query crop (1, 3, 32, 32) each."""
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for (h, w), query in zip(SHAPES, queries):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen))
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        sample.query_patches = query.to(torch.uint8)
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 4., 30., 40.]]),
            labels=torch.zeros(1, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _queries(value):
    return [torch.full((1, 3, 32, 32), value)] * len(SHAPES)


def test_only_one_query_crop():
    with pytest.raises(ValueError, match='num_patches must be 1'):
        _model(num_patches=2)
    model = _model()
    assert model.num_patches == 1 and model.group_size == 10
    assert model.mask_ratio == 0 and not model.freeze_backbone
    assert not hasattr(model.bbox_head, 'feature_align')
    # DETR's no-object weight, not M / N = 1 / 10.
    assert model.bbox_head.loss_cls.class_weight == [1.0, 0.1]


def test_query_crop_reaches_every_object_query():
    model = _model().eval()
    outs = []
    for value in (30, 220):
        data = model.data_preprocessor(_data(_queries(value)), False)
        with torch.no_grad():
            hidden = model.forward_transformer(
                model.extract_feat(data['inputs']),
                data['data_samples'])['hidden_states']
        outs.append(hidden[-1])  # (bs, N, dim)
    change = (outs[0] - outs[1]).abs().amax(dim=-1)
    assert change.shape == (2, 10)
    assert (change > 1e-4).all()  # all 10 queries of both images


def test_predictions_drop_the_query_crop():
    model = _model().eval()
    data = model.data_preprocessor(_data(_queries(90)), False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for result, (h, w) in zip(results, SHAPES):
        assert 'query_patches' not in result
        assert 'query_patch_aug' not in result
        pred = result.pred_instances
        assert pred.bboxes.shape == (10, 4) and (pred.labels == 0).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert (pred.bboxes[:, 2] <= w).all() and (pred.bboxes[:, 3]
                                                   <= h).all()


def test_losses_are_detrs_two_way_without_reconstruction():
    model = _model().train()
    data = model.data_preprocessor(_data(_queries(90)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_iou'}
    total = sum(losses.values())
    total.backward()
    # The CNN learns (5e-5 in the configs). (The residual branches start
    # at zero, mmdet's zero_init_residual: look at the shortcut's conv.)
    grad = model.backbone.layer4[0].downsample[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.patch2query.weight.grad.abs().sum() > 0


def test_boxes_of_any_class_train_as_matches():
    """Ground truth keeps its VOC class (for visualisers); the loss sees
    every box as a match: the losses equal those of label 0 (without the
    mapping, class 7 would index past the 2-way head's classes)."""
    model = _model().train()
    losses = []
    for label in (0, 7):
        data = model.data_preprocessor(_data(_queries(90)), True)
        for sample in data['data_samples']:
            sample.gt_instances.labels.fill_(label)
        torch.manual_seed(1)
        losses.append(model.loss(data['inputs'], data['data_samples']))
    for key in losses[0]:
        assert torch.equal(losses[0][key], losses[1][key]), key


def test_predictions_named_by_the_episodes_class():
    model = _model().eval()
    data = model.data_preprocessor(_data(_queries(90)), False)
    for sample, label in zip(data['data_samples'], (7, 11)):
        sample.set_metainfo(dict(oneshot_class=label))
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for result, label in zip(results, (7, 11)):
        assert (result.pred_instances.labels == label).all()
        assert (result.pred_group_instances.labels == label).all()
