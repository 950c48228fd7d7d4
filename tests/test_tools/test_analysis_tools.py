"""``tools/analysis_tools/{get_flops,benchmark}.py`` on a tiny fine-tuning
model, on the CPU."""
import importlib.util
from pathlib import Path

import pytest

from mmdet_updetr.testing import get_tiny_cfg, write_tiny_voc

REPO = Path(__file__).resolve().parents[2]


def _load_tool(name):
    path = REPO / 'tools' / 'analysis_tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'updetr_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    """The tiny VOC fine-tuning config, its test set written, on disk."""
    tmp_path = tmp_path_factory.mktemp('analysis')
    write_tiny_voc(str(tmp_path), num_trainval=1, num_test=2)
    cfg = get_tiny_cfg('updetr/finetune_voc0712_150e.py')
    cfg.model.init_cfg = None
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    cfg.test_dataloader.dataset.pipeline[1].scale = (128, 96)
    path = tmp_path / 'tiny_finetune_voc.py'
    cfg.dump(str(path))
    return str(path), cfg


def test_get_flops_counts_the_model_at_the_given_shape(config):
    path, cfg = config
    tool = _load_tool('get_flops')
    small = tool.main([path, '--shape', '64', '96'])
    large = tool.main([path, '--shape', '128', '192'])
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    assert small['params'] == sum(p.numel() for p in model.parameters())
    assert small['trainable_params'] == sum(p.numel()
                                            for p in model.parameters()
                                            if p.requires_grad)
    assert small['trainable_params'] < small['params']  # stem, layer1, BN
    # Mostly the CNN: 4 x the pixels, about 4 x the FLOPs.
    assert 3.5 < large['flops'] / small['flops'] < 5


def test_benchmark_on_synthetic_images(config):
    result = _load_tool('benchmark').main([
        config[0], '--device', 'cpu', '--shape', '64', '96', '--max-iter', '3',
        '--num-warmup', '1'
    ])
    assert result['num_timed'] == 2 and result['fps'] > 0
    assert result['ms_per_img'] == pytest.approx(1000 / result['fps'])


def test_benchmark_on_the_test_set(config):
    result = _load_tool('benchmark').main(
        [config[0], '--device', 'cpu', '--max-iter', '5', '--num-warmup', '1'])
    assert result['num_timed'] == 1  # the test set has 2 images


def test_mmdets_own_get_flops_runs_on_the_model(config):
    """mmdet's ``tools/analysis_tools/get_flops.py``, unchanged, on our
    model and a VOC-format test set."""
    import re
    import subprocess
    import sys

    import mmdet
    from mmdet.registry import MODELS
    from mmengine.config import Config
    path, cfg = config
    cfg = Config.fromfile(path)
    cfg.val_dataloader = cfg.test_dataloader  # mmdet's tool reads val
    cfg.dump(path.replace('.py', '_val.py'))
    tool = (
        Path(mmdet.__file__).parent / '.mim' / 'tools' / 'analysis_tools' /
        'get_flops.py')
    proc = subprocess.run([
        sys.executable,
        str(tool),
        path.replace('.py', '_val.py'), '--num-images', '2'
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    params = float(re.search(r'Params: ([\d.]+)M', proc.stdout).group(1))
    model = MODELS.build(cfg.model)
    expected = sum(p.numel() for p in model.parameters()) / 1e6
    assert params == pytest.approx(expected, abs=0.001)
    assert float(re.search(r'Flops: ([\d.]+)G', proc.stdout).group(1)) > 0
