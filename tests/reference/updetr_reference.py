"""A compact re-implementation of the reference UP-DETR pre-training model.

Written from ``dddzg/up-detr`` (``models/{updetr,detr,transformer,matcher,
position_encoding,backbone}.py``, ``util/{box_ops,misc}.py``) in plain torch
(no torchvision, no mmdet), with the reference's module and parameter names,
so that its ``state_dict()`` has the reference checkpoint's keys. Tests use it
as the ground truth for the checkpoint converter and for our ``UPDETR``.

Deliberate differences from the reference code:

- the decoder's group attention mask is built for any ``num_patches`` that
  divides ``num_queries`` (the reference loops over ``range(N // M)``
  instead of ``range(M)``, which fully masks rows when ``M > N / M``);
- the backbone is a torchvision-named ResNet-18 body written here;
- the criterion computes no logging-only terms (``class_error``,
  ``cardinality_error``).
"""
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

Indices = List[Tuple[Tensor, Tensor]]


# --------------------------------------------------------------------------
# util/misc.py and util/box_ops.py
# --------------------------------------------------------------------------
class NestedTensor:
    """A padded batch and its padding mask (``util.misc.NestedTensor``).

    Args:
        tensors (Tensor): Padded batch, (B, C, H, W).
        mask (Tensor): Bool, (B, H, W), True on padded pixels.
    """

    def __init__(self, tensors: Tensor, mask: Tensor) -> None:
        self.tensors = tensors
        self.mask = mask

    def decompose(self) -> Tuple[Tensor, Tensor]:
        return self.tensors, self.mask


def nested_tensor_from_tensor_list(tensor_list: List[Tensor]) -> NestedTensor:
    """Pad images bottom-right with zeros (``util.misc``'s function).

    Args:
        tensor_list (list[Tensor]): Images, each (3, h, w).

    Returns:
        NestedTensor: Batch (B, 3, H, W) and mask (B, H, W).
    """
    height = max(img.shape[1] for img in tensor_list)
    width = max(img.shape[2] for img in tensor_list)
    batch = len(tensor_list)
    tensor = tensor_list[0].new_zeros(batch, 3, height, width)
    mask = torch.ones((batch, height, width), dtype=torch.bool)
    for img, pad_img, m in zip(tensor_list, tensor, mask):
        pad_img[:, :img.shape[1], :img.shape[2]].copy_(img)
        m[:img.shape[1], :img.shape[2]] = False
    return NestedTensor(tensor, mask)


def box_cxcywh_to_xyxy(x: Tensor) -> Tensor:
    """``util.box_ops.box_cxcywh_to_xyxy``."""
    x_c, y_c, w, h = x.unbind(-1)
    b = [(x_c - 0.5 * w), (y_c - 0.5 * h), (x_c + 0.5 * w), (y_c + 0.5 * h)]
    return torch.stack(b, dim=-1)


def box_xyxy_to_cxcywh(x: Tensor) -> Tensor:
    """``util.box_ops.box_xyxy_to_cxcywh``."""
    x0, y0, x1, y1 = x.unbind(-1)
    b = [(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)]
    return torch.stack(b, dim=-1)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """``util.box_ops.generalized_box_iou``: (N, 4), (M, 4) xyxy -> (N, M)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, :, 0] * wh[:, :, 1]
    return iou - (area - union) / area


# --------------------------------------------------------------------------
# models/backbone.py and models/position_encoding.py
# --------------------------------------------------------------------------
class FrozenBatchNorm2d(nn.Module):
    """``models.backbone.FrozenBatchNorm2d`` (eps 1e-5 before rsqrt)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer('weight', torch.ones(n))
        self.register_buffer('bias', torch.zeros(n))
        self.register_buffer('running_mean', torch.zeros(n))
        self.register_buffer('running_var', torch.ones(n))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + 1e-5).rsqrt()
        bias = b - rm * scale
        return x * scale + bias


