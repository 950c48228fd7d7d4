"""``ExactSinePositionalEncoding``: mmdet's encoding, with the deterministic
check lifted for its exact cumsum."""
import torch
from mmdet.models.layers import SinePositionalEncoding

from mmdet_updetr.models.layers import ExactSinePositionalEncoding


def test_positional_encoding_is_mmdets_bit_for_bit():
    """Same output as mmdet's (computed with the check off), and the
    deterministic flags are as they were afterwards."""
    mask = torch.zeros(2, 5, 7, dtype=torch.bool)
    mask[0, 3:] = True
    mask[1, :, 4:] = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        ours = ExactSinePositionalEncoding(num_feats=8, normalize=True)(mask)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    ref = SinePositionalEncoding(num_feats=8, normalize=True)(mask)
    assert torch.equal(ours, ref)
