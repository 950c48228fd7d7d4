"""Deterministic equivalents for CUDA ops without a deterministic kernel
(``randomness.deterministic=True``), checked on the CPU: the matrix form of
the bilinear resize against ``F.interpolate``."""
import pytest
import torch
import torch.nn.functional as F

from mmdet_updetr.models.utils import (bilinear_resize,
                                       exact_nondeterministic_ops)
from mmdet_updetr.models.utils.deterministic import _bilinear_weights


@pytest.fixture
def deterministic():
    """Deterministic algorithms on for the test, off afterwards."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize('in_size,out_size', [((5, 7), (20, 28)),
                                              ((6, 9), (25, 31)),
                                              ((8, 8), (3, 5))])
def test_matrix_form_equals_bilinear_interpolation(in_size, out_size):
    """The weights that bilinear_resize multiplies by on CUDA give
    F.interpolate's values (up to float rounding) and gradients."""
    x = torch.randn(2, 1, *in_size, dtype=torch.float64, requires_grad=True)
    rows = _bilinear_weights(in_size[0], out_size[0], x)
    cols = _bilinear_weights(in_size[1], out_size[1], x)
    ours = rows @ x @ cols.t()
    ref = F.interpolate(x, out_size, mode='bilinear', align_corners=False)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    ours_grad, = torch.autograd.grad(ours, x, grad)
    ref_grad, = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-12, atol=1e-12)
    # Each output row interpolates between at most two input rows.
    assert torch.allclose(rows.sum(1), torch.ones(out_size[0], **_f64()))
    assert int((rows > 0).sum(1).max()) <= 2


def _f64():
    return dict(dtype=torch.float64)


def test_bilinear_resize_is_interpolate_on_cpu(deterministic):
    x = torch.randn(3, 1, 4, 6)
    assert torch.equal(
        bilinear_resize(x, (8, 12)),
        F.interpolate(x, (8, 12), mode='bilinear', align_corners=False))


def test_exact_ops_lift_the_check_and_restore_it(deterministic):
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    with exact_nondeterministic_ops():
        assert not torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
