"""DESIGN.md's layer rules, checked on every module that exists now and on any added later.

Two rules, both from DESIGN.md "Layers": the table's "must not import" column, word for word, and
the diagram's "imports only point downwards". Each is checked over whatever .py files are under
``computehub_tui/<part>/`` (or ``<part>.py``); a part that does not exist yet (``rules/``, ``notify/``)
has nothing to scan today, so the checker itself is proven on synthetic violating modules for every
rule, and the real tree is never the only evidence.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import computehub_tui

PACKAGE = "computehub_tui"
PACKAGE_ROOT = Path(computehub_tui.__file__).parent
PARTS = ("cli", "ui", "wiring", "engine", "providers", "notify", "store", "vault", "template_files",
         "domain", "rules", "clock", "config", "private_files", "templates")
"""Every part of the package: a folder ``<part>/`` or a module ``<part>.py``."""

IO_MODULES = ("httpx", "aiosqlite", "sqlite3", "socket", "ssl", "subprocess", "urllib.request", "http.client",
              "requests", "telegram", "aiosmtplib", "smtplib", "shutil", "tempfile")
"""What "anything with I/O" means for the pure layers: network, databases, processes, file writes."""
CLOCK_READS = ("time", "computehub_tui.clock")
"""The pure layers take ``now`` as an argument ("no clock reads")."""

MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "domain": (*IO_MODULES, "asyncio", "textual", *CLOCK_READS),
    "rules": (*IO_MODULES, "asyncio", "engine", "store", "notify", "vault", "wiring", "textual", *CLOCK_READS),
    "providers": ("store", "engine", "notify", "ui", "textual"),
    "store": ("providers", "engine", "notify", "ui", "textual"),
    "vault": ("ui", "textual"),
    "notify": ("engine", "providers", "ui", "textual"),
    "engine": ("ui", "textual"),
    "ui": ("providers", "store", "notify", "vault"),
    "cli": (),
    "wiring": ("ui",),
}
"""DESIGN.md's table, "must not import" column; a bare part name means that part of this package."""

LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("ui", "wiring"),
    ("engine",),
    ("providers", "notify", "store", "vault", "template_files"),
    ("rules",),
    ("domain",),
    ("clock", "config", "private_files", "templates"),
)
"""The diagram, top to bottom: a part imports only parts in the layers below its own (and itself).
Two leaves are not in DESIGN.md: ``private_files.py`` (used by store, vault and the demo world) and
``templates/`` (the bundled template TOML files, read by ``template_files.py``). The diagram's pure box
holds ``domain/ + rules/``: the rule language is written over the domain's vocabulary (instance statuses,
pricing kinds, provider names, safe text), so rules/ sits just above domain/ and domain/ never imports it."""


def _full_name(name: str) -> str:
    return f"{PACKAGE}.{name}" if name in PARTS else name


def _covers(target: str, name: str) -> bool:
    return name == target or name.startswith(target + ".")


def _files_of(root: Path, part: str) -> list[Path]:
    folder, module = root / part, root / f"{part}.py"
    return sorted(folder.rglob("*.py")) + ([module] if module.exists() else [])


