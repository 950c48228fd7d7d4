"""A compact re-implementation of the reference panoptic model (DETRsegm).

Written from ``facebookresearch/detr`` ``models/segmentation.py``
(``DETRsegm``, ``MHAttentionMap``, ``MaskHeadSmallConv``; dddzg/up-detr has
the same file but for ``MHAttentionMap``'s softmax, see below) and
``models/{backbone,transformer}.py`` with ``--masks``:
the CNN returns all four stages (``return_interm_layers``) and the
transformer returns the encoder memory besides the decoder outputs. Plain
torch, the reference's module names, so ``DETRsegm().state_dict()`` has the
keys of its panoptic checkpoints (``detr.`` + the detector,
``bbox_attention``, ``mask_head``). Used as the ground truth for
``tools/model_converters/panoptic_to_mmdet.py`` and our ``UPDETRPanoptic``.

Faithful to the reference in what the tests compare: ``bbox_attention`` on
the last decoder layer's output over the memory with the padding mask,
``MHAttentionMap``'s softmax in either form (``softmax_per_head=True``: each
head over its positions, ``softmax(weights.flatten(3))``, dddzg/up-detr's
since March 2021 (after facebookresearch/detr#247); ``False``: heads and
positions together, ``softmax(weights.flatten(2))``, facebookresearch/detr's,
with which its panoptic checkpoints were trained), GroupNorm with 8 groups in
the conv head and the CNN's stride-16, -8, -4 features fed in that order.
``PostProcessPanoptic`` follows the reference line by line (the PNG bytes
are read back with ``np.asarray`` instead of ``torch.ByteStorage``).
"""
import io
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from panopticapi.utils import id2rgb, rgb2id
from PIL import Image
from torch import Tensor, nn

from tests.reference.detr_reference import DETR
from tests.reference.updetr_reference import (Backbone, Joiner, NestedTensor,
                                              PositionEmbeddingSine,
                                              ResNet18Body, Transformer,
                                              box_cxcywh_to_xyxy)


class IntermediateResNet18Body(ResNet18Body):
    """ResNet-18 behind ``IntermediateLayerGetter`` with
    ``return_layers={'layer1': '0', 'layer2': '1', 'layer3': '2',
    'layer4': '3'}`` (the reference's setting with ``--masks``)."""

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for i, name in enumerate(('layer1', 'layer2', 'layer3', 'layer4')):
            x = getattr(self, name)(x)
            out[str(i)] = x
        return out


class MaskBackbone(Backbone):
    """``models.backbone.Backbone`` with ``return_interm_layers=True``:
    features at strides 4, 8, 16 and 32, each with its resized mask."""

    def __init__(self) -> None:
        super().__init__()
        self.body = IntermediateResNet18Body()
        for parameter in self.body.parameters():
            parameter.requires_grad_(False)


class SegmTransformer(Transformer):
    """``models.transformer.Transformer`` as DETR calls it: the query
    embedding is the (N, C) weight and the encoder memory comes back too.

    Only :class:`DETRsegm` uses it (the detector of
    :mod:`tests.reference.detr_reference` expects the decoder outputs
    alone).
    """

    def __init__(self, d_model: int, nhead: int, *args) -> None:
        super().__init__(d_model, nhead, *args)
        self.nhead = nhead

    def forward(self, src: Tensor, mask: Tensor, query_embed: Tensor,
                pos_embed: Tensor) -> Tuple[Tensor, Tensor]:
        """Return the decoder outputs of all layers, (L, B, N, C), and the
        memory as a map, (B, C, H, W)."""
        bs, c, h, w = src.shape
        src = src.flatten(2).permute(2, 0, 1)
        pos_embed = pos_embed.flatten(2).permute(2, 0, 1)
        query_embed = query_embed.unsqueeze(1).repeat(1, bs, 1)
        mask = mask.flatten(1)
        tgt = torch.zeros_like(query_embed)
        memory = self.encoder(src, src_key_padding_mask=mask, pos=pos_embed)
        hs = self.decoder(
            tgt,
            memory,
            tgt_mask=None,
            memory_key_padding_mask=mask,
            pos=pos_embed,
            query_pos=query_embed)
        return hs.transpose(1, 2), memory.permute(1, 2, 0).view(bs, c, h, w)


