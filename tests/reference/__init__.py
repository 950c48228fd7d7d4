"""Plain-torch re-implementations of reference code, used as test oracles."""
import torch


def randomize_1d_(model: torch.nn.Module) -> torch.nn.Module:
    """Give every 1-D tensor distinct values, so a swapped key shows up.

    Defaults (BN / LayerNorm weight 1, biases 0) would hide a mix-up of
    norms or biases in a converter's key map.

    Args:
        model (nn.Module): Changed in place.

    Returns:
        nn.Module: ``model``.
    """
    for name, value in model.state_dict().items():
        if value.dim() != 1:
            continue
        if name.endswith('running_var'):
            value.uniform_(0.5, 1.5)
        elif name.endswith('weight'):
            value.uniform_(0.8, 1.2)
        else:
            value.normal_(0, 0.1)
    return model