def _module_name(root: Path, path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (deferred and TYPE_CHECKING imports count), with
    relative imports resolved and ``from package import module`` read as ``package.module``."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def violations(root: Path, part: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in _files_of(root, part):
        own = f"{PACKAGE}.{part}"
        for line, name in imported_names(root, path):
            if _covers(own, name):
                continue
            for target in map(_full_name, forbidden):
                if _covers(target, name):
                    found.append(f"{path.relative_to(root)}:{line} imports {name} (must not import {target})")
    return sorted(set(found))


def not_below(part: str) -> tuple[str, ...]:
    """The parts ``part`` may not import under "imports only point downwards": its own layer and those above."""
    level = next(index for index, layer in enumerate(LAYERS) if part in layer)
    return tuple(other for layer in LAYERS[: level + 1] for other in layer if other != part)


# -- the real tree --------------------------------------------------------------------------------


@pytest.mark.parametrize("part", sorted(MUST_NOT_IMPORT))
def test_the_design_table_holds(part: str) -> None:
    assert violations(PACKAGE_ROOT, part, MUST_NOT_IMPORT[part]) == []


@pytest.mark.parametrize("part", PARTS)
def test_imports_only_point_downwards(part: str) -> None:
    assert violations(PACKAGE_ROOT, part, not_below(part)) == []


def test_every_part_on_disk_is_in_the_design() -> None:
    """A new top-level folder or module must be placed in the layers (and the table) before it is checked."""
    on_disk = {path.stem for path in PACKAGE_ROOT.iterdir()
               if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py"}
    on_disk -= {"__init__", "__main__"}
    assert on_disk <= set(PARTS), on_disk - set(PARTS)
    assert {part for layer in LAYERS for part in layer} == set(PARTS)
    assert set(MUST_NOT_IMPORT) <= set(PARTS)


def test_every_layer_exists() -> None:
    for part in ("domain", "providers", "store", "engine", "ui", "cli"):
        assert (PACKAGE_ROOT / part / "__init__.py").exists(), part
    for module in ("config/__init__.py", "clock.py", "vault.py", "wiring.py"):
        assert (PACKAGE_ROOT / module).exists(), module


def test_headless_layers_do_not_load_textual() -> None:
    """Import every module below ui/ in a fresh interpreter and check textual never loaded."""
    headless = set(PARTS) - {"ui", "cli"}
    names = [info.name for info in pkgutil.walk_packages([str(PACKAGE_ROOT)], prefix=f"{PACKAGE}.")
             if info.name.split(".")[1] in headless]
    assert len(names) > 15
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


# -- the checker itself, on synthetic modules ----------------------------------------------------


def _write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


def _all_rules() -> list[tuple[str, str]]:
    table = [(part, target) for part, targets in MUST_NOT_IMPORT.items() for target in targets]
    layers = [(part, other) for part in PARTS for other in not_below(part)]
    return sorted(set(table + layers))


def test_the_checker_catches_every_rule_on_a_violating_module(tmp_path: Path) -> None:
    missed = []
    for number, (part, target) in enumerate(_all_rules()):
        root = tmp_path / str(number)
        _write(root, f"{part}/probe.py", f"import {_full_name(target)}\n")
        rules = MUST_NOT_IMPORT.get(part, ()) + not_below(part)
        if not violations(root, part, rules):
            missed.append(f"{part} importing {target}")
    assert missed == []
    assert len(_all_rules()) > 60


@pytest.mark.parametrize(("part", "source", "target"), [
    ("rules", "import asyncio\n", "asyncio"),
    ("rules", "from computehub_tui import notify\n", "computehub_tui.notify"),
    ("rules", "from .. import vault\n", "computehub_tui.vault"),
    ("rules", "def later():\n    from computehub_tui.wiring import open_session\n", "computehub_tui.wiring"),
    ("notify", "from ..engine.hub import Hub\n", "computehub_tui.engine"),
    ("notify", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from computehub_tui.engine import hub\n",
     "computehub_tui.engine"),
    ("domain", "import time\n", "time"),
    ("store", "from .. import providers\n", "computehub_tui.providers"),
    ("ui", "from computehub_tui.store.database import Store\n", "computehub_tui.store"),
])
def test_the_checker_reads_every_import_form(tmp_path: Path, part: str, source: str, target: str) -> None:
    _write(tmp_path, f"{part}/probe.py", "from __future__ import annotations\n" + source)
    found = violations(tmp_path, part, MUST_NOT_IMPORT[part])
    assert found and all(target in line for line in found), found


def test_the_checker_lets_a_part_import_itself_and_what_is_below(tmp_path: Path) -> None:
    _write(tmp_path, "engine/probe.py", "from . import events\nfrom computehub_tui.engine.hub import Hub\n"
                                        "from computehub_tui.store import Store\nfrom ..domain import models\n")
    assert violations(tmp_path, "engine", MUST_NOT_IMPORT["engine"] + not_below("engine")) == []
