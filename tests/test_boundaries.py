"""The layer rules of DESIGN.md: nothing below ui/ imports textual, and imports only point down."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import computehub_tui

PACKAGE_ROOT = Path(computehub_tui.__file__).parent

# package -> packages it must never import (DESIGN.md, "Layers")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": ("textual", "computehub_tui.providers", "computehub_tui.store", "computehub_tui.engine",
               "computehub_tui.ui", "computehub_tui.notify", "computehub_tui.vault", "computehub_tui.cli",
               "httpx", "aiosqlite", "asyncio"),
    "rules": ("textual", "computehub_tui.providers", "computehub_tui.store", "computehub_tui.engine",
              "computehub_tui.ui", "httpx", "aiosqlite"),
    "providers": ("textual", "computehub_tui.store", "computehub_tui.engine", "computehub_tui.ui",
                  "computehub_tui.cli", "computehub_tui.wiring"),
    "store": ("textual", "computehub_tui.providers", "computehub_tui.engine", "computehub_tui.ui",
              "computehub_tui.vault", "computehub_tui.cli", "computehub_tui.wiring"),
    "notify": ("textual", "computehub_tui.engine", "computehub_tui.ui", "computehub_tui.cli"),
    "engine": ("textual", "computehub_tui.ui", "computehub_tui.cli", "computehub_tui.wiring"),
    "ui": ("computehub_tui.providers", "computehub_tui.store", "computehub_tui.notify",
           "computehub_tui.vault", "computehub_tui.wiring"),
    "vault.py": ("textual", "computehub_tui.ui", "computehub_tui.store", "computehub_tui.engine"),
    "clock.py": ("textual", "computehub_tui."),
    "private_files.py": ("textual", "computehub_tui."),
}
HEADLESS = ("domain", "rules", "providers", "store", "notify", "engine", "vault", "clock", "config", "wiring",
            "private_files")


def _modules_of(part: str) -> list[Path]:
    path = PACKAGE_ROOT / part
    if path.suffix == ".py":
        return [path]
    return sorted(path.rglob("*.py")) if path.exists() else []


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_forbidden_imports(part: str) -> None:
    violations = []
    for module in _modules_of(part):
        for name in _imports(module):
            for forbidden in FORBIDDEN[part]:
                if name == forbidden.rstrip(".") or name.startswith(forbidden if forbidden.endswith(".") else forbidden + "."):
                    violations.append(f"{module.relative_to(PACKAGE_ROOT)} imports {name}")
    assert violations == []


def test_every_layer_exists() -> None:
    for part in ("domain", "providers", "store", "engine", "ui"):
        assert (PACKAGE_ROOT / part / "__init__.py").exists(), part
    for module in ("cli/__init__.py", "config/__init__.py", "vault.py"):
        assert (PACKAGE_ROOT / module).exists(), module


def test_headless_layers_do_not_load_textual() -> None:
    """Import every module below ui/ in a fresh interpreter and check textual never loaded."""
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE_ROOT)], prefix="computehub_tui."):
        top = info.name.split(".")[1]
        if top in HEADLESS:
            names.append(info.name)
    assert len(names) > 15
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
