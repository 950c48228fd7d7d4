# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class MHAttentionMap(BaseModule):
    """Multi-head attention *maps* of object queries over the encoder memory.

    DETR's panoptic head: each decoder output attends over the encoder
    memory, one map per head; the softmax weights themselves (not their
    product with the values) are the output, which the mask head upsamples
    into a mask per query. Padded positions get weight exactly 0.

    Args:
        query_dims (int): Channels of the queries and of the memory.
        hidden_dims (int): Channels of the projected queries and keys.
        num_heads (int): Number of heads (maps per query).
        dropout (float): Dropout on the weights. Defaults to 0.
        bias (bool): Whether the projections have a bias. Defaults to True.
        softmax_per_head (bool): True (the default) normalises each head's
            map over its spatial positions, as the UP-DETR reference does
            (``softmax(weights.flatten(3))`` on (bs, nq, heads, h, w); it
            changed to that in March 2021, after facebookresearch/detr#247).
            False normalises over heads and positions together
            (``softmax(weights.flatten(2))``), as facebookresearch/detr
            does: its own panoptic checkpoints were trained that way and
            need it. Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (xavier-uniform weights, zero biases, as the reference).
    """

    def __init__(self,
                 query_dims: int,
                 hidden_dims: int,
                 num_heads: int,
                 dropout: float = 0.,
                 bias: bool = True,
                 softmax_per_head: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if hidden_dims % num_heads:
            raise ValueError(f'hidden_dims ({hidden_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.hidden_dims = hidden_dims
        self.softmax_per_head = softmax_per_head
        self.scale = float(hidden_dims / num_heads)**-0.5
        self.dropout = nn.Dropout(dropout)
        self.q_linear = nn.Linear(query_dims, hidden_dims, bias=bias)
        self.k_linear = nn.Linear(query_dims, hidden_dims, bias=bias)

    def init_weights(self) -> None:
        """Xavier-uniform projections with zero biases."""
        super().init_weights()
        for linear in (self.q_linear, self.k_linear):
            nn.init.xavier_uniform_(linear.weight)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self,
                query: Tensor,
                memory: Tensor,
                memory_mask: Optional[Tensor] = None) -> Tensor:
        """Compute the attention maps.

        Args:
            query (Tensor): Decoder outputs, has shape
                (bs, num_queries, query_dims).
            memory (Tensor): Encoder output as a map, has shape
                (bs, query_dims, h, w).
            memory_mask (Tensor, optional): Padding mask, True where padded,
                has shape (bs, h, w).

        Returns:
            Tensor: Attention weights, has shape
            (bs, num_queries, num_heads, h, w).
        """
        bs, _, h, w = memory.shape
        num_queries = query.size(1)
        head_dims = self.hidden_dims // self.num_heads
        q = self.q_linear(query) * self.scale
        q = q.view(bs, num_queries, self.num_heads, head_dims)
        k = self.k_linear(memory.flatten(2).transpose(1, 2))
        k = k.view(bs, h * w, self.num_heads, head_dims)
        weights = torch.einsum('bqnc,bpnc->bqnp', q, k)
        if memory_mask is not None:
            weights = weights.masked_fill(
                memory_mask.view(bs, 1, 1, h * w), float('-inf'))
        if self.softmax_per_head:
            weights = weights.softmax(dim=-1)
        else:
            weights = weights.flatten(2).softmax(dim=-1).view_as(weights)
        weights = self.dropout(weights)
        return weights.view(bs, num_queries, self.num_heads, h, w)
