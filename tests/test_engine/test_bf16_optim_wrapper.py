"""``BF16AmpOptimWrapper`` and ``tools/train.py --amp`` on the CPU.

mmengine's ``AmpOptimWrapper`` refuses a machine without a GPU; here
``--amp`` picks ``BF16AmpOptimWrapper``, which trains the demo config in
bfloat16 with finite losses close to float32's.
"""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn

from mmdet_updetr.engine import BF16AmpOptimWrapper
from mmdet_updetr.testing import tiny_pretrain_cfg

REPO = Path(__file__).resolve().parents[2]


def _wrapper(model, **kwargs):
    return OPTIM_WRAPPERS.build(
        dict(
            type='BF16AmpOptimWrapper',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            **kwargs))


def test_optim_context_autocasts_to_bfloat16_on_the_model_device():
    model = nn.Linear(4, 2)
    wrapper = _wrapper(model)
    assert isinstance(wrapper, BF16AmpOptimWrapper)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert model(torch.randn(3, 4)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    assert model(torch.randn(3, 4)).dtype == torch.float32


def test_update_params_steps_float32_weights():
    model = nn.Linear(4, 1)
    wrapper = _wrapper(model, clip_grad=dict(max_norm=0.1))
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        loss = model(torch.ones(2, 4)).float().sum()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    # The gradient (2, 2, 2, 2; 2) has norm 4.5, clipped to 0.1: SGD with
    # lr 0.1 moves the parameters by a step of norm 0.01.
    step = torch.cat([(p - b).flatten()
                      for p, b in zip(model.parameters(), before)])
    assert step.norm().item() == pytest.approx(0.01, rel=1e-4)


def test_unknown_device_type_is_refused():
    with pytest.raises(ValueError, match="device_type 'tpu'"):
        _wrapper(nn.Linear(1, 1), device_type='tpu')


def _train_tool():
    spec = importlib.util.spec_from_file_location('updetr_train',
                                                  REPO / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_amp_picks_the_wrapper_of_the_device():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    _train_tool().enable_amp(cfg)
    if torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    else:
        assert cfg.optim_wrapper.type == 'BF16AmpOptimWrapper'
        assert 'loss_scale' not in cfg.optim_wrapper


def _losses_of_one_batch(model, data, optim_wrapper):
    """The losses of ``data`` as ``train_step`` computes them (same
    dropout and query-drop draws for every call)."""
    torch.manual_seed(0)
    with optim_wrapper.optim_context(model):
        batch = model.data_preprocessor(data, True)
        return model._run_forward(batch, mode='loss')


def test_bf16_and_fp32_losses_agree_on_one_batch(tmp_path):
    init_default_scope('mmdet')
    cfg = tiny_pretrain_cfg(tmp_path)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    np.random.seed(0)
    data = next(iter(runner.train_dataloader))
    fp32 = _losses_of_one_batch(model, data,
                                build_optim_wrapper(model, cfg.optim_wrapper))
    bf16_cfg = dict(cfg.optim_wrapper, type='BF16AmpOptimWrapper')
    bf16 = _losses_of_one_batch(model, data,
                                build_optim_wrapper(model, bf16_cfg))
    assert set(bf16) == set(fp32)
    for key, value in bf16.items():
        # Losses in float32 (float32_losses), from bfloat16 activations.
        assert value.dtype == torch.float32, key
        # Tolerance: bfloat16 keeps 8 significant bits (relative 2^-8), and
        # a few layers compound it; the losses here are O(1).
        torch.testing.assert_close(
            value, fp32[key], rtol=0.03, atol=0.03, msg=key)
        assert not torch.equal(value, fp32[key]) or value.item() == 0, key


def test_demo_trains_in_bf16_with_finite_losses(tmp_path):
    cfg = tiny_pretrain_cfg(tmp_path, max_epochs=1)
    cfg.optim_wrapper.type = 'BF16AmpOptimWrapper'
    runner = Runner.from_cfg(cfg)
    before = runner.model.patch2query.weight.detach().clone()
    runner.train()
    assert isinstance(runner.optim_wrapper, BF16AmpOptimWrapper)
    assert runner.iter == len(runner.train_dataloader) >= 2
    for key in ('loss', 'loss_cls', 'loss_bbox', 'loss_iou', 'loss_rec'):
        assert math.isfinite(
            runner.message_hub.get_scalar(f'train/{key}').current()), key
    assert not torch.equal(before, runner.model.patch2query.weight)
    assert runner.model.patch2query.weight.dtype == torch.float32
