"""Test support has one home and one import path: ``mmdet_updetr.testing``
(support), ``tests/reference`` (oracles, imported only as
``tests.reference``), ``conftest.py`` (fixtures only); nothing else under
``tests/`` but test files, and no module loaded by its file path from
``tests/``."""
import ast
import re

from mmdet_updetr.testing import imported_modules
from mmdet_updetr.testing._utils import REPO_ROOT

TESTS = REPO_ROOT / 'tests'
REFERENCE = TESTS / 'reference'
#: Functions that import a module from its file (or by a computed name).
LOADERS = {
    'spec_from_file_location', 'module_from_spec', 'SourceFileLoader',
    'run_path', 'import_module', '__import__'
}


def support_candidates() -> list:
    """The ``.py`` files under ``tests/``, the oracles excepted."""
    return sorted(p for p in TESTS.rglob('*.py') if REFERENCE not in p.parents)


def loads_tests_files(source: str) -> bool:
    """Whether code that loads modules from files names a file of
    ``tests/``: a loader call, and outside docstrings a string naming the
    ``tests``/``reference`` folders, a ``conftest`` or a ``*_reference.py``
    file."""
    tree = ast.parse(source)
    calls = {
        getattr(node.func, 'attr', getattr(node.func, 'id', None))
        for node in ast.walk(tree) if isinstance(node, ast.Call)
    }
    if not calls & LOADERS:
        return False
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            parts = re.split(r'[/\\.]', node.value)
            if {'tests', 'reference', 'conftest'} & set(parts) or \
                    node.value.endswith('_reference.py'):
                return True
    return False


def non_fixtures(source: str) -> list:
    """Top-level functions and classes of a conftest that are neither
    fixtures nor pytest hooks (``pytest_*``)."""

    def is_fixture(decorator):
        target = getattr(decorator, 'func', decorator)
        return getattr(target, 'attr', getattr(target, 'id', '')) == 'fixture'

    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            if node.name.startswith('pytest_') or any(
                    map(is_fixture, node.decorator_list)):
                continue
        elif not isinstance(node, ast.ClassDef):
            continue
        names.append(node.name)
    return names


def test_only_tests_conftests_and_oracles_under_tests():
    files = support_candidates()
    assert TESTS / 'conftest.py' in files
    others = [
        str(p.relative_to(REPO_ROOT)) for p in files
        if p.name not in ('conftest.py', '__init__.py')
        and not (p.name.startswith('test_') and p.suffix == '.py')
    ]
    assert not others, (f'{others}: test support belongs in '
                        'mmdet_updetr/testing/ (see the README\'s Tests)')
    assert (REFERENCE / 'updetr_reference.py').is_file()


def test_conftests_hold_only_fixtures():
    conftests = [p for p in support_candidates() if p.name == 'conftest.py']
    assert len(conftests) >= 2
    bad = {
        str(p.relative_to(REPO_ROOT)): non_fixtures(p.read_text())
        for p in conftests
    }
    assert not any(bad.values()), f'move to mmdet_updetr/testing: {bad}'


def test_non_fixtures_finds_helpers():
    source = ('import pytest\n\n@pytest.fixture\ndef a():\n    pass\n\n\n'
              '@pytest.fixture(scope="module")\ndef b():\n    pass\n\n\n'
              'def pytest_configure(config):\n    pass\n\n\n'
              'def smooth_image():\n    pass\n\n\nclass Helper:\n    pass\n')
    assert non_fixtures(source) == ['smooth_image', 'Helper']


def test_tests_import_support_and_oracles_one_way():
    files = sorted(TESTS.rglob('*.py'))
    bad = [(str(p.relative_to(REPO_ROOT)), name) for p in files
           for name in imported_modules(p)
           if name.split('.')[0] in ('tests', 'conftest', 'reference')
           and not name.startswith('tests.reference')]
    assert not bad, f'import support from mmdet_updetr.testing: {bad}'
    loaders = [
        str(p.relative_to(REPO_ROOT)) for p in files
        if loads_tests_files(p.read_text())
    ]
    assert not loaders, f'{loaders} load tests/ files by path'


def test_loads_tests_files_finds_loading_by_path():
    by_path = ('"""Loads tests/reference."""\nimport importlib.util\n'
               'spec = importlib.util.spec_from_file_location(\n'
               '    "ref", REPO.joinpath("tests", "reference", "x.py"))\n')
    assert loads_tests_files(by_path)
    by_name = by_path.replace('"tests", "reference", "x.py"',
                              'f"{name}_reference.py"')
    assert loads_tests_files(by_name)
    # A tool loaded from its file; ``tests`` only in the docstring.
    assert not loads_tests_files(
        by_path.replace('"tests", "reference", "x.py"', '"tools", "x.py"'))
    assert not loads_tests_files('from tests.reference import x\n')


#: The one tool that may import an oracle: ``benchmark_pretrain.py
#: --reference`` times the reference re-implementation's step as the anchor
#: of its ratios (imported inside that option only; it needs a checkout).
ORACLE_USERS = {'tools/analysis_tools/benchmark_pretrain.py'}


def test_package_and_tools_do_not_import_test_support():
    testing = REPO_ROOT / 'mmdet_updetr' / 'testing'
    bad = []
    for folder in ('mmdet_updetr', 'tools', 'demo'):
        for path in sorted((REPO_ROOT / folder).rglob('*.py')):
            inside = testing in path.parents
            rel = path.relative_to(REPO_ROOT).as_posix()
            bad += [(rel, name) for name in imported_modules(path) if (
                name.split('.')[0] == 'tests' and not (
                    rel in ORACLE_USERS and name.startswith('tests.reference'))
            ) or (not inside and name.startswith('mmdet_updetr.testing'))]
    assert not bad, bad
