"""The import rules of the architecture: platforms stay in bot/, imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {"telegram", "wechatpy"}
#: package → top-level modules it must never import
FORBIDDEN = {
    "storage": PLATFORMS | {"bot", "handlers", "scheduler"},
    "handlers": PLATFORMS | {"bot", "scheduler"},
    "scheduler": PLATFORMS | {"bot"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names a module imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    """handlers/, storage/ and scheduler/ never import a chat platform or a layer above them."""
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package]) for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The scan itself finds imports nested in functions (so the test above can fail)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from telegram import Bot\n    import wechatpy.crypto\n")
    assert imported_roots(module) == {"telegram", "wechatpy"}


def test_layout_has_every_part() -> None:
    """The designed layout is there."""
    for part in ("bot", "handlers", "storage", "scheduler", "tests", "deploy", "bench"):
        assert (ROOT / part).is_dir(), part
    for part in ("bot", "handlers", "storage", "scheduler"):
        assert (ROOT / part / "__init__.py").is_file(), part
