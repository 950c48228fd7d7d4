"""Tests of ``tools/model_converters/panoptic_to_mmdet.py`` and
``tools/model_converters/panoptic_keys.py``.

A reference-format panoptic (``DETRsegm``) state dict: the tiny reference
DETR of ``tests/reference`` under ``detr.`` with a 251-way classifier, plus
``bbox_attention`` and ``mask_head`` with the reference's names and shapes
(``MaskHeadSmallConv(dim + nheads, fpn_dims, dim)``). Converted, it must load
strictly into our tiny ``UPDETRPanoptic`` with the right classifier rows.

Equivalence: a random tiny reference panoptic model
(``tests/reference/detr_panoptic_reference.py``: ResNet-18, width 128, 8
heads as GroupNorm(8) needs, 1 + 1 layers, N = 6, 251-way classifier), as
dddzg/up-detr builds it (pre-norm, attention maps softmaxed per head) and as
facebookresearch/detr does (post-norm, one softmax over heads and
positions), and the two other mixes, converted and loaded strictly into our
model (our configs' per-head default; ``softmax_per_head=False`` for the
joint form), must give the reference's class logits (our 134 rows), boxes,
attention maps and masks on a padded batch of two sizes; and our
``DETRFusionHead`` the reference's ``PostProcessPanoptic`` segmentation.
"""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from panopticapi.utils import rgb2id
from PIL import Image

from mmdet_updetr.testing import get_tiny_cfg, tiny_panoptic_model_cfg
from tests.reference import randomize_1d_
from tests.reference import updetr_reference as ref
from tests.reference.detr_panoptic_reference import (
    COCO_PANOPTIC_IS_THING_MAP, PostProcessPanoptic, build_reference_panoptic)
from tools.model_converters import (COCO_PANOPTIC_CATEGORY_IDS,
                                    convert_panoptic_state_dict,
                                    panoptic_class_rows, panoptic_to_mmdet)

DIM, HEADS, FPN = 32, 2, (256, 128, 64)  # ResNet-18 strides 16, 8, 4


