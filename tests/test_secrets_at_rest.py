"""Keys at rest: no byte of the data dir holds a key in any common encoding; a 0600 key file."""

from __future__ import annotations

import base64
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.cli import CliRun, Invocation, base_environment, run_all, run_cli
from fakes.vast import FakeVast

VAST_KEY = "vastSECRET-7e3f19a2c4b85d60-qz"
TENSORDOCK_KEY = "tdSECRET_5c0d8b2e9f1a7364_kw"
KEY_FILE = "vault.key"


def encodings(secret: str) -> dict[str, bytes]:
    """The key as it could sit in a file: raw, hex, and base64 at every byte alignment."""
    raw = secret.encode()
    forms = {
        "raw": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "utf-16": secret.encode("utf-16-le"),
    }
    for offset in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * offset + raw)
            # Characters touched by the padding bytes or the unknown next byte are left out.
            forms[f"{name}@{offset}"] = encoded[4 if offset else 0 : -4]
    return forms


def findings(data_dir: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            found += [
                f"{path.name}: {secret[:6]}… as {form}"
                for secret in secrets
                for form, pattern in encodings(secret).items()
                if pattern in content
            ]
    return found


@pytest.fixture
def fake_vast() -> Iterator[FakeVast]:
    with FakeVast(VAST_KEY) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli(data_dir: Path, fake: FakeVast, *args: str, stdin: str = "") -> CliRun:
    env = base_environment(fake.endpoint_env())
    return run_cli((*args, "--data-dir", str(data_dir)), env, stdin)


def test_the_encodings_would_catch_a_key_stored_in_base64(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky"
    sneaky.mkdir()
    (sneaky / "a.json").write_bytes(
        b'{"k": "' + base64.b64encode(b"xy" + VAST_KEY.encode()) + b'"}'
    )
    (sneaky / "b.bin").write_bytes(b"\x01" + VAST_KEY.encode().hex().encode())
    assert {line.split(":")[0] for line in findings(sneaky, (VAST_KEY,))} == {"a.json", "b.bin"}


def test_stored_keys_never_appear_in_any_file_of_the_data_dir(
    data_dir: Path, fake_vast: FakeVast
) -> None:
    first = cli(data_dir, fake_vast, "keys", "set", "vast", stdin=VAST_KEY + "\n")
    assert first.code == 0, first.describe()
    # An open read transaction keeps SQLite from checkpointing and deleting its -wal and -shm
    # files, so the pages the next commands write stay there for us to read.
    watcher = sqlite3.connect(data_dir / "computehub.db", isolation_level=None)
    try:
        watcher.execute("BEGIN")
        watcher.execute("SELECT count(*) FROM sqlite_master").fetchone()
        runs = [
            cli(data_dir, fake_vast, "keys", "set", "tensordock", stdin=TENSORDOCK_KEY + "\n"),
            cli(data_dir, fake_vast, "instances", "--json", "--provider", "vast"),
            cli(data_dir, fake_vast, "keys", "list"),
        ]
        assert all(run.code == 0 for run in runs), [run.describe() for run in runs]
        names = {path.name for path in data_dir.iterdir()}
        assert {"computehub.db", "computehub.db-wal", "computehub.db-shm", KEY_FILE} <= names, names
        assert (data_dir / "computehub.db-wal").stat().st_size > 0
        assert findings(data_dir, (VAST_KEY, TENSORDOCK_KEY)) == []
    finally:
        watcher.close()
    assert findings(data_dir, (VAST_KEY, TENSORDOCK_KEY)) == []

    assert {r.headers["authorization"] for r in fake_vast.server.requests} == {f"Bearer {VAST_KEY}"}
    assert "vault" in runs[2].stdout and "••••0-qz" in runs[2].stdout
    for run in (first, *runs):
        assert (
            VAST_KEY not in run.stdout + run.stderr
            and TENSORDOCK_KEY not in run.stdout + run.stderr
        )
    assert stat.S_IMODE((data_dir / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_group_readable_key_file_stops_the_cli_with_the_chmod_fix(
    data_dir: Path, fake_vast: FakeVast
) -> None:
    assert cli(data_dir, fake_vast, "keys", "set", "vast", stdin=VAST_KEY + "\n").code == 0
    key_file = data_dir / KEY_FILE
    key_file.chmod(0o640)
    env = base_environment(fake_vast.endpoint_env())

    for refused in run_all(
        [
            Invocation((*command, "--data-dir", str(data_dir)), env)
            for command in (("keys", "list"), ("instances", "--json"))
        ]
    ):
        assert refused.code == 1, refused.describe()
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.describe()
        assert f"chmod 600 {key_file}" in lines[0] and "0640" in lines[0]
        assert refused.stdout == ""
    assert fake_vast.server.requests == [], "nothing is sent with a key read from an unsafe file"
