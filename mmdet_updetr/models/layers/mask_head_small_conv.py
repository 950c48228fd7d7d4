# Copyright (c) mmdet-updetr contributors. All rights reserved.
from typing import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class MaskHeadSmallConv(BaseModule):
    """DETR's small FPN-style convolution head for per-query masks.

    The projected stride-32 feature, repeated per query and concatenated
    with that query's attention maps, goes through two 3x3 conv + norm +
    ReLU blocks; then, for the CNN's stride-16, -8 and -4 features in turn,
    the feature (1x1 ``adapter``) is added to the nearest-upsampled maps and
    another block follows. ``out_lay`` gives one mask logit map per query at
    stride 4. Layer names follow the reference (``lay1..5``, ``gn1..5``,
    ``adapter1..3``, ``out_lay``), so its checkpoints map one to one.

    Args:
        in_channels (int): ``embed_dims + num_heads``.
        fpn_channels (Sequence[int]): Channels of the CNN features at
            strides 16, 8 and 4 (ResNet-50: 1024, 512, 256).
        context_dims (int): The transformer width; the blocks have
            ``context_dims // 2``, ``// 4``, ``// 8`` and ``// 16`` channels.
        norm_cfg (dict): Norm layer config. Defaults to GroupNorm with 8
            groups, as the reference.
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (kaiming-uniform with ``a=1``, zero bias, as the reference).
    """

    def __init__(self,
                 in_channels: int,
                 fpn_channels: Sequence[int] = (1024, 512, 256),
                 context_dims: int = 256,
                 norm_cfg: ConfigType = dict(type='GN', num_groups=8),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(fpn_channels) != 3:
            raise ValueError('fpn_channels needs the channels of the CNN '
                             'features at strides 16, 8 and 4, got '
                             f'{fpn_channels}')
        dims = [in_channels] + [context_dims // 2**i for i in range(1, 5)]
        for i, (in_dims, out_dims) in enumerate(
                zip([in_channels] + dims[:-1], dims), start=1):
            setattr(self, f'lay{i}',
                    nn.Conv2d(in_dims, out_dims, 3, padding=1))
            setattr(self, f'gn{i}', build_norm_layer(norm_cfg, out_dims)[1])
        self.out_lay = nn.Conv2d(dims[-1], 1, 3, padding=1)
        for i, channels in enumerate(fpn_channels, start=1):
            setattr(self, f'adapter{i}', nn.Conv2d(channels, dims[i], 1))

    def init_weights(self) -> None:
        """Kaiming-uniform (``a=1``) convolutions with zero biases."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.constant_(m.bias, 0)

    def _block(self, x: Tensor, index: int) -> Tensor:
        """``lay{index}`` -> ``gn{index}`` -> ReLU."""
        x = getattr(self, f'lay{index}')(x)
        return F.relu(getattr(self, f'gn{index}')(x))

    def forward(self, x: Tensor, attn_maps: Tensor,
                fpn_feats: Sequence[Tensor]) -> Tensor:
        """Predict one mask logit map per query.

        Args:
            x (Tensor): Projected stride-32 feature, has shape
                (bs, context_dims, h, w).
            attn_maps (Tensor): Attention maps, has shape
                (bs, num_queries, num_heads, h, w).
            fpn_feats (Sequence[Tensor]): CNN features at strides 16, 8 and
                4, each (bs, fpn_channels[i], H_i, W_i).

        Returns:
            Tensor: Mask logits, has shape (bs, num_queries, H_4, W_4) where
            (H_4, W_4) is the size of the stride-4 feature.
        """
        bs, num_queries = attn_maps.shape[:2]
        # Each image's features are repeated once per query.
        x = torch.cat(
            [x.repeat_interleave(num_queries, dim=0),
             attn_maps.flatten(0, 1)], 1)
        x = self._block(self._block(x, 1), 2)
        for i, feat in enumerate(fpn_feats, start=1):
            feat = getattr(self, f'adapter{i}')(feat)
            feat = feat.repeat_interleave(num_queries, dim=0)
            x = feat + F.interpolate(x, size=feat.shape[-2:], mode='nearest')
            x = self._block(x, i + 2)
        x = self.out_lay(x)
        return x.view(bs, num_queries, *x.shape[-2:])
