import pytest
import torch

from mmdet_updetr.models.losses import PatchReconstructionLoss


def test_literal_values():
    # (3, 4)/5 = (0.6, 0.8) vs (1, 0): 0.4^2 + 0.8^2 = 0.8; equal directions
    # (scale does not matter) give 0; opposite directions give 4.
    pred = torch.tensor([[3., 4.], [2., 2.], [-1., 0.]])
    target = torch.tensor([[1., 0.], [5., 5.], [7., 0.]])
    loss = PatchReconstructionLoss(reduction='none')
    torch.testing.assert_close(loss(pred, target), torch.tensor([0.8, 0., 4.]))
    summed = PatchReconstructionLoss(reduction='sum', loss_weight=2.)
    torch.testing.assert_close(summed(pred, target), torch.tensor(9.6))
    mean = PatchReconstructionLoss()
    torch.testing.assert_close(
        mean(pred, target, avg_factor=2), torch.tensor(2.4))
    torch.testing.assert_close(
        mean(pred, target, weight=torch.tensor([1., 1., 0.])),
        torch.tensor(0.8 / 3))


def test_empty_input_gives_zero_with_gradient():
    pred = torch.zeros(0, 8, requires_grad=True)
    loss = PatchReconstructionLoss()(pred, torch.zeros(0, 8), avg_factor=1)
    assert loss.item() == 0
    loss.backward()


def test_rejects_unknown_reduction():
    with pytest.raises(AssertionError):
        PatchReconstructionLoss()(
            torch.ones(1, 2), torch.ones(1, 2), reduction_override='max')
