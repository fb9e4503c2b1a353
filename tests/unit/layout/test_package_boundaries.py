"""Packages talk through their public ``__init__``: no module imports another package's private module.

The layers themselves (which package may import which) are the import-linter contract
in ``pyproject.toml``, run by ``./scripts/test``; this test adds what that contract
cannot state: ``mloop.serving._engine`` is serving's own business.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mloop

SRC = Path(mloop.__file__).parent


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _private_of_another_package(module: str, own: str) -> bool:
    parts = module.split(".")
    if parts[0] != "mloop" or len(parts) < 3:
        return False
    package, private = parts[1], parts[2]
    return package != own and not package.startswith("_") and private.startswith("_")


def test_no_module_imports_a_private_module_of_another_package() -> None:
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else ""
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            if _private_of_another_package(module, own):
                offences.append(f"{rel}:{line} imports {module}")
    assert offences == [], "\n".join(offences)


def test_every_package_the_loop_names_exists_with_a_public_entry() -> None:
    for package in ("journal", "monitor", "rollout", "pipelines", "serving", "server", "demo"):
        init = SRC / package / "__init__.py"
        assert init.is_file(), package
        assert ast.get_docstring(ast.parse(init.read_text())), f"{package} says what it is"
