# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Pre-norm DETR transformer layers, and an encoder and a decoder of them.

UP-DETR trains its transformer pre-norm (``normalize_before=True`` in the
reference): LayerNorm comes before attention and FFN inside each residual
branch, and the encoder ends with a LayerNorm. mmdet 3.3's DETR layers are
post-norm only. These subclasses keep mmdet's module names (``norms.0``,
``self_attn.attn``, ``ffn.layers.0.0``, ...), so one key map serves both
layouts, and post-norm stays mmdet's own code so its checkpoints still load.
"""
from mmcv.cnn import build_norm_layer
from mmdet.models.layers import (DetrTransformerDecoder,
                                 DetrTransformerDecoderLayer,
                                 DetrTransformerEncoder,
                                 DetrTransformerEncoderLayer)
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmengine.model import ModuleList
from torch import Tensor


class PreNormDetrTransformerEncoderLayer(DetrTransformerEncoderLayer):
    """DETR encoder layer with LayerNorm before attention and FFN.

    ``x = x + attn(norm0(x)); x = x + ffn(norm1(x))``, the order of the
    reference's ``TransformerEncoderLayer.forward_pre``.
    """

    def forward(self, query: Tensor, query_pos: Tensor,
                key_padding_mask: Tensor, **kwargs) -> Tensor:
        """Forward function of a pre-norm encoder layer.

        Args:
            query (Tensor): The input query, has shape (bs, num_queries, dim).
            query_pos (Tensor): The positional encoding for query, with
                the same shape as `query`.
            key_padding_mask (Tensor): The `key_padding_mask` of `self_attn`
                input. ByteTensor, has shape (bs, num_queries).

        Returns:
            Tensor: forwarded results, has shape (bs, num_queries, dim).
        """
        normed = self.norms[0](query)
        query = self.self_attn(
            query=normed,
            key=normed,
            value=normed,
            identity=query,
            query_pos=query_pos,
            key_pos=query_pos,
            key_padding_mask=key_padding_mask,
            **kwargs)
        return self.ffn(self.norms[1](query), identity=query)


class PreNormDetrTransformerDecoderLayer(DetrTransformerDecoderLayer):
    """DETR decoder layer with LayerNorm before each sub-layer.

    The order of the reference's ``TransformerDecoderLayer.forward_pre``:
    self-attention on ``norm0(x)``, cross-attention on ``norm1(x)``, FFN on
    ``norm2(x)``, each added back to ``x``.
    """

    def forward(self,
                query: Tensor,
                key: Tensor = None,
                value: Tensor = None,
                query_pos: Tensor = None,
                key_pos: Tensor = None,
                self_attn_mask: Tensor = None,
                cross_attn_mask: Tensor = None,
                key_padding_mask: Tensor = None,
                **kwargs) -> Tensor:
        """Forward function of a pre-norm decoder layer.

        Args:
            query (Tensor): The input query, has shape (bs, num_queries, dim).
            key (Tensor): The encoder memory, has shape (bs, num_keys, dim).
            value (Tensor): The same as `key`.
            query_pos (Tensor): The positional query, has the same shape as
                `query`.
            key_pos (Tensor): The positional encoding of `key`.
            self_attn_mask (Tensor, optional): Boolean mask of the query
                self-attention, True = blocked, has shape
                (num_queries, num_queries).
            cross_attn_mask (Tensor, optional): Mask of the cross-attention,
                has shape (num_queries, num_keys).
            key_padding_mask (Tensor): Padding mask of the memory, has shape
                (bs, num_keys).

        Returns:
            Tensor: forwarded results, has shape (bs, num_queries, dim).
        """
        normed = self.norms[0](query)
        query = self.self_attn(
            query=normed,
            key=normed,
            value=normed,
            identity=query,
            query_pos=query_pos,
            key_pos=query_pos,
            attn_mask=self_attn_mask,
            **kwargs)
        query = self.cross_attn(
            query=self.norms[1](query),
            key=key,
            value=value,
            identity=query,
            query_pos=query_pos,
            key_pos=key_pos,
            attn_mask=cross_attn_mask,
            key_padding_mask=key_padding_mask,
            **kwargs)
        return self.ffn(self.norms[2](query), identity=query)


class _NormalizeBefore:
    """``normalize_before`` for a DETR encoder or decoder (one owner).

    Placed before mmdet's ``DetrTransformerEncoder`` / ``Decoder`` in the
    bases: with ``normalize_before=True`` the layers are
    ``prenorm_layer_type``, else mmdet's own post-norm layers (its
    ``_init_layers``). The final norm is the subclass's.
    """

    prenorm_layer_type: type

    def __init__(self,
                 num_layers: int,
                 layer_cfg: ConfigType,
                 normalize_before: bool = True,
                 **kwargs) -> None:
        self.normalize_before = normalize_before
        super().__init__(num_layers=num_layers, layer_cfg=layer_cfg, **kwargs)

    def _init_layers(self) -> None:
        """Initialize pre-norm layers, or mmdet's when post-norm."""
        if not self.normalize_before:
            return super()._init_layers()
        # UP-DETR: pre-norm layers in place of mmdet's post-norm ones.
        self.layers = ModuleList([
            self.prenorm_layer_type(**self.layer_cfg)
            for _ in range(self.num_layers)
        ])
        self.embed_dims = self.layers[0].embed_dims


