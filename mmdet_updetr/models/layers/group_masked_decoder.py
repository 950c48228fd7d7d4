# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""DETR decoder with UP-DETR's group self-attention mask."""
import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from .prenorm_layers import PreNormDetrTransformerDecoder


def group_attention_mask(num_queries: int,
                         group_size: int,
                         device: torch.device = None) -> Tensor:
    """Boolean self-attention mask that keeps queries within their group.

    Query ``i`` belongs to group ``i // group_size`` and may attend to query
    ``j`` only if ``j`` is in the same group. (The reference builds the
    float mask with a loop over ``range(N // M)`` groups, right only when
    ``M <= N / M``; this form is right for every ``M`` dividing ``N``.)

    Args:
        num_queries (int): Number of queries ``N`` (or ``k * N / M`` for
            ``k`` patches at test time).
        group_size (int): Queries per group, ``N / M``.
        device (torch.device, optional): Device of the mask.

    Returns:
        Tensor: Boolean mask of shape (num_queries, num_queries), True where
        attention is blocked, as ``nn.MultiheadAttention`` expects.
    """
    group = torch.arange(num_queries, device=device) // group_size
    return group[:, None] != group[None, :]


@MODELS.register_module()
class GroupMaskedDecoder(PreNormDetrTransformerDecoder):
    """Pre-norm DETR decoder whose query self-attention is masked by group.

    The ``N`` object queries form ``M`` groups of ``N / M``; group ``i``
    carries query patch ``i``, and queries attend only within their group,
    so each group decodes its patch independently of the others. Given the
    queries of ``k <= M`` groups (test time), the top-left corner of the
    mask is used. Everything else (layers, final norm, state-dict keys) is
    :class:`PreNormDetrTransformerDecoder`'s; the paper's "no attention
    mask" ablation uses that decoder instead of this one.

    ``N`` and ``M`` have one source, the detector (``UPDETR``'s
    ``num_queries`` / ``num_patches``), which passes them when it builds a
    ``GroupMaskedDecoder`` and only then, so that the plain decoder is
    built from its own arguments. They are constructor arguments rather
    than forward arguments because mmdet's ``DETR.forward_decoder`` calls
    the decoder with a fixed set of inputs: a forward argument would mean
    rewriting that hook instead of extending it.

    Args:
        num_layers (int): Number of decoder layers.
        layer_cfg (:obj:`ConfigDict` or dict): Config of each decoder layer.
        num_queries (int): Number of object queries ``N``, from the
            detector.
        num_patches (int): Number of query patches ``M``, from the detector;
            must divide ``N``.
        **kwargs: Other arguments of :class:`PreNormDetrTransformerDecoder`
            (``normalize_before``, ``post_norm_cfg``, ``return_intermediate``,
            ``init_cfg``).
    """

    def __init__(self, num_layers: int, layer_cfg: ConfigType,
                 num_queries: int, num_patches: int, **kwargs) -> None:
        if num_patches < 1 or num_queries % num_patches:
            raise ValueError(f'num_patches ({num_patches}) must divide '
                             f'num_queries ({num_queries})')
        self.num_queries = num_queries
        self.num_patches = num_patches
        self.group_size = num_queries // num_patches
        super().__init__(num_layers=num_layers, layer_cfg=layer_cfg, **kwargs)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                query_pos: Tensor, key_pos: Tensor, key_padding_mask: Tensor,
                **kwargs) -> Tensor:
        """Forward the decoder with the group mask of the given queries.

        Args:
            query (Tensor): The input query, has shape (bs, num_queries, dim),
                where num_queries is ``k * N / M`` for ``k`` query patches.
            key (Tensor): The encoder memory, has shape (bs, num_keys, dim).
            value (Tensor): The same as `key`.
            query_pos (Tensor): The positional queries carrying the patch
                features, has the same shape as `query`.
            key_pos (Tensor): The positional encoding of `key`.
            key_padding_mask (Tensor): Padding mask of the memory, has shape
                (bs, num_keys).

        Returns:
            Tensor: Has shape (num_decoder_layers, bs, num_queries, dim).
        """
        num_queries = query.size(1)
        if num_queries % self.group_size or num_queries > self.num_queries:
            raise ValueError(
                f'got {num_queries} queries; expected k * {self.group_size} '
                f'for k <= {self.num_patches} query patches')
        if num_queries > self.group_size:
            # UP-DETR: queries attend only within their own group (a single
            # group needs no mask).
            kwargs['self_attn_mask'] = group_attention_mask(
                num_queries, self.group_size, query.device)
        return super().forward(query, key, value, query_pos, key_pos,
                               key_padding_mask, **kwargs)
