"""Data dir 0700, database 0600, and read-only or full folders as one readable line, never a traceback."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.engine.keys import DATABASE_NAME, KeyService
from computehub_tui.store import Store, StoreError
from computehub_tui.vault import Vault, VaultError
from computehub_tui.wiring import open_session

KEY = "vk_live_aaaaaaaaaaaaaaaa1234"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_with_only_environment_keys_the_data_dir_and_database_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "computehub"
    opened = await open_session(Config(), data_dir, environ={"VAST_API_KEY": KEY})
    try:
        assert not opened.demo
        await opened.store.audit(1.0, "user", "stop", "vast:1")  # a write, so -wal and -shm exist
        assert mode(data_dir) == 0o700
        assert {path.name: mode(path) for path in data_dir.iterdir()} == {
            DATABASE_NAME: 0o600, f"{DATABASE_NAME}-wal": 0o600, f"{DATABASE_NAME}-shm": 0o600}
    finally:
        await opened.aclose()


async def test_an_existing_data_dir_of_ours_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "computehub"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    async with await Store.open(data_dir / DATABASE_NAME):
        pass
    (data_dir / DATABASE_NAME).chmod(0o644)
    opened = await open_session(Config(), data_dir, environ={"VAST_API_KEY": KEY})
    await opened.aclose()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / DATABASE_NAME) == 0o600


def refuse_opening_under(monkeypatch: pytest.MonkeyPatch, folder: Path, error: OSError) -> None:
    """Make creating files in ``folder`` fail like a read-only or full folder would. Simulated: the
    tests run as root, which writes into read-only folders anyway."""
    real_open = os.open

    def refusing_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise error
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)


@pytest.mark.parametrize(("error", "reason"), [
    (PermissionError(errno.EACCES, "Permission denied"),
     "permission denied; make {folder} writable by you, or choose another folder with --data-dir"),
    (OSError(errno.EROFS, "Read-only file system"),
     "the file system is read-only; choose a writable folder with --data-dir"),
])
async def test_keys_set_in_a_read_only_data_dir_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, reason: str
) -> None:
    refuse_opening_under(monkeypatch, tmp_path, error)
    with pytest.raises(VaultError) as caught:
        await KeyService(tmp_path, ManualClock()).bind("vast", KEY)
    assert str(caught.value) == f"cannot write {tmp_path / Vault.KEY_FILE_NAME}: {reason.format(folder=tmp_path)}"
    assert KEY not in str(caught.value)


async def test_keys_set_on_a_full_disk_is_one_line_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)  # simulated: no tiny filesystem to fill here
    with pytest.raises(VaultError) as caught:
        await KeyService(tmp_path, ManualClock()).bind("vast", KEY)
    assert str(caught.value) == (
        f"cannot write {tmp_path / Vault.KEY_FILE_NAME}: no space left on the device; free some disk space")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


async def test_a_database_that_refuses_writes_is_one_line_with_the_fix(tmp_path: Path) -> None:
    async with KeyService(tmp_path, ManualClock()) as keys:
        await keys.bind("vast", KEY)
    async with await Store.open(tmp_path / DATABASE_NAME) as store:
        await store._connection().execute("PRAGMA query_only=ON")  # SQLite's own "readonly database"
        with pytest.raises(StoreError) as caught:
            await store.put_secret("runpod", "api_key", b"cipher", 1.0)
    assert caught.value.kind == "read-only"
    assert str(caught.value) == (f"database {tmp_path / DATABASE_NAME} is read-only, so could not save the "
                                 "runpod api_key; make it and its folder writable by you")


async def test_a_data_dir_that_cannot_exist_is_one_line(tmp_path: Path) -> None:
    # Real, not simulated: a regular file where a folder should be stops root too.
    (tmp_path / "file").write_text("")
    data_dir = tmp_path / "file" / "computehub"
    with pytest.raises(VaultError) as caught:
        await KeyService(data_dir, ManualClock()).bind("vast", KEY)
    assert str(caught.value) == f"cannot create the folder {data_dir}: Not a directory"
    with pytest.raises(StoreError) as store_error:
        await KeyService(data_dir, ManualClock()).bindings()
    assert str(store_error.value) == f"cannot create the folder {data_dir}: Not a directory"
    with pytest.raises(StoreError) as session_error:
        await open_session(Config(), data_dir, demo=True)
    assert str(session_error.value) == f"cannot create the data folder {data_dir}: Not a directory"
