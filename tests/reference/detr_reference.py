"""A compact re-implementation of the reference DETR detector.

Both ``facebookresearch/detr`` and ``dddzg/up-detr`` fine-tune and evaluate
detection with ``models.detr.DETR`` and ``PostProcess``; they differ only in
the transformer (post-norm in DETR, pre-norm in UP-DETR). Built from the
components of :mod:`tests.reference.updetr_reference` (plain torch, with the
reference's module names), so ``DETR().state_dict()`` has the keys of their
checkpoints: ``class_embed`` has ``num_classes + 1`` outputs (91 COCO
category ids + no object for COCO).
"""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.reference.updetr_reference import (MLP, Backbone, Joiner,
                                              NestedTensor,
                                              PositionEmbeddingSine,
                                              Transformer, box_cxcywh_to_xyxy)


class DETR(nn.Module):
    """``models.detr.DETR`` (``aux_loss`` on).

    Args:
        backbone (Joiner): Backbone with position encoding.
        transformer (Transformer): The transformer.
        num_classes (int): Largest class id + 1 (91 for COCO).
        num_queries (int): Object queries.
    """

    def __init__(self, backbone: Joiner, transformer: Transformer,
                 num_classes: int, num_queries: int) -> None:
        super().__init__()
        hidden_dim = transformer.d_model
        self.num_queries = num_queries
        self.transformer = transformer
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = nn.Conv2d(backbone.num_channels, hidden_dim, 1)
        self.backbone = backbone

    def forward(self, samples: NestedTensor) -> Dict[str, object]:
        """Return ``pred_logits`` (B, N, num_classes + 1), ``pred_boxes``
        (B, N, 4) normalised cxcywh and ``aux_outputs`` (earlier layers)."""
        features, pos = self.backbone(samples)
        src, mask = features[-1].decompose()
        bs = src.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        hs = self.transformer(
            self.input_proj(src), mask, query_pos, pos[-1], None)
        outputs_class = self.class_embed(hs)
        outputs_coord = self.bbox_embed(hs).sigmoid()
        layers = [{
            'pred_logits': a,
            'pred_boxes': b
        } for a, b in zip(outputs_class, outputs_coord)]
        out = layers[-1]
        out['aux_outputs'] = layers[:-1]
        return out


@torch.no_grad()
def post_process(outputs: dict, target_sizes: Tensor) -> List[dict]:
    """``models.detr.PostProcess``: per query the best class (no object
    excluded), its probability and the box in absolute xyxy.

    Args:
        outputs (dict): ``DETR.forward``'s output.
        target_sizes (Tensor): (B, 2), each image's (h, w).

    Returns:
        list[dict]: Per image ``scores``, ``labels`` (category ids),
        ``boxes`` (N, 4).
    """
    prob = F.softmax(outputs['pred_logits'], -1)
    scores, labels = prob[..., :-1].max(-1)
    boxes = box_cxcywh_to_xyxy(outputs['pred_boxes'])
    img_h, img_w = target_sizes.unbind(1)
    scale_fct = torch.stack([img_w, img_h, img_w, img_h], dim=1)
    boxes = boxes * scale_fct[:, None, :]
    return [{
        'scores': s,
        'labels': lab,
        'boxes': b
    } for s, lab, b in zip(scores, labels, boxes)]


def build_reference_detr(num_classes: int = 91,
                         num_queries: int = 100,
                         hidden_dim: int = 256,
                         nheads: int = 8,
                         enc_layers: int = 6,
                         dec_layers: int = 6,
                         dim_feedforward: int = 2048,
                         dropout: float = 0.1,
                         pre_norm: bool = False) -> DETR:
    """``models.build_model`` for ``--dataset_file coco`` (ResNet-18).

    ``pre_norm=False`` is facebookresearch/detr, ``pre_norm=True`` the
    UP-DETR fine-tuned model.
    """
    backbone = Joiner(Backbone(),
                      PositionEmbeddingSine(hidden_dim // 2, normalize=True))
    transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers,
                              dim_feedforward, dropout, pre_norm)
    return DETR(backbone, transformer, num_classes, num_queries)
