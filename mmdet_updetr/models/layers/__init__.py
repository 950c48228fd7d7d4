from .group_masked_decoder import GroupMaskedDecoder, group_attention_mask
from .prenorm_layers import (PreNormDetrTransformerDecoderLayer,
                             PreNormDetrTransformerEncoderLayer,
                             UPDETRTransformerEncoder)

__all__ = [
    'GroupMaskedDecoder', 'group_attention_mask',
    'PreNormDetrTransformerEncoderLayer', 'PreNormDetrTransformerDecoderLayer',
    'UPDETRTransformerEncoder'
]