@MODELS.register_module()
class PreNormDetrTransformerEncoder(_NormalizeBefore, DetrTransformerEncoder):
    """DETR encoder, pre-norm (the paper's) or post-norm (mmdet's).

    Args:
        num_layers (int): Number of encoder layers.
        layer_cfg (:obj:`ConfigDict` or dict): Config of each encoder layer.
        normalize_before (bool): Pre-norm layers plus a final LayerNorm
            (``post_norm``) when True; mmdet's post-norm layers, with the
            same state-dict keys as mmdet's ``DetrTransformerEncoder``, when
            False. Defaults to True.
        **kwargs: Other arguments of ``DetrTransformerEncoder``.
    """

    prenorm_layer_type = PreNormDetrTransformerEncoderLayer

    def _init_layers(self) -> None:
        """Initialize encoder layers, and the final norm when pre-norm."""
        assert self.num_cp <= 0 or not self.normalize_before, \
            'checkpointing is not supported pre-norm'
        super()._init_layers()
        if self.normalize_before:
            # UP-DETR: the reference's ``transformer.encoder.norm``.
            self.post_norm = build_norm_layer(
                dict(type='LN'), self.embed_dims)[1]

    def forward(self, query: Tensor, query_pos: Tensor,
                key_padding_mask: Tensor, **kwargs) -> Tensor:
        """Forward function of the encoder.

        Args:
            query (Tensor): Input queries of encoder, has shape
                (bs, num_queries, dim).
            query_pos (Tensor): The positional embeddings of the queries, has
                shape (bs, num_queries, dim).
            key_padding_mask (Tensor): The `key_padding_mask` of `self_attn`
                input. ByteTensor, has shape (bs, num_queries).

        Returns:
            Tensor: Has shape (bs, num_queries, dim).
        """
        query = super().forward(query, query_pos, key_padding_mask, **kwargs)
        if self.normalize_before:
            # UP-DETR: pre-norm ends with a LayerNorm (reference's
            # ``transformer.encoder.norm``).
            query = self.post_norm(query)
        return query


@MODELS.register_module()
class PreNormDetrTransformerDecoder(_NormalizeBefore, DetrTransformerDecoder):
    """DETR decoder, pre-norm (the paper's) or post-norm (mmdet's).

    Either way the decoder ends with mmdet's ``post_norm`` (the reference's
    ``transformer.decoder.norm``), so the state-dict keys are those of
    mmdet's ``DetrTransformerDecoder``.

    Args:
        num_layers (int): Number of decoder layers.
        layer_cfg (:obj:`ConfigDict` or dict): Config of each decoder layer.
        normalize_before (bool): Pre-norm layers when True; mmdet's
            post-norm layers when False. Defaults to True.
        **kwargs: Other arguments of ``DetrTransformerDecoder``
            (``post_norm_cfg``, ``return_intermediate``, ``init_cfg``).
    """

    prenorm_layer_type = PreNormDetrTransformerDecoderLayer

    def _init_layers(self) -> None:
        """Initialize decoder layers (pre- or post-norm) and the final norm."""
        super()._init_layers()
        if self.normalize_before:
            # UP-DETR: ``post_norm`` as mmdet builds it after its layers.
            self.post_norm = build_norm_layer(self.post_norm_cfg,
                                              self.embed_dims)[1]
