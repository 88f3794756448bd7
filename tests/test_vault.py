"""The credential vault: sealing, row binding, key file safety, passphrases and env overrides."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography.exceptions import UnsupportedAlgorithm

from computehub_tui import vault as vault_module
from computehub_tui.domain.secret import Secret
from computehub_tui.vault import (
    ENV_KEYS,
    PassphraseRequired,
    Vault,
    VaultError,
    key_from_environment,
    read_passphrase_file,
)

API_KEY = "vast-KEY-7f3a9c2e51d04b8a"
PASSPHRASE = "correct horse battery staple"
WRONG_PASSPHRASE = "incorrect donkey battery stapler"


class FastVault(Vault):
    """The real vault with KDF costs cut so a test derives a key in microseconds."""

    ARGON2ID_PARAMS: ClassVar[Mapping[str, int]] = {"memory_cost": 64, "iterations": 1, "lanes": 1}
    SCRYPT_PARAMS: ClassVar[Mapping[str, int]] = {"n": 2**4, "r": 8, "p": 1}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "computehub"


@pytest.fixture
def vault(data_dir: Path) -> Vault:
    return FastVault.open(data_dir)


def key_file(data_dir: Path) -> Path:
    return data_dir / Vault.KEY_FILE_NAME


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def no_argon2id(salt: bytes, params: object) -> object:
    raise UnsupportedAlgorithm("Argon2id needs OpenSSL 3.2+")


# --- sealing -------------------------------------------------------------------------------


def test_seal_then_unseal_round_trips_and_survives_reopening(vault: Vault, data_dir: Path) -> None:
    blob = vault.seal("vast", "api_key", API_KEY)

    assert vault.unseal("vast", "api_key", blob).reveal() == API_KEY
    reopened = FastVault.open(data_dir, create=False)
    assert reopened.key_id == vault.key_id
    assert reopened.unseal("vast", "api_key", blob).reveal() == API_KEY


def test_blob_is_versioned_and_holds_no_plaintext(vault: Vault, data_dir: Path) -> None:
    blob = vault.seal("vast", "api_key", API_KEY)

    assert blob[0] == 1
    assert blob[1:5] == bytes.fromhex(vault.key_id)
    assert len(blob) == 1 + 4 + 12 + len(API_KEY) + 16
    assert API_KEY.encode() not in blob
    assert API_KEY.encode() not in key_file(data_dir).read_bytes()
    assert vault.seal("vast", "api_key", API_KEY) != blob  # fresh nonce every time


def test_unicode_plaintext_round_trips(vault: Vault) -> None:
    secret = "pässwörd-🔑-with-unicode"
    assert (
        vault.unseal(
            "email", "smtp_password", vault.seal("email", "smtp_password", secret)
        ).reveal()
        == secret
    )


@pytest.mark.parametrize(
    ("provider", "field"), [("runpod", "api_key"), ("vast", "ssh_key"), ("vas", "t:api_key")]
)
def test_blob_moved_to_another_row_does_not_open(vault: Vault, provider: str, field: str) -> None:
    blob = vault.seal("vast", "api_key", API_KEY)

    with pytest.raises((VaultError, ValueError)):
        vault.unseal(provider, field, blob)


def test_row_names_cannot_contain_the_aad_separator(vault: Vault) -> None:
    with pytest.raises(ValueError, match="without ':'"):
        vault.seal("vas", "t:api_key", API_KEY)
    with pytest.raises(ValueError):
        vault.seal("", "api_key", API_KEY)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, "blob format"),  # version byte
        (2, "another vault key"),  # key id
        (8, "integrity check"),  # nonce
        (20, "integrity check"),  # ciphertext
        (-1, "integrity check"),  # tag
    ],
)
def test_tampered_blob_is_refused(vault: Vault, index: int, expected: str) -> None:
    blob = bytearray(vault.seal("vast", "api_key", API_KEY))
    blob[index] ^= 0x01

    with pytest.raises(VaultError, match=expected):
        vault.unseal("vast", "api_key", bytes(blob))


@pytest.mark.parametrize("length", [0, 1, 20, 32])
def test_truncated_blob_is_refused(vault: Vault, length: int) -> None:
    blob = vault.seal("vast", "api_key", API_KEY)

    with pytest.raises(VaultError, match="truncated|integrity"):
        vault.unseal("vast", "api_key", blob[:length])


def test_blob_from_another_vault_names_both_key_ids(vault: Vault, tmp_path: Path) -> None:
    other = FastVault.open(tmp_path / "other")
    blob = other.seal("vast", "api_key", API_KEY)

    with pytest.raises(VaultError) as caught:
        vault.unseal("vast", "api_key", blob)
    assert other.key_id in str(caught.value) and vault.key_id in str(caught.value)


def test_unsealed_secret_repr_and_str_are_masked(vault: Vault) -> None:
    secret = vault.unseal("vast", "api_key", vault.seal("vast", "api_key", API_KEY))

    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"key": secret})):
        assert API_KEY not in shown
        assert "••••" in shown
    assert repr(secret).endswith("4b8a')")  # last four only, for recognition


def test_vault_repr_shows_no_key_material(vault: Vault, data_dir: Path) -> None:
    data_key = json.loads(key_file(data_dir).read_text())["data_key"]
    raw_key = base64.b64decode(data_key)

    shown = repr(vault) + repr(vars(vault))
    assert data_key not in shown and repr(raw_key) not in shown and raw_key.hex() not in shown


# --- the key file --------------------------------------------------------------------------


def test_key_file_is_0600_in_a_0700_directory_whatever_the_umask(data_dir: Path) -> None:
    old_umask = os.umask(0)
    try:
        FastVault.open(data_dir)
    finally:
        os.umask(old_umask)

    assert mode_of(key_file(data_dir)) == 0o600
    assert mode_of(data_dir) == 0o700
    assert sorted(p.name for p in data_dir.iterdir()) == ["vault.key"]  # no temporary left


def test_existing_open_directory_is_tightened_when_the_key_is_created(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)

    FastVault.open(data_dir)

    assert mode_of(data_dir) == 0o700


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_key_file_readable_by_others_is_refused_with_the_fix(
    vault: Vault, data_dir: Path, mode: int
) -> None:
    path = key_file(data_dir)
    path.chmod(mode)

    with pytest.raises(VaultError) as caught:
        FastVault.open(data_dir)

    message = str(caught.value)
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message
    assert "\n" not in message
    path.chmod(0o600)
    assert FastVault.open(data_dir).key_id == vault.key_id


def test_key_file_owned_by_another_user_is_refused(
    vault: Vault, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_uid = os.getuid()
    monkeypatch.setattr(vault_module.os, "getuid", lambda: real_uid + 1)

    with pytest.raises(VaultError, match=rf"owned by uid {real_uid}, not by you.*chown"):
        FastVault.open(data_dir)


def test_missing_key_file_without_create_is_an_error(data_dir: Path) -> None:
    with pytest.raises(VaultError, match="no vault key at"):
        FastVault.open(data_dir, create=False)
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda text: text[: len(text) // 2], "corrupted or truncated"),
        (lambda text: "", "corrupted or truncated"),
        (lambda text: "[1, 2, 3]", "not a computehub-tui vault key"),
        (lambda text: text.replace('"version": 1', '"version": 9'), "version 9"),
        (lambda text: text.replace('"key_id": "', '"key_id": "zz'), "key_id is malformed"),
        (
            lambda text: text.replace('"data_key": "', '"data_key": "AAAA'),
            "data_key has the wrong length",
        ),
        (lambda text: text.replace('"data_key": "', '"data_key": "*'), "data_key is malformed"),
    ],
)
def test_damaged_key_file_gives_a_clear_error(
    vault: Vault, data_dir: Path, damage: object, expected: str
) -> None:
    path = key_file(data_dir)
    path.write_text(damage(path.read_text()))  # type: ignore[operator]

    with pytest.raises(VaultError, match=expected):
        FastVault.open(data_dir)


def test_losing_a_creation_race_loads_the_winners_key(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = FastVault.open(tmp_path / "winner")
    real_prepare = vault_module.ensure_private_dir

    def other_process_creates_the_key_first(directory: Path) -> None:
        real_prepare(directory)
        shutil.copy(key_file(tmp_path / "winner"), key_file(directory))

    monkeypatch.setattr(vault_module, "ensure_private_dir", other_process_creates_the_key_first)

    loser = FastVault.open(data_dir)

    assert loser.key_id == winner.key_id
    assert (
        loser.unseal("vast", "api_key", winner.seal("vast", "api_key", API_KEY)).reveal() == API_KEY
    )


# --- passphrase ----------------------------------------------------------------------------


def test_passphrase_protected_key_file_holds_only_the_wrapped_key(data_dir: Path) -> None:
    vault = FastVault.open(data_dir, PASSPHRASE)

    document = json.loads(key_file(data_dir).read_text())
    assert vault.kdf_name == "argon2id"
    assert "data_key" not in document
    assert document["kdf"]["name"] == "argon2id"
    assert {"salt", "memory_cost", "iterations", "lanes"} <= set(document["kdf"])
    assert Vault.is_passphrase_protected(data_dir)
    assert PASSPHRASE not in key_file(data_dir).read_text()


def test_unprotected_vault_reports_no_kdf(vault: Vault, data_dir: Path, tmp_path: Path) -> None:
    assert vault.kdf_name is None
    assert not Vault.is_passphrase_protected(data_dir)
    assert not Vault.is_passphrase_protected(tmp_path / "nothing-here")


def test_passphrase_is_required_correct_one_opens_wrong_one_refused(data_dir: Path) -> None:
    blob = FastVault.open(data_dir, PASSPHRASE).seal("runpod", "api_key", API_KEY)

    with pytest.raises(PassphraseRequired):
        FastVault.open(data_dir)
    with pytest.raises(PassphraseRequired):
        FastVault.open(data_dir, "")
    with pytest.raises(VaultError, match="wrong passphrase") as caught:
        FastVault.open(data_dir, WRONG_PASSPHRASE)
    assert not isinstance(caught.value, PassphraseRequired)
    assert (
        FastVault.open(data_dir, PASSPHRASE).unseal("runpod", "api_key", blob).reveal() == API_KEY
    )


def test_passphrase_is_normalised_so_equivalent_spellings_open(data_dir: Path) -> None:
    FastVault.open(data_dir, "\ufb01sh and chips")  # "fi" ligature
    assert FastVault.open(data_dir, "fish and chips").kdf_name == "argon2id"


def test_change_passphrase_rewraps_the_same_data_key(data_dir: Path) -> None:
    vault = FastVault.open(data_dir, PASSPHRASE)
    blob = vault.seal("lambda", "api_key", API_KEY)
    salt_before = json.loads(key_file(data_dir).read_text())["kdf"]["salt"]

    vault.change_passphrase("a brand new passphrase")

    assert json.loads(key_file(data_dir).read_text())["kdf"]["salt"] != salt_before
    with pytest.raises(VaultError, match="wrong passphrase"):
        FastVault.open(data_dir, PASSPHRASE)
    reopened = FastVault.open(data_dir, "a brand new passphrase")
    assert reopened.key_id == vault.key_id
    assert reopened.unseal("lambda", "api_key", blob).reveal() == API_KEY
    assert mode_of(key_file(data_dir)) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["vault.key"]


def test_change_passphrase_can_add_and_remove_protection(vault: Vault, data_dir: Path) -> None:
    blob = vault.seal("vast", "api_key", API_KEY)

    vault.change_passphrase(PASSPHRASE)
    assert vault.kdf_name == "argon2id"
    with pytest.raises(PassphraseRequired):
        FastVault.open(data_dir)

    vault.change_passphrase(None)
    assert vault.kdf_name is None
    assert FastVault.open(data_dir).unseal("vast", "api_key", blob).reveal() == API_KEY


def test_scrypt_is_used_when_argon2id_is_unsupported(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vault_module, "_argon2id", no_argon2id)

    vault = FastVault.open(data_dir, PASSPHRASE)
    blob = vault.seal("tensordock", "api_token", API_KEY)

    assert vault.kdf_name == "scrypt"
    header = json.loads(key_file(data_dir).read_text())["kdf"]
    assert header["name"] == "scrypt" and (header["n"], header["r"], header["p"]) == (16, 8, 1)
    monkeypatch.undo()  # a later build with Argon2id still opens a scrypt-wrapped key
    reopened = FastVault.open(data_dir, PASSPHRASE)
    assert reopened.kdf_name == "scrypt"
    assert reopened.unseal("tensordock", "api_token", blob).reveal() == API_KEY
    with pytest.raises(VaultError, match="wrong passphrase"):
        FastVault.open(data_dir, WRONG_PASSPHRASE)


def test_scrypt_fallback_when_cryptography_has_no_argon2_module(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.kdf.argon2", None)

    assert FastVault.open(data_dir, PASSPHRASE).kdf_name == "scrypt"
    assert FastVault.open(data_dir, PASSPHRASE).kdf_name == "scrypt"


def test_argon2id_key_file_on_a_build_without_argon2id_says_so(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FastVault.open(data_dir, PASSPHRASE)
    monkeypatch.setattr(vault_module, "_argon2id", no_argon2id)

    with pytest.raises(VaultError, match="argon2id, which this build .* cannot compute"):
        FastVault.open(data_dir, PASSPHRASE)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("memory_cost", 2**40, "memory_cost is missing or out of range"),
        ("iterations", 0, "iterations is missing or out of range"),
        ("lanes", "4", "lanes is missing or out of range"),
        ("name", "bcrypt", "unknown KDF"),
        ("salt", "c2hvcnQ=", "salt has the wrong length"),
    ],
)
def test_hostile_or_corrupted_kdf_header_is_refused_before_deriving(
    data_dir: Path, field: str, value: object, expected: str
) -> None:
    FastVault.open(data_dir, PASSPHRASE)
    path = key_file(data_dir)
    document = json.loads(path.read_text())
    document["kdf"][field] = value
    path.write_text(json.dumps(document))

    started = time.perf_counter()
    with pytest.raises(VaultError, match=expected):
        FastVault.open(data_dir, PASSPHRASE)
    assert time.perf_counter() - started < 1.0


def test_default_kdf_parameters_round_trip(data_dir: Path) -> None:
    vault = Vault.open(data_dir, PASSPHRASE)
    blob = vault.seal("vast", "api_key", API_KEY)

    header = json.loads(key_file(data_dir).read_text())["kdf"]
    assert header["name"] == "argon2id"
    assert (header["memory_cost"], header["iterations"], header["lanes"]) == (65536, 3, 4)
    assert len(base64.b64decode(header["salt"])) == 16
    assert Vault.open(data_dir, PASSPHRASE).unseal("vast", "api_key", blob).reveal() == API_KEY


# --- environment and passphrase file -------------------------------------------------------


def test_key_from_environment_reads_each_providers_variable() -> None:
    environ = {
        variable: f"  key-for-{provider}-0123456789\n" for provider, variable in ENV_KEYS.items()
    }

    for provider in ENV_KEYS:
        secret = key_from_environment(provider, environ)
        assert isinstance(secret, Secret)
        assert secret.reveal() == f"key-for-{provider}-0123456789"
    assert ENV_KEYS["tensordock"] == "TENSORDOCK_API_TOKEN"


def test_key_from_environment_ignores_unset_blank_and_unknown() -> None:
    assert key_from_environment("vast", {}) is None
    assert key_from_environment("vast", {"VAST_API_KEY": "   "}) is None
    assert key_from_environment("demo", {"VAST_API_KEY": "abc123456789"}) is None


def test_key_from_environment_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-process-env-key-42")

    secret = key_from_environment("runpod")
    assert secret is not None and secret.reveal() == "rp-process-env-key-42"
    assert key_from_environment("vast") is None


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_passphrase_file_strips_only_the_trailing_newline(tmp_path: Path) -> None:
    path = write_private(tmp_path / "pass", "  spaced passphrase \n")

    assert read_passphrase_file({"COMPUTEHUB_PASSPHRASE_FILE": str(path)}) == "  spaced passphrase "
    write_private(path, "windows line end\r\n")
    assert read_passphrase_file({"COMPUTEHUB_PASSPHRASE_FILE": str(path)}) == "windows line end"


def test_passphrase_file_from_the_process_environment_unlocks_the_vault(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = FastVault.open(data_dir, PASSPHRASE).seal("vast", "api_key", API_KEY)
    monkeypatch.setenv(
        "COMPUTEHUB_PASSPHRASE_FILE", str(write_private(tmp_path / "pass", PASSPHRASE + "\n"))
    )

    passphrase = read_passphrase_file()

    assert FastVault.open(data_dir, passphrase).unseal("vast", "api_key", blob).reveal() == API_KEY


def test_passphrase_file_unset_gives_none() -> None:
    assert read_passphrase_file({}) is None
    assert read_passphrase_file({"COMPUTEHUB_PASSPHRASE_FILE": ""}) is None


def test_passphrase_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write_private(tmp_path / "pass", PASSPHRASE, mode=0o644)

    with pytest.raises(VaultError) as caught:
        read_passphrase_file({"COMPUTEHUB_PASSPHRASE_FILE": str(path)})
    assert f"chmod 600 {path}" in str(caught.value)
    assert PASSPHRASE not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"), [(None, "cannot read"), ("\n", "is empty"), (b"\xff\xfe", "UTF-8")]
)
def test_passphrase_file_problems_are_clear(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "pass"
    if isinstance(content, bytes):
        path.write_bytes(content)
        path.chmod(0o600)
    elif content is not None:
        write_private(path, content)

    with pytest.raises(VaultError, match=expected) as caught:
        read_passphrase_file({"COMPUTEHUB_PASSPHRASE_FILE": str(path)})
    assert str(path) in str(caught.value)


# --- no secret in any error ----------------------------------------------------------------


def vault_errors(data_dir: Path, tmp_path: Path) -> Iterator[VaultError]:
    """Provoke every kind of VaultError while secrets are in play."""
    vault = FastVault.open(data_dir, PASSPHRASE)
    blob = vault.seal("vast", "api_key", API_KEY)
    attempts = [
        lambda: FastVault.open(data_dir, WRONG_PASSPHRASE),
        lambda: FastVault.open(data_dir),
        lambda: vault.unseal("runpod", "api_key", blob),
        lambda: vault.unseal("vast", "api_key", blob[:-1] + bytes([blob[-1] ^ 1])),
        lambda: vault.unseal("vast", "api_key", blob[:10]),
        lambda: FastVault.open(tmp_path / "other").unseal("vast", "api_key", blob),
        lambda: read_passphrase_file(
            {"COMPUTEHUB_PASSPHRASE_FILE": str(write_private(tmp_path / "p", PASSPHRASE, 0o640))}
        ),
    ]
    for attempt in attempts:
        with pytest.raises(VaultError) as caught:
            attempt()
        yield caught.value
    key_file(data_dir).chmod(0o644)
    with pytest.raises(VaultError) as caught:
        FastVault.open(data_dir, PASSPHRASE)
    yield caught.value


def test_no_secret_appears_in_any_vault_error_or_its_traceback(
    data_dir: Path, tmp_path: Path
) -> None:
    secrets = (API_KEY, PASSPHRASE, WRONG_PASSPHRASE)
    errors = list(vault_errors(data_dir, tmp_path))

    assert len(errors) == 8
    for error in errors:
        rendered = "".join(traceback.format_exception(error))
        assert "\n" not in str(error)
        for secret in secrets:
            assert secret not in rendered, f"{secret!r} leaked in {type(error).__name__}: {error}"


def test_wrong_passphrase_traceback_locals_inside_the_vault_are_masked(data_dir: Path) -> None:
    FastVault.open(data_dir, PASSPHRASE)

    with pytest.raises(VaultError) as caught:
        FastVault.open(data_dir, WRONG_PASSPHRASE)

    frames = traceback.walk_tb(caught.value.__traceback__)
    vault_frames = [
        frame for frame, _ in frames if frame.f_code.co_filename == vault_module.__file__
    ]
    assert vault_frames
    for frame in vault_frames:
        shown = repr(frame.f_locals)
        assert WRONG_PASSPHRASE not in shown
        assert WRONG_PASSPHRASE.encode() not in shown.encode("unicode_escape")
        assert repr(WRONG_PASSPHRASE.encode())[2:-1] not in shown