def _mask_branch_state_dict():
    """The reference's names and shapes (models/segmentation.py)."""
    sd = {}
    for name in ('q_linear', 'k_linear'):
        sd[f'bbox_attention.{name}.weight'] = torch.randn(DIM, DIM)
        sd[f'bbox_attention.{name}.bias'] = torch.randn(DIM)
    inter = [DIM + HEADS, DIM // 2, DIM // 4, DIM // 8, DIM // 16]
    ins = [DIM + HEADS] + inter[:-1]
    for i in range(5):
        sd[f'mask_head.lay{i + 1}.weight'] = torch.randn(
            inter[i], ins[i], 3, 3)
        sd[f'mask_head.lay{i + 1}.bias'] = torch.randn(inter[i])
        sd[f'mask_head.gn{i + 1}.weight'] = torch.randn(inter[i])
        sd[f'mask_head.gn{i + 1}.bias'] = torch.randn(inter[i])
    sd['mask_head.out_lay.weight'] = torch.randn(1, inter[4], 3, 3)
    sd['mask_head.out_lay.bias'] = torch.randn(1)
    for i in range(3):
        sd[f'mask_head.adapter{i + 1}.weight'] = torch.randn(
            inter[i + 1], FPN[i], 1, 1)
        sd[f'mask_head.adapter{i + 1}.bias'] = torch.randn(inter[i + 1])
    return sd


@pytest.fixture(scope='module')
def reference_sd():
    torch.manual_seed(0)
    model, _ = ref.build_reference(
        num_queries=6,
        num_patches=3,
        hidden_dim=DIM,
        nheads=HEADS,
        enc_layers=1,
        dec_layers=1,
        dim_feedforward=2 * DIM)
    sd = {
        f'detr.{k}': v
        for k, v in model.state_dict().items()
        if not k.startswith(('patch2query', 'feature_align', 'class_embed'))
    }
    sd['detr.class_embed.weight'] = torch.randn(251, DIM)
    sd['detr.class_embed.bias'] = torch.arange(251.)
    sd.update(_mask_branch_state_dict())
    return sd


def _our_model():
    cfg = get_tiny_cfg('updetr/detr_panoptic_mask_coco_25e.py', num_queries=6)
    tiny_panoptic_model_cfg(cfg.model, 80, 53)
    return MODELS.build(cfg.model)


def test_convert_loads_strictly_with_class_rows(reference_sd):
    converted = convert_panoptic_state_dict(reference_sd)
    num_bn = sum(k.endswith('running_var') for k in reference_sd)
    assert len(converted) == len(reference_sd) + num_bn  # all consumed
    model = _our_model()
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    ids = list(COCO_PANOPTIC_CATEGORY_IDS)
    assert ids[79] == 90 and ids[80] == 92 and ids[-1] == 200
    torch.testing.assert_close(ours['bbox_head.fc_cls.bias'],
                               torch.tensor(ids + [250.]))
    torch.testing.assert_close(
        ours['bbox_head.fc_cls.weight'],
        reference_sd['detr.class_embed.weight'][ids + [250]])
    for ref_key, our_key in (
        ('mask_head.adapter2.weight', 'bbox_head.mask_head.adapter2.weight'),
        ('mask_head.gn5.bias', 'bbox_head.mask_head.gn5.bias'),
        ('bbox_attention.k_linear.weight',
         'bbox_head.bbox_attention.k_linear.weight'),
        ('detr.query_embed.weight', 'query_embedding.weight'),
        ('detr.backbone.0.body.layer2.0.conv1.weight',
         'backbone.layer2.0.conv1.weight'),
    ):
        assert torch.equal(ours[our_key], reference_sd[ref_key]), our_key


def test_unknown_keys_are_named(reference_sd):
    with pytest.raises(KeyError, match='mask_head.lay9.weight'):
        convert_panoptic_state_dict(
            dict(reference_sd, **{'mask_head.lay9.weight': torch.zeros(1)}))


def test_tool_writes_a_loadable_checkpoint(reference_sd, tmp_path, capsys):
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=reference_sd, epoch=24), src)
    tool = panoptic_to_mmdet
    tool.convert(str(src), str(dst))
    out = capsys.readouterr().out
    assert 'pre-norm' in out and 'softmax per head (dddzg/up-detr)' in out
    assert 'load it as is' in out
    checkpoint = torch.load(dst, map_location='cpu')
    assert checkpoint['meta']['pre_norm'] is True
    assert checkpoint['meta']['softmax_per_head'] is True
    assert checkpoint['meta']['cfg_options'] == []
    _our_model().load_state_dict(checkpoint['state_dict'], strict=True)
    # facebookresearch/detr's kind (post-norm): the joint softmax too.
    post = {
        k: v
        for k, v in reference_sd.items()
        if not k.startswith('detr.transformer.encoder.norm.')
    }
    assert len(post) == len(reference_sd) - 2
    torch.save(dict(model=post), src)
    tool.convert(str(src), str(dst))
    out = capsys.readouterr().out
    assert 'post-norm' in out and 'one softmax over heads' in out
    options = torch.load(dst, map_location='cpu')['meta']['cfg_options']
    assert options == [
        'model.encoder.normalize_before=False',
        'model.decoder.normalize_before=False',
        'model.bbox_head.softmax_per_head=False'
    ]
    assert 'need --cfg-options ' + ' '.join(options) in out
    # The guess can be overridden.
    tool.convert(str(src), str(dst), attention_softmax='per-head')
    assert 'softmax per head (dddzg/up-detr) (as told)' in \
        capsys.readouterr().out
    options = torch.load(dst, map_location='cpu')['meta']['cfg_options']
    assert options == [
        'model.encoder.normalize_before=False',
        'model.decoder.normalize_before=False'
    ]
    with pytest.raises(ValueError, match='attention_softmax'):
        tool.convert(str(src), str(dst), attention_softmax='flatten3')
    # A detector checkpoint (no mask head) is refused with a hint.
    detector = {k: v for k, v in reference_sd.items() if k.startswith('detr')}
    torch.save(dict(model=detector), src)
    with pytest.raises(SystemExit, match='detr_to_mmdet'):
        panoptic_to_mmdet.convert(str(src), str(dst))


# --------------------------------------------------------------------------
# Equivalence: the converted weights give the reference's outputs.
# --------------------------------------------------------------------------
#: Width and heads that the reference's GroupNorm(8) allows (dim + heads and
#: dim // 16 multiples of 8).
EQ_DIM, EQ_HEADS, EQ_QUERIES = 128, 8, 6
IMG_SHAPES = ((160, 224), (192, 160))  # (h, w), padded to (192, 224)
ATOL = 1e-5


