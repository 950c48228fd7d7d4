"""The data and model layers never import each other; the augmentation
they share imports neither."""
from pathlib import Path

import pytest

import mmdet_updetr
from mmdet_updetr.testing import imported_modules

PACKAGE = Path(mmdet_updetr.__file__).parent
FORBIDDEN = {
    'datasets': ('mmdet_updetr.models', ),
    'models': ('mmdet_updetr.datasets', ),
    'augmentation': ('mmdet_updetr.models', 'mmdet_updetr.datasets'),
}


def test_imported_modules_resolves_relative_imports():
    path = PACKAGE / 'datasets' / 'transforms' / 'oneshot_query.py'
    names = set(imported_modules(path))
    assert 'mmdet_updetr.datasets.transforms.query_patch' in names
    assert 'mmdet_updetr.augmentation' in names


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_layer_does_not_import_the_other(layer):
    files = sorted((PACKAGE / layer).rglob('*.py'))
    assert files
    bad = [(str(path.relative_to(PACKAGE)), name) for path in files
           for name in imported_modules(path)
           if name.startswith(FORBIDDEN[layer])]
    assert not bad, f'{layer} imports {bad}'
