"""The data and model layers never import each other; the augmentation
they share imports neither."""
import ast
from pathlib import Path

import pytest

import mmdet_updetr

PACKAGE = Path(mmdet_updetr.__file__).parent
FORBIDDEN = {
    'datasets': ('mmdet_updetr.models', ),
    'models': ('mmdet_updetr.datasets', ),
    'augmentation': ('mmdet_updetr.models', 'mmdet_updetr.datasets'),
}


def imported_modules(path: Path):
    """Absolute names of the modules a file imports."""
    package = '.'.join(path.relative_to(PACKAGE.parent).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split('.')
            if node.level:
                base = base[:len(base) - node.level + 1]
            else:
                base = []
            name = '.'.join(base + ([node.module] if node.module else []))
            yield name
            yield from (f'{name}.{alias.name}' for alias in node.names)


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