def _random_reference(pre_norm: bool,
                      softmax_per_head: bool) -> torch.nn.Module:
    """A tiny reference DETRsegm, eval mode, every 1-D tensor randomised
    (biases of the mask branches included, which the reference zeroes).
    The same weights whatever the softmax (it has none)."""
    torch.manual_seed(0)
    model = build_reference_panoptic(
        num_queries=EQ_QUERIES,
        hidden_dim=EQ_DIM,
        nheads=EQ_HEADS,
        enc_layers=1,
        dec_layers=1,
        dim_feedforward=2 * EQ_DIM,
        dropout=0.,
        pre_norm=pre_norm,
        softmax_per_head=softmax_per_head)
    randomize_1d_(model)
    with torch.no_grad():
        # The maps (~1 / (h * w) each per head, ~1 / (heads * h * w)
        # jointly) are the only per-query input of the mask head; trained
        # weights amplify them, random ones would leave all queries' masks
        # nearly equal.
        model.mask_head.lay1.weight[:, -EQ_HEADS:] *= 300.
    return model.eval()


def _our_equivalent_model(pre_norm: bool, softmax_per_head: bool):
    """Our tiny panoptic model with the reference's sizes, GroupNorm(8);
    the config's attention softmax unless ``softmax_per_head`` is False."""
    cfg = get_tiny_cfg(
        'updetr/detr_panoptic_mask_coco_25e.py',
        embed_dims=EQ_DIM,
        num_queries=EQ_QUERIES)
    model = tiny_panoptic_model_cfg(cfg.model, 80, 53)
    for coder in (model.encoder, model.decoder):
        coder.normalize_before = pre_norm
        for key, attn in coder.layer_cfg.items():
            if key.endswith('attn_cfg'):
                attn.num_heads = EQ_HEADS
    model.bbox_head.update(
        num_heads=EQ_HEADS, mask_norm_cfg=dict(type='GN', num_groups=8))
    if not softmax_per_head:  # facebookresearch/detr's joint softmax
        model.bbox_head.softmax_per_head = False
    return MODELS.build(model)


def _run_both(reference, model):
    """Both models on one padded batch of two sizes; our internals are
    called as ``predict`` does. Returns the reference's output, ours
    (classes, boxes, masks) and both attention maps."""
    torch.manual_seed(1)
    samples = ref.nested_tensor_from_tensor_list(
        [torch.randn(3, h, w) for h, w in IMG_SHAPES])
    pad_shape = tuple(samples.tensors.shape[-2:])
    data_samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=shape,
                ori_shape=shape,
                pad_shape=pad_shape,
                batch_input_shape=pad_shape,
                scale_factor=(1., 1.))) for shape in IMG_SHAPES
    ]
    maps = {}
    hooks = [
        module.register_forward_hook(
            lambda m, i, o, key=key: maps.__setitem__(key, o))
        for key, module in (('ref', reference.bbox_attention),
                            ('ours', model.bbox_head.bbox_attention))
    ]
    with torch.no_grad():
        out = reference(samples)
        feats = model.extract_feat(samples.tensors)
        ours = model.bbox_head(
            **model.forward_transformer(feats, data_samples))
    for hook in hooks:
        hook.remove()
    return out, ours, maps


#: (pre_norm, softmax_per_head): dddzg/up-detr's panoptic model,
#: facebookresearch/detr's, and the two other mixes.
REFERENCE_KINDS = dict(
    updetr=(True, True),
    detr=(False, False),
    pre_joint=(True, False),
    post_per_head=(False, True))


@pytest.mark.parametrize(
    'pre_norm,softmax_per_head',
    list(REFERENCE_KINDS.values()),
    ids=list(REFERENCE_KINDS))
