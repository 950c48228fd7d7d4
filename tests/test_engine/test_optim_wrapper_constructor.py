"""``FrozenAwareOptimWrapperConstructor``: same optimizer, one log line."""
import torch
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

CFG = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
PARAMWISE = dict(custom_keys={'backbone': dict(lr_mult=0.5)})


def tiny_model():
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3))
    model.head = nn.Linear(3, 1)
    model.backbone[0].requires_grad_(False)
    return model


def param_groups(optim_wrapper, model):
    names = {id(p): n for n, p in model.named_parameters()}
    # (mmengine also adds a scalar placeholder group; not a model parameter)
    return sorted((names[id(p)], g['lr']) for g in optim_wrapper.param_groups
                  for p in g['params'] if id(p) in names)


def test_same_optimizer_one_line(tmp_path):
    log_file = tmp_path / 'optim.log'
    MMLogger.get_instance('optim_test', log_file=str(log_file))
    model = tiny_model()
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='FrozenAwareOptimWrapperConstructor',
            optim_wrapper_cfg=CFG,
            paramwise_cfg=PARAMWISE))
    ours = constructor(model)
    log = log_file.read_text()
    theirs = DefaultOptimWrapperConstructor(CFG, PARAMWISE)(model)
    expected = [('backbone.1.bias', 5e-5), ('backbone.1.weight', 5e-5),
                ('head.bias', 1e-4), ('head.weight', 1e-4)]
    assert param_groups(ours, model) == expected
    assert param_groups(theirs, model) == expected
    # mmengine's constructor warns per frozen parameter; ours does not,
    # and says once how many are frozen where.
    assert 'is skipped since its requires_grad=False' in \
        log_file.read_text()[len(log):]
    assert 'is skipped since' not in log
    assert ('2 frozen parameters (requires_grad=False) are left out of the '
            'optimizer: backbone (2)') in log
    assert isinstance(ours.optimizer, torch.optim.AdamW)
