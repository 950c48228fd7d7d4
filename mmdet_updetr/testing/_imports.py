# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""What a source file of this repository imports, read from its AST (for
the tests that keep layers and the test layout apart)."""
import ast
from pathlib import Path
from typing import Iterator

from ._utils import REPO_ROOT


def imported_modules(path: Path) -> Iterator[str]:
    """Absolute names of the modules a file imports.

    Relative imports are resolved against the file's package, named by its
    folders under the repository root (``mmdet_updetr.datasets``,
    ``tests.test_models``, ...). For ``from a import b`` both ``a`` and
    ``a.b`` are given, since ``b`` may be a module.

    Args:
        path (Path): A ``.py`` file under the repository root.

    Yields:
        str: Dotted module names, in the order of the file's imports.
    """
    package = '.'.join(path.resolve().relative_to(REPO_ROOT).parent.parts)
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