class MHAttentionMap(nn.Module):
    """``models.segmentation.MHAttentionMap``: the attention softmax only
    (no values), normalised per head (dddzg/up-detr, ``softmax_per_head``)
    or over heads and positions together (facebookresearch/detr)."""

    def __init__(self,
                 query_dim: int,
                 hidden_dim: int,
                 num_heads: int,
                 dropout: float = 0.,
                 bias: bool = True,
                 softmax_per_head: bool = True) -> None:
        super().__init__()
        self.softmax_per_head = softmax_per_head
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.dropout = nn.Dropout(dropout)
        self.q_linear = nn.Linear(query_dim, hidden_dim, bias=bias)
        self.k_linear = nn.Linear(query_dim, hidden_dim, bias=bias)
        nn.init.zeros_(self.k_linear.bias)
        nn.init.zeros_(self.q_linear.bias)
        nn.init.xavier_uniform_(self.k_linear.weight)
        nn.init.xavier_uniform_(self.q_linear.weight)
        self.normalize_fact = float(hidden_dim / self.num_heads)**-0.5

    def forward(self, q: Tensor, k: Tensor, mask: Tensor = None) -> Tensor:
        """(B, N, C) queries over a (B, C, H, W) map -> (B, N, heads, H, W).
        """
        q = self.q_linear(q)
        k = F.conv2d(k,
                     self.k_linear.weight.unsqueeze(-1).unsqueeze(-1),
                     self.k_linear.bias)
        qh = q.view(q.shape[0], q.shape[1], self.num_heads,
                    self.hidden_dim // self.num_heads)
        kh = k.view(k.shape[0], self.num_heads,
                    self.hidden_dim // self.num_heads, k.shape[-2],
                    k.shape[-1])
        weights = torch.einsum('bqnc,bnchw->bqnhw', qh * self.normalize_fact,
                               kh)
        if mask is not None:
            weights.masked_fill_(mask.unsqueeze(1).unsqueeze(1), float('-inf'))
        if self.softmax_per_head:  # dddzg/up-detr
            weights = F.softmax(weights.flatten(3), dim=-1).view_as(weights)
        else:  # facebookresearch/detr
            weights = F.softmax(weights.flatten(2), dim=-1).view_as(weights)
        return self.dropout(weights)


class MaskHeadSmallConv(nn.Module):
    """``models.segmentation.MaskHeadSmallConv`` (GroupNorm with 8 groups,
    so ``dim`` and ``context_dim // 16`` must be multiples of 8)."""

    def __init__(self, dim: int, fpn_dims: List[int],
                 context_dim: int) -> None:
        super().__init__()
        inter_dims = [
            dim, context_dim // 2, context_dim // 4, context_dim // 8,
            context_dim // 16, context_dim // 64
        ]
        self.lay1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.gn1 = nn.GroupNorm(8, dim)
        self.lay2 = nn.Conv2d(dim, inter_dims[1], 3, padding=1)
        self.gn2 = nn.GroupNorm(8, inter_dims[1])
        self.lay3 = nn.Conv2d(inter_dims[1], inter_dims[2], 3, padding=1)
        self.gn3 = nn.GroupNorm(8, inter_dims[2])
        self.lay4 = nn.Conv2d(inter_dims[2], inter_dims[3], 3, padding=1)
        self.gn4 = nn.GroupNorm(8, inter_dims[3])
        self.lay5 = nn.Conv2d(inter_dims[3], inter_dims[4], 3, padding=1)
        self.gn5 = nn.GroupNorm(8, inter_dims[4])
        self.out_lay = nn.Conv2d(inter_dims[4], 1, 3, padding=1)
        self.dim = dim
        self.adapter1 = nn.Conv2d(fpn_dims[0], inter_dims[1], 1)
        self.adapter2 = nn.Conv2d(fpn_dims[1], inter_dims[2], 1)
        self.adapter3 = nn.Conv2d(fpn_dims[2], inter_dims[3], 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor, bbox_mask: Tensor,
                fpns: List[Tensor]) -> Tensor:
        """Return (B * N, 1, H_4, W_4) mask logits."""

        def expand(tensor, length):
            return tensor.unsqueeze(1).repeat(1, int(length), 1, 1,
                                              1).flatten(0, 1)

        x = torch.cat([expand(x, bbox_mask.shape[1]),
                       bbox_mask.flatten(0, 1)], 1)
        x = F.relu(self.gn1(self.lay1(x)))
        x = F.relu(self.gn2(self.lay2(x)))
        for i, fpn in enumerate(fpns, start=1):
            cur_fpn = getattr(self, f'adapter{i}')(fpn)
            if cur_fpn.size(0) != x.size(0):
                cur_fpn = expand(cur_fpn, x.size(0) / cur_fpn.size(0))
            x = cur_fpn + F.interpolate(
                x, size=cur_fpn.shape[-2:], mode='nearest')
            x = getattr(self, f'gn{i + 2}')(getattr(self, f'lay{i + 2}')(x))
            x = F.relu(x)
        return self.out_lay(x)


#: The reference's ``fpn_dims`` of ``MaskHeadSmallConv`` (ResNet-50).
R50_FPN_DIMS = (1024, 512, 256)


class DETRsegm(nn.Module):
    """``models.segmentation.DETRsegm``: a DETR plus the mask branches.

    Args:
        detr (DETR): The detector (:class:`MaskBackbone`,
            :class:`SegmTransformer`).
        fpn_dims (Sequence[int]): Channels of the CNN's stride-16, -8, -4
            features. The reference hard-codes ResNet-50's (1024, 512, 256);
            the ResNet-18 here has (256, 128, 64).
        softmax_per_head (bool): ``MHAttentionMap``'s form: True for
            dddzg/up-detr, False for facebookresearch/detr.
    """

    def __init__(self,
                 detr: DETR,
                 fpn_dims: Sequence[int] = R50_FPN_DIMS,
                 softmax_per_head: bool = True) -> None:
        super().__init__()
        self.detr = detr
        hidden_dim = detr.transformer.d_model
        nheads = detr.transformer.nhead
        self.bbox_attention = MHAttentionMap(
            hidden_dim,
            hidden_dim,
            nheads,
            dropout=0,
            softmax_per_head=softmax_per_head)
        self.mask_head = MaskHeadSmallConv(hidden_dim + nheads, list(fpn_dims),
                                           hidden_dim)

    def forward(self, samples: NestedTensor) -> Dict[str, object]:
        """Return ``pred_logits`` (B, N, num_classes + 1), ``pred_boxes``
        (B, N, 4), ``pred_masks`` (B, N, H / 4, W / 4) and ``aux_outputs``.
        """
        features, pos = self.detr.backbone(samples)
        bs = features[-1].tensors.shape[0]
        src, mask = features[-1].decompose()
        src_proj = self.detr.input_proj(src)
        hs, memory = self.detr.transformer(src_proj, mask,
                                           self.detr.query_embed.weight,
                                           pos[-1])
        outputs_class = self.detr.class_embed(hs)
        outputs_coord = self.detr.bbox_embed(hs).sigmoid()
        out = {
            'pred_logits': outputs_class[-1],
            'pred_boxes': outputs_coord[-1]
        }
        out['aux_outputs'] = [{
            'pred_logits': a,
            'pred_boxes': b
        } for a, b in zip(outputs_class[:-1], outputs_coord[:-1])]
        bbox_mask = self.bbox_attention(hs[-1], memory, mask=mask)
        seg_masks = self.mask_head(
            src_proj, bbox_mask,
            [features[2].tensors, features[1].tensors, features[0].tensors])
        out['pred_masks'] = seg_masks.view(bs, self.detr.num_queries,
                                           seg_masks.shape[-2],
                                           seg_masks.shape[-1])
        return out


class PostProcessPanoptic(nn.Module):
    """``models.segmentation.PostProcessPanoptic``.

    Keeps the queries whose best class is not "no object" and whose score
    exceeds ``threshold``; resizes their masks (the padded stride-4 maps)
    bilinearly to ``processed_sizes``; paints each pixel with the query of
    the largest mask logit, first with the queries of one stuff class merged
    (``dedup``); drops segments of at most 4 pixels and repaints (without
    ``dedup``) until none is that small; resizes the id map (nearest) to
    ``target_sizes``.

    Args:
        is_thing_map (dict[int, bool]): Category id -> is a thing.
        threshold (float): Score threshold. Defaults to 0.85.
    """

    def __init__(self,
                 is_thing_map: Dict[int, bool],
                 threshold: float = 0.85) -> None:
        super().__init__()
        self.threshold = threshold
        self.is_thing_map = is_thing_map

    @torch.no_grad()
    def forward(self,
                outputs: dict,
                processed_sizes: Sequence[tuple],
                target_sizes: Sequence[tuple] = None) -> List[dict]:
        """Return per image ``png_string`` (ids as panopticapi RGB) and
        ``segments_info`` (``id``, ``isthing``, ``category_id``, ``area``).
        """
        if target_sizes is None:
            target_sizes = processed_sizes
        out_logits, raw_masks, raw_boxes = (outputs['pred_logits'],
                                            outputs['pred_masks'],
                                            outputs['pred_boxes'])
        return [
            self._single(*args, outputs['pred_logits'].shape[-1] - 1)
            for args in zip(out_logits, raw_masks, raw_boxes, processed_sizes,
                            target_sizes)
        ]

    def _single(self, cur_logits: Tensor, cur_masks: Tensor, cur_boxes: Tensor,
                size: tuple, target_size: tuple, no_object: int) -> dict:
        scores, labels = cur_logits.softmax(-1).max(-1)
        keep = labels.ne(no_object) & (scores > self.threshold)
        cur_scores, cur_classes = cur_logits.softmax(-1).max(-1)
        cur_scores = cur_scores[keep]
        cur_classes = cur_classes[keep]
        cur_masks = cur_masks[keep]
        cur_masks = F.interpolate(
            cur_masks[None], tuple(size), mode='bilinear').squeeze(0)
        cur_boxes = box_cxcywh_to_xyxy(cur_boxes[keep])
        h, w = cur_masks.shape[-2:]
        assert len(cur_boxes) == len(cur_classes)
        cur_masks = cur_masks.flatten(1)
        stuff_equiv_classes = defaultdict(lambda: [])
        for k, label in enumerate(cur_classes):
            if not self.is_thing_map[label.item()]:
                stuff_equiv_classes[label.item()].append(k)

        def get_ids_area(masks, scores, dedup=False):
            m_id = masks.transpose(0, 1).softmax(-1)
            if m_id.shape[-1] == 0:
                m_id = torch.zeros((h, w), dtype=torch.long)
            else:
                m_id = m_id.argmax(-1).view(h, w)
            if dedup:
                for equiv in stuff_equiv_classes.values():
                    if len(equiv) > 1:
                        for eq_id in equiv:
                            m_id.masked_fill_(m_id.eq(eq_id), equiv[0])
            final_h, final_w = tuple(target_size)
            seg_img = Image.fromarray(id2rgb(m_id.view(h, w).numpy()))
            seg_img = seg_img.resize(
                size=(final_w, final_h), resample=Image.NEAREST)
            np_seg_img = np.asarray(seg_img).reshape(final_h, final_w, 3)
            m_id = torch.from_numpy(rgb2id(np_seg_img))
            area = [m_id.eq(i).sum().item() for i in range(len(scores))]
            return area, seg_img

        area, seg_img = get_ids_area(cur_masks, cur_scores, dedup=True)
        if cur_classes.numel() > 0:
            while True:
                filtered_small = torch.as_tensor(
                    [area[i] <= 4 for i, c in enumerate(cur_classes)],
                    dtype=torch.bool)
                if filtered_small.any().item():
                    cur_scores = cur_scores[~filtered_small]
                    cur_classes = cur_classes[~filtered_small]
                    cur_masks = cur_masks[~filtered_small]
                    area, seg_img = get_ids_area(cur_masks, cur_scores)
                else:
                    break
        else:
            cur_classes = torch.ones(1, dtype=torch.long)
        segments_info = []
        for i, a in enumerate(area):
            cat = cur_classes[i].item()
            segments_info.append({
                'id': i,
                'isthing': self.is_thing_map[cat],
                'category_id': cat,
                'area': a
            })
        with io.BytesIO() as out:
            seg_img.save(out, format='PNG')
            return {
                'png_string': out.getvalue(),
                'segments_info': segments_info
            }


def build_reference_panoptic(num_classes: int = 250,
                             num_queries: int = 100,
                             hidden_dim: int = 256,
                             nheads: int = 8,
                             enc_layers: int = 6,
                             dec_layers: int = 6,
                             dim_feedforward: int = 2048,
                             dropout: float = 0.1,
                             pre_norm: bool = False,
                             softmax_per_head: bool = True) -> DETRsegm:
    """``models.build_model`` for ``--dataset_file coco_panoptic --masks``
    (ResNet-18): 250 category ids + no object = 251 class outputs.

    facebookresearch/detr is ``pre_norm=False, softmax_per_head=False``;
    dddzg/up-detr is ``pre_norm=True, softmax_per_head=True``.
    ``hidden_dim + nheads`` and ``hidden_dim // 16`` must be multiples of 8
    (the mask head's GroupNorm).
    """
    backbone = Joiner(MaskBackbone(),
                      PositionEmbeddingSine(hidden_dim // 2, normalize=True))
    transformer = SegmTransformer(hidden_dim, nheads, enc_layers, dec_layers,
                                  dim_feedforward, dropout, pre_norm)
    detr = DETR(backbone, transformer, num_classes, num_queries)
    return DETRsegm(
        detr, fpn_dims=(256, 128, 64), softmax_per_head=softmax_per_head)


#: ``models/detr.py``'s map for COCO panoptic: ids up to 90 are things.
COCO_PANOPTIC_IS_THING_MAP = {i: i <= 90 for i in range(201)}
