# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Tuple

import torch
from mmdet.models.detectors import DETR
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..layers import ExactSinePositionalEncoding
from ..utils import UPDETRPretrainedInit


@MODELS.register_module()
class PreNormDETR(DETR):
    r"""DETR with a pre-norm transformer, the model UP-DETR fine-tunes.

    `Unsupervised Pre-training for Detection Transformers
    <https://arxiv.org/abs/2011.09094>`_ pre-trains and fine-tunes DETR with
    the reference's pre-norm transformer (LayerNorm before attention and
    FFN, a final LayerNorm after encoder and decoder), which mmdet's
    ``DETR`` lacks. This detector is mmdet's ``DETR`` with its encoder and
    decoder built from the registry instead of hard-coded, so that pre-norm
    or mmdet's post-norm (``normalize_before``, whose checkpoints then load)
    is chosen by config, and with the ``UPDETRPretrained`` init_cfg that
    loads a pre-training checkpoint. It is the detection fine-tuning model
    and the DETR baselines; :class:`UPDETR` adds the pretext on top.

    Args:
        *args: Arguments of ``DETR``.
        **kwargs: Arguments of ``DETR`` (``backbone``, ``neck``, ``encoder``,
            ``decoder``, ``positional_encoding``, ``bbox_head``,
            ``num_queries``, ``init_cfg``, ...). The encoder is a
            ``PreNormDetrTransformerEncoder`` and the decoder a
            ``PreNormDetrTransformerDecoder`` unless ``type`` says
            otherwise.
        channels_last (bool): Run the CNN in ``torch.channels_last`` memory
            format (weights and inputs): faster on CPUs (oneDNN) and GPUs
            (cuDNN), in float32 and mixed precision; float32 features differ
            from the contiguous format's in the last bits only.
            Defaults to True.
    """

    def __init__(self, *args, channels_last: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        if channels_last:
            # UP-DETR: weights in the inputs' format, no reorder per call
            # (load_state_dict and the initialisers keep the format).
            self.backbone.to(memory_format=torch.channels_last)

    def _init_layers(self) -> None:
        """Initialize the positional encoding, transformer and queries.

        DETR's ``_init_layers`` hard-codes mmdet's post-norm encoder and
        decoder classes; here they are built from the registry, so that
        pre-norm (and the group mask of :class:`UPDETR`) is chosen by
        config.
        """
        # UP-DETR: mmdet's encoding, also under deterministic CUDA.
        self.positional_encoding = ExactSinePositionalEncoding(
            **self.positional_encoding)
        self.encoder = MODELS.build(
            self.encoder,
            default_args=dict(type='PreNormDetrTransformerEncoder'))
        self.decoder = MODELS.build(
            self.decoder,
            default_args=dict(type='PreNormDetrTransformerDecoder'))
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)
        assert self.positional_encoding.num_feats * 2 == self.embed_dims

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """DETR's ``extract_feat`` with the CNN run by
        :meth:`forward_backbone`.

        Args:
            batch_inputs (Tensor): Images, has shape (bs, 3, H, W).

        Returns:
            tuple[Tensor]: Feature maps of the neck, each (bs, dim, h, w).
        """
        # UP-DETR: the CNN through forward_backbone (channels_last).
        feats = self.forward_backbone(batch_inputs)
        return self.neck(feats) if self.with_neck else feats

    def forward_backbone(self, imgs: Tensor) -> Tuple[Tensor]:
        """The CNN's feature maps, in ``channels_last`` if set.

        Args:
            imgs (Tensor): Has shape (n, 3, h, w).

        Returns:
            tuple[Tensor]: The CNN's outputs, contiguous (the transformer
            flattens them), each (n, c, h', w').
        """
        if self.channels_last:
            imgs = imgs.contiguous(memory_format=torch.channels_last)
        return tuple(feat.contiguous() for feat in self.backbone(imgs))

    def init_weights(self) -> None:
        """DETR's initialisation, then an ``UPDETRPretrained`` init_cfg.

        ``DETR.init_weights`` re-draws the transformer (xavier) after the
        init_cfg of this module has been applied, so a pre-training
        checkpoint given as ``init_cfg=dict(type='UPDETRPretrained', ...)``
        is loaded here, last (see ``mmdet_updetr/models/utils/``
        ``pretrained_init.py``).
        """
        init_cfgs = self.init_cfg or []
        init_cfgs = [init_cfgs] if isinstance(init_cfgs, dict) else init_cfgs
        pretrained = [c for c in init_cfgs if c['type'] == 'UPDETRPretrained']
        self.init_cfg = [c for c in init_cfgs if c not in pretrained] or None
        # UP-DETR: random draws fill the CNN's weights in the contiguous
        # order, as without channels_last (same seed, same weights).
        self.backbone.to(memory_format=torch.contiguous_format)
        super().init_weights()
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        # UP-DETR: the pre-training checkpoint overwrites DETR's init.
        for cfg in pretrained:
            args = {k: v for k, v in cfg.items() if k != 'type'}
            UPDETRPretrainedInit(**args)(self)
        self.init_cfg = init_cfgs or None