def test_converted_model_gives_reference_outputs(pre_norm, softmax_per_head):
    """Classes of our rows, boxes of every layer, attention maps and masks
    of the converted model equal the reference's on a padded batch."""
    reference = _random_reference(pre_norm, softmax_per_head)
    model = _our_equivalent_model(pre_norm, softmax_per_head)
    model.load_state_dict(
        convert_panoptic_state_dict(reference.state_dict()), strict=True)
    out, (cls, boxes, masks), maps = _run_both(reference, model.eval())
    layers = out['aux_outputs'] + [out]
    torch.testing.assert_close(
        cls,
        torch.stack([layer['pred_logits']
                     for layer in layers])[..., panoptic_class_rows()],
        atol=ATOL,
        rtol=1e-5)
    torch.testing.assert_close(
        boxes,
        torch.stack([layer['pred_boxes'] for layer in layers]),
        atol=ATOL,
        rtol=1e-5)
    # Per head, each head's map sums to 1; jointly, each query's maps over
    # all heads together.
    assert maps['ours'].shape == (2, EQ_QUERIES, EQ_HEADS, 6, 7)
    torch.testing.assert_close(maps['ours'], maps['ref'], atol=1e-6, rtol=0)
    if softmax_per_head:
        torch.testing.assert_close(maps['ours'].sum((3, 4)),
                                   torch.ones(2, EQ_QUERIES, EQ_HEADS))
    else:
        torch.testing.assert_close(maps['ours'].sum((2, 3, 4)),
                                   torch.ones(2, EQ_QUERIES))
    assert masks.shape == (2, EQ_QUERIES, 48, 56)  # stride 4 of (192, 224)
    torch.testing.assert_close(masks, out['pred_masks'], atol=ATOL, rtol=1e-5)


#: Our labels per query (things < 80 <= stuff, 133 = no object; a label
#: above 1000 has a low score) of the two images for the post-processing.
FUSION_LABELS = ((0, 0, 85, 100, 5, 133), (2, 120, 81, 7, 1003, 130))


def _fusion_inputs():
    """Our (2, N, 134) logits: score ~0.99 for the chosen label, ~0.05 for
    a low one; the reference's 251-way logits with the same softmax (unused
    category ids at -1e4, as training drives them); and smooth random mask
    logits (2, N, 48, 56), query 3 of image 1 everywhere below the others
    (its segment is empty and gets dropped)."""
    ours = torch.zeros(2, EQ_QUERIES, 134)
    for img, labels in enumerate(FUSION_LABELS):
        for query, label in enumerate(labels):
            ours[img, query, label % 1000] = 10. if label < 1000 else 2.
    theirs = torch.full((2, EQ_QUERIES, 251), -1e4)
    theirs[..., panoptic_class_rows()] = ours
    torch.manual_seed(2)
    masks = F.interpolate(
        torch.randn(2, EQ_QUERIES, 12, 14) * 5, (48, 56),
        mode='bilinear',
        align_corners=False)
    masks[1, 3] = -100.
    return ours, theirs, masks


def test_fusion_gives_reference_panoptic_segmentation():
    """Our ``DETRFusionHead`` (the configs' settings) and the reference's
    ``PostProcessPanoptic`` on the same classes and masks, at the padded
    size: our head crops the masks to the image first, on purpose, so the
    padded size is where both must agree. No stuff class appears twice in
    an image (the reference then repaints without merging, ours keeps them
    merged; also on purpose)."""
    pad_shape = (192, 224)
    fusion = MODELS.build(
        dict(
            type='DETRFusionHead',
            num_things_classes=80,
            num_stuff_classes=53,
            test_cfg=dict(object_mask_thr=0.85, min_area=4)))
    ours_logits, ref_logits, masks = _fusion_inputs()
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=pad_shape,
                ori_shape=pad_shape,
                batch_input_shape=pad_shape)) for _ in range(2)
    ]
    ours = fusion.predict(ours_logits, masks, samples)
    theirs = PostProcessPanoptic(COCO_PANOPTIC_IS_THING_MAP, 0.85)(dict(
        pred_logits=ref_logits,
        pred_masks=masks,
        pred_boxes=torch.rand(2, EQ_QUERIES, 4)), [pad_shape] * 2)
    category_of = torch.tensor(list(COCO_PANOPTIC_CATEGORY_IDS) + [-1])
    for our, their, num_segments in zip(ours, theirs, (5, 4)):
        pan = our['pan_results'].sem_seg[0].long()
        ids = torch.from_numpy(
            rgb2id(np.asarray(Image.open(io.BytesIO(their['png_string'])))))
        segments = their['segments_info']
        assert len(segments) == num_segments
        # Same category at every pixel, same partition into segments.
        ref_category = torch.tensor([s['category_id'] for s in segments])
        assert torch.equal(category_of[pan % INSTANCE_OFFSET],
                           ref_category[ids])
        num_pairs = len(torch.unique(pan * 1000 + ids))
        assert num_pairs == len(pan.unique()) == len(ids.unique())
        ours_info = our['pan_results'].metainfo['segments_info']
        assert [(s['area'], s['isthing']) for s in ours_info] == \
            [(s['area'], s['isthing']) for s in segments]
