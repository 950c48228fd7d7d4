# Copyright (c) mmdet-updetr contributors. All rights reserved.
import contextlib
from typing import Dict, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from mmdet.utils import ConfigType
from torch import Tensor, nn

from ..layers import GroupMaskedDecoder
from .prenorm_detr import PreNormDETR


def _is_group_masked(decoder: ConfigType) -> bool:
    """Whether a decoder config builds a :class:`GroupMaskedDecoder`."""
    decoder_type = decoder['type']
    if isinstance(decoder_type, str):
        decoder_type = MODELS.get(decoder_type)
    return isinstance(decoder_type, type) and issubclass(
        decoder_type, GroupMaskedDecoder)


@MODELS.register_module()
class UPDETR(PreNormDETR):
    r"""UP-DETR: pre-training DETR by random query patch detection.

    `Unsupervised Pre-training for Detection Transformers
    <https://arxiv.org/abs/2011.09094>`_.

    :class:`PreNormDETR` plus the pretext: the one CNN encodes the image
    and, in one batched pass, the ``M`` query patches cropped from it; each
    patch's globally pooled feature goes through ``patch2query`` onto the
    positional query of every query in its group (``N / M`` queries), and
    the decoder, its self-attention masked by group, finds each patch in
    the image.

    Args:
        num_queries (int): Number of object queries ``N``. Defaults to 100.
        num_patches (int): Number of query patches ``M`` per image during
            training; must divide ``N``. Defaults to 10.
        patch_feat_dims (int): Channels of the CNN's last stage, the
            patch-feature size (2048 for ResNet-50). Defaults to 2048.
        mask_ratio (float): Probability, per query and image, that a query's
            patch feature is dropped in training. Defaults to 0.1.
        freeze_backbone (bool): Keep the CNN fixed: no gradient (nor
            autograd graph), BatchNorm in eval mode, left out of the
            optimizer. Defaults to True.
        query_shuffle (bool): Shuffle the object queries before the patch
            features are added, in training. Defaults to False.
        decoder (:obj:`ConfigDict` or dict): Config of the decoder, a
            ``GroupMaskedDecoder`` unless ``type`` says otherwise; ``N`` and
            ``M`` are filled in from this model when it is one (a
            ``PreNormDetrTransformerDecoder`` gives the "no attention mask"
            ablation).
        bbox_head (:obj:`ConfigDict` or dict): Config of the head, an
            ``UPDETRHead``, given ``N``, ``M`` and the feature size from this
            model.
        **kwargs: Other arguments of :class:`PreNormDETR`.
    """

    def __init__(self,
                 *args,
                 decoder: ConfigType,
                 bbox_head: ConfigType,
                 num_queries: int = 100,
                 num_patches: int = 10,
                 patch_feat_dims: int = 2048,
                 mask_ratio: float = 0.1,
                 freeze_backbone: bool = True,
                 query_shuffle: bool = False,
                 **kwargs) -> None:
        if num_patches < 1 or num_queries % num_patches:
            raise ValueError(
                f'UPDETR: num_patches ({num_patches}) must be a positive '
                f'divisor of num_queries ({num_queries}); a detector without '
                "query patches is type='PreNormDETR'")
        self.num_patches = num_patches
        self.group_size = num_queries // num_patches
        self.patch_feat_dims = patch_feat_dims
        self.mask_ratio = mask_ratio
        self.freeze_backbone = freeze_backbone
        self.query_shuffle = query_shuffle
        # UP-DETR: N, M and the feature size have one source, this model.
        decoder = {'type': 'GroupMaskedDecoder', **decoder}
        if _is_group_masked(decoder):
            decoder.update(num_queries=num_queries, num_patches=num_patches)
        bbox_head = dict(
            bbox_head,
            num_queries=num_queries,
            num_patches=num_patches,
            patch_feat_dims=patch_feat_dims)
        super().__init__(
            *args,
            decoder=decoder,
            bbox_head=bbox_head,
            num_queries=num_queries,
            **kwargs)
        if freeze_backbone:
            self.backbone.requires_grad_(False).eval()

    def _init_layers(self) -> None:
        """Initialize the transformer and queries, then ``patch2query``."""
        super()._init_layers()
        # UP-DETR: the pooled patch feature becomes a positional query.
        self.patch2query = nn.Linear(self.patch_feat_dims, self.embed_dims)

    def train(self, mode: bool = True) -> 'UPDETR':
        """Set the training mode; a frozen CNN stays in eval mode."""
        super().train(mode)
        if self.freeze_backbone:
            # UP-DETR: BatchNorm statistics of the frozen CNN never change.
            self.backbone.eval()
        return self

    def forward_backbone(self, imgs: Tensor) -> Tuple[Tensor]:
        """The CNN's feature maps of images or query patches.

        :class:`PreNormDETR`'s (``channels_last``), without autograd when the
        CNN is frozen (no graph, nothing kept for a backward); under the
        caller's ``torch.autocast`` (``--amp``: bfloat16 / float16
        features).

        Args:
            imgs (Tensor): Has shape (n, 3, h, w).

        Returns:
            tuple[Tensor]: The CNN's outputs, contiguous, each (n, c, h', w').
        """
        # UP-DETR: the frozen CNN needs no autograd graph.
        with torch.no_grad() if self.freeze_backbone else \
                contextlib.nullcontext():
            return super().forward_backbone(imgs)

    def extract_patch_feat(self, batch_data_samples: SampleList) -> Tensor:
        """Globally pooled CNN features of the query patches.

        Args:
            batch_data_samples (list[:obj:`DetDataSample`]): Each with
                ``query_patches``, normalised, has shape (k, 3, h, w).

        Returns:
            Tensor: Patch features, has shape (bs, k, patch_feat_dims).
        """
        if 'query_patches' not in batch_data_samples[0]:
            raise KeyError(
                'UPDETR needs `query_patches` in every data sample: add '
                'QueryPatchTransform and PackUPDETRInputs to the pipeline and '
                'use UPDETRDataPreprocessor')
        patches = torch.stack([s.query_patches for s in batch_data_samples])
        bs, num_groups = patches.shape[:2]
        if num_groups > self.num_patches:
            raise ValueError(f'got {num_groups} query patches per image; '
                             f'this model has {self.num_patches} groups')
        # UP-DETR: all patches of the batch in one pass of the same CNN;
        # pooled in float32 (the reconstruction targets).
        feats = self.forward_backbone(patches.flatten(0, 1))[-1]
        return feats.float().mean(dim=(2, 3)).view(bs, num_groups, -1)

    def pre_transformer(
            self,
            img_feats: Tuple[Tensor],
            batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        """DETR's ``pre_transformer``, plus the query-patch features.

        Returns:
            tuple[dict, dict]: The encoder and decoder inputs; the decoder's
            include ``patch_feats`` (bs, k, patch_feat_dims).
        """
        encoder_inputs_dict, decoder_inputs_dict = super().pre_transformer(
            img_feats, batch_data_samples)
        # UP-DETR: the patch features travel to the decoder.
        decoder_inputs_dict['patch_feats'] = self.extract_patch_feat(
            batch_data_samples)
        return encoder_inputs_dict, decoder_inputs_dict

    def pre_decoder(self, memory: Tensor) -> Tuple[Dict, Dict]:
        """DETR's ``pre_decoder``, with optional object-query shuffle.

        Args:
            memory (Tensor): Encoder output, has shape (bs, num_feat, dim).

        Returns:
            tuple[dict, dict]: The decoder inputs (``query`` and
            ``query_pos``, each (bs, num_queries, dim), ``memory``) and an
            empty dict of head inputs.
        """
        decoder_inputs_dict, head_inputs_dict = super().pre_decoder(memory)
        if self.training and self.query_shuffle:
            # UP-DETR: patches land on randomly chosen object queries.
            perm = torch.randperm(self.num_queries, device=memory.device)
            query_pos = decoder_inputs_dict['query_pos']
            decoder_inputs_dict['query_pos'] = query_pos[:, perm]
        return decoder_inputs_dict, head_inputs_dict

    def patch_queries(self, patch_feats: Tensor) -> Tensor:
        """Map patch features onto the queries of their groups.

        Args:
            patch_feats (Tensor): Has shape (bs, k, patch_feat_dims).

        Returns:
            Tensor: Has shape (bs, k * N / M, dim); query ``i`` carries
            patch ``i // (N / M)`` (``repeat_interleave``), dropped to zero
            with probability ``mask_ratio`` per query and image in training.
        """
        queries = self.patch2query(patch_feats).repeat_interleave(
            self.group_size, dim=1)
        if self.training and self.mask_ratio > 0:
            keep = torch.rand(queries.shape[:2] + (1, ), device=queries.device)
            queries = queries * (keep > self.mask_ratio).to(queries.dtype)
        return queries

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, memory_pos: Tensor,
                        patch_feats: Tensor) -> Dict:
        """DETR's ``forward_decoder`` with the patch features on the queries.

        Args:
            query (Tensor): Content queries (zeros), has shape
                (bs, num_queries, dim).
            query_pos (Tensor): Object query embeddings, has shape
                (bs, num_queries, dim).
            memory (Tensor): Encoder output, has shape (bs, num_feat, dim).
            memory_mask (Tensor): Padding mask, has shape (bs, num_feat).
            memory_pos (Tensor): Positional encoding of the memory.
            patch_feats (Tensor): Has shape (bs, k, patch_feat_dims).

        Returns:
            dict: ``hidden_states`` (num_layers, bs, k * N / M, dim) and
            ``patch_feats`` (bs, k, patch_feat_dims), the reconstruction
            targets.
        """
        # UP-DETR: k <= M patches use the first k groups of queries.
        num_queries = patch_feats.size(1) * self.group_size
        query_pos = query_pos[:, :num_queries] + self.patch_queries(
            patch_feats)
        head_inputs_dict = super().forward_decoder(query[:, :num_queries],
                                                   query_pos, memory,
                                                   memory_mask, memory_pos)
        head_inputs_dict['patch_feats'] = patch_feats
        return head_inputs_dict

    def add_pred_to_datasample(self, data_samples: SampleList,
                               results_list: list) -> SampleList:
        """Store predictions, and each group's best box.

        Args:
            data_samples (list[:obj:`DetDataSample`]): The samples.
            results_list (list): Per image a tuple ``(per_query, per_group)``
                from ``UPDETRHead``.

        Returns:
            list[:obj:`DetDataSample`]: With ``pred_instances`` (one row per
            query) and ``pred_group_instances`` (one row per query patch: its
            group's best box and score, label = patch index; the readout of
            the paper's Fig. 7).
        """
        per_query, per_group = zip(*results_list)
        data_samples = super().add_pred_to_datasample(data_samples,
                                                      list(per_query))
        # UP-DETR: the per-patch readout, beside mmdet's per-query one.
        for data_sample, group in zip(data_samples, per_group):
            data_sample.pred_group_instances = group
        return data_samples