class BasicBlock(nn.Module):
    """``torchvision.models.resnet.BasicBlock`` with FrozenBatchNorm2d."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                FrozenBatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Body(nn.Module):
    """torchvision's ResNet-18 behind ``IntermediateLayerGetter``.

    Only ``layer4`` is returned (``return_layers={'layer4': '0'}``, the
    reference's setting without masks); ``avgpool`` and ``fc`` are absent,
    as in the reference's state dict.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(
            BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(
            BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(
            BasicBlock(256, 512, 2), BasicBlock(512, 512))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return {'0': x}


class Bottleneck(nn.Module):
    """``torchvision.models.resnet.Bottleneck`` (stride on the 3x3 conv)
    with FrozenBatchNorm2d."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                FrozenBatchNorm2d(planes * 4))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Body(ResNet18Body):
    """torchvision's ResNet-50 behind ``IntermediateLayerGetter`` (the
    reference's CNN; used for timing the reference's step at its real
    size, ``tools/analysis_tools/benchmark_pretrain.py --reference``)."""

    def __init__(self) -> None:
        super().__init__()
        layers, inplanes = [], 64
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2),
                                       (512, 3, 2)):
            stage = [Bottleneck(inplanes, planes, stride)]
            stage += [
                Bottleneck(planes * 4, planes) for _ in range(blocks - 1)
            ]
            layers.append(nn.Sequential(*stage))
            inplanes = planes * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')


class Backbone(nn.Module):
    """``models.backbone.Backbone`` / ``BackboneBase`` (frozen ResNet).

    Args:
        depth (int): 18 (the tests' size) or 50 (the reference's).
            Defaults to 18.
    """

    def __init__(self, depth: int = 18) -> None:
        super().__init__()
        if depth not in (18, 50):
            raise ValueError(f'depth must be 18 or 50, got {depth}')
        self.body = ResNet18Body() if depth == 18 else ResNet50Body()
        self.num_channels = 512 if depth == 18 else 2048
        for parameter in self.body.parameters():
            parameter.requires_grad_(False)

    def forward(self, tensor_list):
        """NestedTensor -> dict of NestedTensor; Tensor -> dict of Tensor.

        The mask is resized with ``F.interpolate``'s default (nearest).
        """
        if not isinstance(tensor_list, NestedTensor):
            return self.body(tensor_list)
        out = {}
        for name, x in self.body(tensor_list.tensors).items():
            m = tensor_list.mask
            mask = F.interpolate(m[None].float(), size=x.shape[-2:])
            out[name] = NestedTensor(x, mask.to(torch.bool)[0])
        return out


class PositionEmbeddingSine(nn.Module):
    """``models.position_encoding.PositionEmbeddingSine``.

    Args:
        num_pos_feats (int): Features per axis (hidden_dim // 2).
        temperature (int): Frequency base. Defaults to 10000.
        normalize (bool): Normalise the cumulative sums by the unpadded
            extent and scale them to [0, 2 pi]. The reference builds it
            with True.
    """

    def __init__(self,
                 num_pos_feats: int = 64,
                 temperature: int = 10000,
                 normalize: bool = True) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi

    def forward(self, tensor_list: NestedTensor) -> Tensor:
        """Return the encoding, (B, 2 * num_pos_feats, H, W)."""
        not_mask = ~tensor_list.mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32)
        dim_t = self.temperature**(2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack(
            (pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()),
            dim=4).flatten(3)
        pos_y = torch.stack(
            (pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()),
            dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class Joiner(nn.Sequential):
    """``models.backbone.Joiner``: backbone + position encoding."""

    def __init__(self, backbone: Backbone,
                 position_embedding: PositionEmbeddingSine) -> None:
        super().__init__(backbone, position_embedding)
        self.num_channels = backbone.num_channels

    def forward(self, tensor_list):
        """NestedTensor -> (features, pos); Tensor -> list of features."""
        if not isinstance(tensor_list, NestedTensor):
            return list(self[0](tensor_list).values())
        out, pos = [], []
        for x in self[0](tensor_list).values():
            out.append(x)
            pos.append(self[1](x).to(x.tensors.dtype))
        return out, pos


# --------------------------------------------------------------------------
# models/transformer.py
# --------------------------------------------------------------------------
def _with_pos(tensor: Tensor, pos: Optional[Tensor]) -> Tensor:
    return tensor if pos is None else tensor + pos


class TransformerEncoderLayer(nn.Module):
    """``models.transformer.TransformerEncoderLayer`` (sequence first)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int,
                 dropout: float, normalize_before: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def forward(self, src: Tensor, src_key_padding_mask: Tensor,
                pos: Tensor) -> Tensor:
        """``forward_pre`` when ``normalize_before`` else ``forward_post``.

        Args:
            src (Tensor): (HW, B, C).
            src_key_padding_mask (Tensor): Bool (B, HW), True on padding.
            pos (Tensor): (HW, B, C).
        """
        src2 = self.norm1(src) if self.normalize_before else src
        q = k = _with_pos(src2, pos)
        src2 = self.self_attn(
            q, k, value=src2, key_padding_mask=src_key_padding_mask)[0]
        src = src + self.dropout1(src2)
        if self.normalize_before:
            return src + self.dropout2(self._ffn(self.norm2(src)))
        src = self.norm1(src)
        return self.norm2(src + self.dropout2(self._ffn(src)))


class TransformerDecoderLayer(nn.Module):
    """``models.transformer.TransformerDecoderLayer`` (sequence first)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int,
                 dropout: float, normalize_before: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def _pre(self, norm: nn.Module, x: Tensor) -> Tensor:
        return norm(x) if self.normalize_before else x

    def _post(self, norm: nn.Module, x: Tensor) -> Tensor:
        return x if self.normalize_before else norm(x)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor],
                memory_key_padding_mask: Tensor, pos: Tensor,
                query_pos: Tensor) -> Tensor:
        """``forward_pre`` when ``normalize_before`` else ``forward_post``.

        Args:
            tgt (Tensor): Queries, (N, B, C).
            memory (Tensor): Encoder output, (HW, B, C).
            tgt_mask (Tensor, optional): Self-attention mask, (N, N).
            memory_key_padding_mask (Tensor): Bool (B, HW).
            pos (Tensor): Memory position encoding, (HW, B, C).
            query_pos (Tensor): Query position embedding, (N, B, C).
        """
        tgt2 = self._pre(self.norm1, tgt)
        q = k = _with_pos(tgt2, query_pos)
        tgt2 = self.self_attn(q, k, value=tgt2, attn_mask=tgt_mask)[0]
        tgt = self._post(self.norm1, tgt + self.dropout1(tgt2))
        tgt2 = self.multihead_attn(
            query=_with_pos(self._pre(self.norm2, tgt), query_pos),
            key=_with_pos(memory, pos),
            value=memory,
            key_padding_mask=memory_key_padding_mask)[0]
        tgt = self._post(self.norm2, tgt + self.dropout2(tgt2))
        tgt2 = self._pre(self.norm3, tgt)
        tgt2 = self.linear2(self.dropout(F.relu(self.linear1(tgt2))))
        return self._post(self.norm3, tgt + self.dropout3(tgt2))


class TransformerEncoder(nn.Module):
    """``models.transformer.TransformerEncoder`` (final norm if given)."""

    def __init__(self, layer: nn.Module, num_layers: int,
                 norm: Optional[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [copy.deepcopy(layer) for _ in range(num_layers)])
        self.norm = norm

    def forward(self, src: Tensor, src_key_padding_mask: Tensor,
                pos: Tensor) -> Tensor:
        for layer in self.layers:
            src = layer(src, src_key_padding_mask, pos)
        return src if self.norm is None else self.norm(src)


class TransformerDecoder(nn.Module):
    """``models.transformer.TransformerDecoder``, ``return_intermediate``.

    Every layer's output goes through the shared final ``norm``.
    """

    def __init__(self, layer: nn.Module, num_layers: int,
                 norm: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [copy.deepcopy(layer) for _ in range(num_layers)])
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, **kwargs) -> Tensor:
        """Return the normed outputs of all layers, (L, N, B, C)."""
        intermediate = []
        for layer in self.layers:
            tgt = layer(tgt, memory, **kwargs)
            intermediate.append(self.norm(tgt))
        return torch.stack(intermediate)


class Transformer(nn.Module):
    """``models.transformer.Transformer`` with ``return_intermediate_dec``.

    Args:
        d_model (int): Width. nhead (int): Attention heads.
        num_encoder_layers (int), num_decoder_layers (int): Depths.
        dim_feedforward (int): FFN width. dropout (float): Dropout.
        normalize_before (bool): Pre-norm layers, plus a final encoder norm.
    """

    def __init__(self, d_model: int, nhead: int, num_encoder_layers: int,
                 num_decoder_layers: int, dim_feedforward: int, dropout: float,
                 normalize_before: bool) -> None:
        super().__init__()
        args = (d_model, nhead, dim_feedforward, dropout, normalize_before)
        self.encoder = TransformerEncoder(
            TransformerEncoderLayer(*args), num_encoder_layers,
            nn.LayerNorm(d_model) if normalize_before else None)
        self.decoder = TransformerDecoder(
            TransformerDecoderLayer(*args), num_decoder_layers,
            nn.LayerNorm(d_model))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.d_model = d_model

    def forward(self, src: Tensor, mask: Tensor, query_embed: Tensor,
                pos_embed: Tensor, decoder_mask: Optional[Tensor]) -> Tensor:
        """Run encoder and decoder.

        Args:
            src (Tensor): Projected features, (B, C, H, W).
            mask (Tensor): Bool padding mask, (B, H, W).
            query_embed (Tensor): Query positions, (N, B, C).
            pos_embed (Tensor): Position encoding, (B, C, H, W).
            decoder_mask (Tensor, optional): Decoder self-attention mask.

        Returns:
            Tensor: Decoder outputs of all layers, (L, B, N, C).
        """
        src = src.flatten(2).permute(2, 0, 1)
        pos_embed = pos_embed.flatten(2).permute(2, 0, 1)
        mask = mask.flatten(1)
        memory = self.encoder(src, src_key_padding_mask=mask, pos=pos_embed)
        hs = self.decoder(
            torch.zeros_like(query_embed),
            memory,
            tgt_mask=decoder_mask,
            memory_key_padding_mask=mask,
            pos=pos_embed,
            query_pos=query_embed)
        return hs.transpose(1, 2)


# --------------------------------------------------------------------------
# models/detr.py (MLP) and models/updetr.py
# --------------------------------------------------------------------------
class MLP(nn.Module):
    """``models.detr.MLP``: Linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int,
                 num_layers: int) -> None:
        super().__init__()
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def build_group_attention_mask(num_queries: int, num_patches: int) -> Tensor:
    """The decoder self-attention mask of ``UPDETR.__init__``, fixed.

    Query ``i`` may attend to query ``j`` only within its own group of
    ``num_queries // num_patches`` queries. Loops over the ``num_patches``
    groups (the reference loops over ``range(num_queries // num_patches)``).

    Returns:
        Tensor: Float (N, N), 0 where allowed and -inf where blocked.
    """
    assert num_queries % num_patches == 0
    size = num_queries // num_patches
    mask = torch.full((num_queries, num_queries), float('-inf'))
    for i in range(num_patches):
        mask[i * size:(i + 1) * size, i * size:(i + 1) * size] = 0
    return mask


class UPDETR(nn.Module):
    """``models.updetr.UPDETR`` (with ``models.detr.DETR``'s modules).

    Args:
        backbone (Joiner): Backbone with position encoding.
        transformer (Transformer): The transformer.
        num_classes (int): Foreground classes; the reference pre-trains with
            2 (3 outputs, of which class 1 is the patch and 2 no object).
        num_queries (int): N. num_patches (int): M, dividing N.
        aux_loss (bool): Return every decoder layer's outputs.
        query_shuffle (bool): Shuffle the query embeddings in training.
        mask_ratio (float): Probability to drop a query's patch feature in
            training.
    """

    def __init__(self,
                 backbone: Joiner,
                 transformer: Transformer,
                 num_classes: int = 2,
                 num_queries: int = 100,
                 aux_loss: bool = True,
                 query_shuffle: bool = False,
                 mask_ratio: float = 0.1,
                 num_patches: int = 10) -> None:
        super().__init__()
        hidden_dim = transformer.d_model
        self.num_queries = num_queries
        self.transformer = transformer
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = nn.Conv2d(backbone.num_channels, hidden_dim, 1)
        self.backbone = backbone
        self.aux_loss = aux_loss
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.patch2query = nn.Linear(backbone.num_channels, hidden_dim)
        self.num_patches = num_patches
        self.mask_ratio = mask_ratio
        # ``feature_recon`` on: the feature reconstruction branch.
        self.feature_align = MLP(hidden_dim, hidden_dim, backbone.num_channels,
                                 2)
        self.query_shuffle = query_shuffle
        self.attention_mask = build_group_attention_mask(
            num_queries, num_patches)

    def _patch_queries(self, patches: Tensor) -> Tuple[Tensor, Tensor]:
        """Patch features and their per-query copies.

        Args:
            patches (Tensor): (B, M', 3, h, w).

        Returns:
            tuple[Tensor, Tensor]: GAP features (B * M', C_backbone) and
            ``patch2query`` outputs repeated with ``repeat_interleave`` over
            each group, (M' * N / M, B, C).
        """
        bs, num = patches.shape[:2]
        patch_feature_gt = self.avgpool(
            self.backbone(patches.flatten(0, 1))[-1]).flatten(1)
        patch_feature = self.patch2query(patch_feature_gt) \
            .view(bs, num, -1) \
            .repeat_interleave(self.num_queries // self.num_patches, dim=1) \
            .permute(1, 0, 2).contiguous()
        return patch_feature_gt, patch_feature

    def _query_pos(self, patch_feature: Tensor, bs: int) -> Tensor:
        """Add the query embedding (training: drop patch features first)."""
        num_queries = patch_feature.shape[0]
        if not self.training:
            return patch_feature + self.query_embed.weight[:num_queries] \
                .unsqueeze(1).repeat(1, bs, 1)
        idx = torch.randperm(self.num_queries) if self.query_shuffle \
            else torch.arange(self.num_queries)
        keep = (torch.rand(self.num_queries, bs, 1) > self.mask_ratio)
        return patch_feature * keep.float() \
            + self.query_embed.weight[idx, :].unsqueeze(1).repeat(1, bs, 1)

    def forward(self, samples: NestedTensor,
                patches: Tensor) -> Dict[str, object]:
        """``UPDETR.forward``.

        Args:
            samples (NestedTensor): Padded images (B, 3, H, W) and their
                mask (B, H, W), True on padding.
            patches (Tensor): Query patches, (B, M', 3, h, w); M' = M in
                training, M' <= M in eval.

        Returns:
            dict: ``pred_logits`` (B, N', num_classes + 1), ``pred_boxes``
            (B, N', 4) normalised cxcywh, ``pred_feature`` (B, N', C_bb),
            ``gt_feature`` (B * M', C_bb) and ``aux_outputs`` (list of such
            dicts for all but the last decoder layer).
        """
        features, pos = self.backbone(samples)
        src, mask = features[-1].decompose()
        bs = src.shape[0]
        gt_feature, patch_feature = self._patch_queries(patches)
        query_pos = self._query_pos(patch_feature, bs)
        num_queries = query_pos.shape[0]
        attn_mask = self.attention_mask[:num_queries, :num_queries]
        hs = self.transformer(
            self.input_proj(src), mask, query_pos, pos[-1], attn_mask)
        outputs_class = self.class_embed(hs)
        outputs_coord = self.bbox_embed(hs).sigmoid()
        outputs_feature = self.feature_align(hs)
        layers = [{
            'pred_logits': a,
            'pred_boxes': b,
            'pred_feature': c,
            'gt_feature': gt_feature
        } for a, b, c in zip(outputs_class, outputs_coord, outputs_feature)]
        out = layers[-1]
        if self.aux_loss:
            out['aux_outputs'] = layers[:-1]
        return out


# --------------------------------------------------------------------------
# models/matcher.py and models/detr.py (SetCriterion)
# --------------------------------------------------------------------------
class HungarianMatcher(nn.Module):
    """``models.matcher.HungarianMatcher``.

    Args:
        cost_class (float): Weight of ``-softmax[target class]``.
        cost_bbox (float): Weight of the L1 distance of cxcywh boxes.
        cost_giou (float): Weight of ``-GIoU``.
    """

    def __init__(self,
                 cost_class: float = 1,
                 cost_bbox: float = 5,
                 cost_giou: float = 2) -> None:
        super().__init__()
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict, targets: List[dict]) -> Indices:
        """Return per image (query indices, target indices), query-sorted."""
        bs, num_queries = outputs['pred_logits'].shape[:2]
        out_prob = outputs['pred_logits'].flatten(0, 1).softmax(-1)
        out_bbox = outputs['pred_boxes'].flatten(0, 1)
        tgt_ids = torch.cat([v['labels'] for v in targets])
        tgt_bbox = torch.cat([v['boxes'] for v in targets])
        cost_class = -out_prob[:, tgt_ids]
        cost_bbox = torch.cdist(out_bbox, tgt_bbox, p=1)
        cost_giou = -generalized_box_iou(
            box_cxcywh_to_xyxy(out_bbox), box_cxcywh_to_xyxy(tgt_bbox))
        C = self.cost_bbox * cost_bbox + self.cost_class * cost_class \
            + self.cost_giou * cost_giou
        C = C.view(bs, num_queries, -1).cpu()
        sizes = [len(v['boxes']) for v in targets]
        indices = [
            linear_sum_assignment(c[i])
            for i, c in enumerate(C.split(sizes, -1))
        ]
        return [(torch.as_tensor(i, dtype=torch.int64),
                 torch.as_tensor(j, dtype=torch.int64)) for i, j in indices]


def _src_permutation_idx(indices: Indices) -> Tuple[Tensor, Tensor]:
    """``SetCriterion._get_src_permutation_idx``."""
    batch_idx = torch.cat(
        [torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    src_idx = torch.cat([src for (src, _) in indices])
    return batch_idx, src_idx


class SetCriterion(nn.Module):
    """``models.detr.SetCriterion`` with losses labels, boxes, feature.

    Args:
        num_classes (int): Foreground classes (2 in pre-training).
        matcher (HungarianMatcher): The matcher.
        eos_coef (float): Weight of the no-object class (the reference
            passes ``--eos_coef``, 0.1 = M / N by default).
        losses (Sequence[str]): Among ``'labels'``, ``'boxes'``,
            ``'feature'``.
    """

    def __init__(
        self,
        num_classes: int,
        matcher: HungarianMatcher,
        eos_coef: float,
        losses: Sequence[str] = ('labels', 'boxes', 'feature')
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.losses = losses
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer('empty_weight', empty_weight)

    def loss_labels(self, outputs: dict, targets: List[dict], indices: Indices,
                    num_boxes: float) -> dict:
        """Weighted cross entropy over all queries (mean by weights)."""
        src_logits = outputs['pred_logits']
        idx = _src_permutation_idx(indices)
        target_classes_o = torch.cat(
            [t['labels'][J] for t, (_, J) in zip(targets, indices)])
        target_classes = torch.full(
            src_logits.shape[:2], self.num_classes, dtype=torch.int64)
        target_classes[idx] = target_classes_o
        loss_ce = F.cross_entropy(
            src_logits.transpose(1, 2), target_classes, self.empty_weight)
        return {'loss_ce': loss_ce}

    def loss_boxes(self, outputs: dict, targets: List[dict], indices: Indices,
                   num_boxes: float) -> dict:
        """L1 of normalised cxcywh boxes and 1 - GIoU, over ``num_boxes``."""
        idx = _src_permutation_idx(indices)
        src_boxes = outputs['pred_boxes'][idx]
        target_boxes = torch.cat(
            [t['boxes'][i] for t, (_, i) in zip(targets, indices)], dim=0)
        loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction='none')
        loss_giou = 1 - torch.diag(
            generalized_box_iou(
                box_cxcywh_to_xyxy(src_boxes),
                box_cxcywh_to_xyxy(target_boxes)))
        return {
            'loss_bbox': loss_bbox.sum() / num_boxes,
            'loss_giou': loss_giou.sum() / num_boxes
        }

    def loss_feature(self, outputs: dict, targets: List[dict],
                     indices: Indices, num_boxes: float) -> dict:
        """MSE of L2-normalised features, summed, over ``num_boxes``.

        As the reference: the target of a matched query is
        ``gt_feature.view(B, M, -1)[b][j]``, the feature of the patch of the
        ground-truth box ``j`` it is matched to (box ``j`` was cropped as
        patch ``j``).
        """
        target_feature = outputs['gt_feature']
        idx = _src_permutation_idx(indices)
        batch_size = len(indices)
        target_feature = target_feature.view(
            batch_size, target_feature.shape[0] // batch_size, -1)
        src_feature = outputs['pred_feature'][idx]
        target_feature = torch.cat(
            [t[i] for t, (_, i) in zip(target_feature, indices)], dim=0)
        src_feature = F.normalize(src_feature, dim=1)
        target_feature = F.normalize(target_feature, dim=1)
        loss = F.mse_loss(src_feature, target_feature, reduction='none')
        return {'loss_feature': loss.sum() / num_boxes}

    def _layer_losses(self, outputs: dict, targets: List[dict],
                      num_boxes: float) -> Tuple[dict, Indices]:
        indices = self.matcher(outputs, targets)
        losses = {}
        for loss in self.losses:
            losses.update(
                getattr(self, f'loss_{loss}')(outputs, targets, indices,
                                              num_boxes))
        return losses, indices

    def forward(self, outputs: dict, targets: List[dict]) -> dict:
        """``SetCriterion.forward`` (one process: no all-reduce).

        Each layer is matched on its own. Returns unweighted losses:
        ``loss_ce``, ``loss_bbox``, ``loss_giou``, ``loss_feature`` for the
        last layer, the same with suffix ``_i`` for auxiliary layer ``i``.
        The matches are kept in ``self.last_indices`` (auxiliary layers
        first, the last layer last).
        """
        num_boxes = float(max(sum(len(t['labels']) for t in targets), 1))
        last = {k: v for k, v in outputs.items() if k != 'aux_outputs'}
        losses, indices = self._layer_losses(last, targets, num_boxes)
        self.last_indices = []
        for i, aux in enumerate(outputs.get('aux_outputs', [])):
            aux_losses, aux_indices = self._layer_losses(
                aux, targets, num_boxes)
            self.last_indices.append(aux_indices)
            losses.update({f'{k}_{i}': v for k, v in aux_losses.items()})
        self.last_indices.append(indices)
        return losses


#: The reference's ``weight_dict`` (``models/__init__.py``) per loss kind.
LOSS_WEIGHTS = dict(loss_ce=1, loss_bbox=5, loss_giou=2, loss_feature=1)


def build_reference(num_queries: int = 100,
                    num_patches: int = 10,
                    hidden_dim: int = 256,
                    nheads: int = 8,
                    enc_layers: int = 6,
                    dec_layers: int = 6,
                    dim_feedforward: int = 2048,
                    dropout: float = 0.1,
                    pre_norm: bool = True,
                    mask_ratio: float = 0.1,
                    depth: int = 18) -> Tuple[UPDETR, SetCriterion]:
    """``models.build_model`` for ``--dataset_file ImageNet`` (ResNet-18, or
    the reference's ResNet-50 with ``depth=50``).

    ``aux_loss`` and ``feature_recon`` on, ``lr_backbone`` 0 (frozen CNN),
    ``num_classes`` 2, matcher costs 1 / 5 / 2 and ``eos_coef`` = M / N.

    Returns:
        tuple[UPDETR, SetCriterion]: The model and its criterion.
    """
    backbone = Joiner(
        Backbone(depth),
        PositionEmbeddingSine(hidden_dim // 2, normalize=True))
    transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers,
                              dim_feedforward, dropout, pre_norm)
    model = UPDETR(
        backbone,
        transformer,
        num_classes=2,
        num_queries=num_queries,
        mask_ratio=mask_ratio,
        num_patches=num_patches)
    criterion = SetCriterion(
        2, HungarianMatcher(1, 5, 2), eos_coef=num_patches / num_queries)
    return model, criterion
