"""Where ssh keeps its shared connections: a private folder of ours, short enough for a unix socket path."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from computehub_tui.domain.models import SshEndpoint
from computehub_tui.engine.remote import CONTROL_DIR_LIMIT, control_dir, ssh_argv


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short folder standing in for $XDG_RUNTIME_DIR (pytest's tmp_path is too long for a socket path)."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def test_the_runtime_dir_is_used_and_made_private(runtime: Path, tmp_path: Path) -> None:
    chosen = control_dir({"XDG_RUNTIME_DIR": str(runtime)}, tmp_path / "data")
    assert chosen == runtime / "computehub-tui"
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
    assert len(f"{chosen}/cm-" + "0" * 40 + ".XXXXXXXXXXXXXXXX") < 104


def test_a_planted_symlink_is_refused_and_a_long_path_skipped(runtime: Path, tmp_path: Path) -> None:
    (runtime / "computehub-tui").symlink_to(tmp_path)
    long_data = tmp_path / ("d" * CONTROL_DIR_LIMIT)
    chosen = control_dir({"XDG_RUNTIME_DIR": str(runtime)}, long_data)
    assert chosen == Path("/tmp") / f"computehub-ssh-{os.getuid()}"


def test_without_a_control_dir_ssh_makes_its_own_connection() -> None:
    argv = ssh_argv(("tsh", "ssh"), SshEndpoint("192.0.2.7", 2222, "root"), ("nvidia-smi", "-L"), user="me")
    assert argv[:2] == ["tsh", "ssh"] and not any(word.startswith("Control") for word in argv)
    assert argv[-4:] == ["-p", "2222", "me@192.0.2.7", "nvidia-smi -L"]
