from .group_masked_decoder import GroupMaskedDecoder, group_attention_mask
from .mask_attention import MHAttentionMap
from .mask_head_small_conv import MaskHeadSmallConv
from .positional_encoding import ExactSinePositionalEncoding
from .prenorm_layers import (PreNormDetrTransformerDecoder,
                             PreNormDetrTransformerDecoderLayer,
                             PreNormDetrTransformerEncoder,
                             PreNormDetrTransformerEncoderLayer)

__all__ = [
    'GroupMaskedDecoder', 'group_attention_mask',
    'PreNormDetrTransformerEncoderLayer', 'PreNormDetrTransformerDecoderLayer',
    'PreNormDetrTransformerEncoder', 'PreNormDetrTransformerDecoder',
    'MHAttentionMap', 'MaskHeadSmallConv', 'ExactSinePositionalEncoding'
]
