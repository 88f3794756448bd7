"""Credential vault: AES-256-GCM sealing under a data key in a 0600 file, optional passphrase."""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from computehub_tui.domain.secret import Secret, register_secret
from computehub_tui.private_files import PRIVATE_FILE_MODE, describe_os_error, ensure_private_dir, publish_exclusively

ENV_KEYS: dict[str, str] = {
    "vast": "VAST_API_KEY",
    "runpod": "RUNPOD_API_KEY",
    "lambda": "LAMBDA_API_KEY",
    "tensordock": "TENSORDOCK_API_TOKEN",
}
PASSPHRASE_FILE_ENV = "COMPUTEHUB_PASSPHRASE_FILE"

BLOB_VERSION = 1
KEY_FILE_FORMAT = "computehub-tui vault key"
KEY_FILE_VERSION = 1
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_DATA_KEY_BYTES = 32
_SALT_BYTES = 16
_BLOB_HEADER_BYTES = 1 + _KEY_ID_BYTES + _NONCE_BYTES
_WRAPPED_KEY_BYTES = _NONCE_BYTES + _DATA_KEY_BYTES + _TAG_BYTES
_MAX_KEY_FILE_BYTES = 64 * 1024
_RESTORE_HINT = "restore it from a backup, or move it away and enter the API keys again"
_KEY_FILE_NOTE = (
    "Keep this file private (chmod 600). It unlocks the API keys stored in computehub-tui's "
    "database; if it is lost, those keys must be entered again."
)


class VaultError(Exception):
    """A vault problem the user can fix; ``str(error)`` is one line and never holds a secret."""


class PassphraseRequired(VaultError):
    """The key file is passphrase-protected and no passphrase was given."""


class _KeyBytes:
    """Raw key material whose repr is masked, so a traceback that shows locals cannot leak it."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_KeyBytes(••••)"


@dataclass(frozen=True)
class _KdfSpec:
    """Which KDF wrapped the data key, with the parameters and salt needed to derive it again."""

    name: str
    salt: bytes
    params: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "salt": _b64(self.salt), **self.params}


def key_from_environment(provider: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The provider's API key from its environment variable (which overrides the vault), if set."""
    variable = ENV_KEYS.get(provider)
    if variable is None:
        return None
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    return Secret(value) if value else None


def read_passphrase_file(environ: Mapping[str, str] | None = None) -> str | None:
    """The passphrase stored in the file named by COMPUTEHUB_PASSPHRASE_FILE, if that is set."""
    raw_path = (os.environ if environ is None else environ).get(PASSPHRASE_FILE_ENV, "").strip()
    if not raw_path:
        return None
    path = Path(raw_path).expanduser()
    data = read_private_file(path, f"{PASSPHRASE_FILE_ENV} ({path})")
    try:
        passphrase = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise VaultError(f"{path} (from {PASSPHRASE_FILE_ENV}) is not UTF-8 text") from None
    if not passphrase:
        raise VaultError(f"{path} (from {PASSPHRASE_FILE_ENV}) is empty")
    register_secret(passphrase)
    return passphrase


class Vault:
    """Seals and unseals credentials with one random data key kept in ``<data_dir>/vault.key``.

    Each sealed blob is bound to its ``(provider, field)`` through AES-GCM associated data, so a
    blob copied to another row fails to open. The key file protects the database against leaks
    (backups, shared bug reports); it does not protect against malware running as the same user.
    Key derivation takes a fraction of a second: call ``open``/``change_passphrase`` off the event
    loop (``asyncio.to_thread``).
    """

    KEY_FILE_NAME = "vault.key"
    ARGON2ID_PARAMS: ClassVar[Mapping[str, int]] = {
        "memory_cost": 64 * 1024,
        "iterations": 3,
        "lanes": 4,
    }
    """memory_cost is in KiB (64 MiB); tests override these with cheaper values."""
    SCRYPT_PARAMS: ClassVar[Mapping[str, int]] = {"n": 2**17, "r": 8, "p": 1}
    """Used when this build of cryptography/OpenSSL cannot compute Argon2id."""

    def __init__(
        self, path: Path, key_id: bytes, data_key: _KeyBytes, kdf: _KdfSpec | None
    ) -> None:
        self._path = path
        self._key_id = key_id
        self._data_key = data_key
        self._aead = AESGCM(data_key.value)
        self._kdf = kdf

    def __repr__(self) -> str:
        return f"Vault({str(self._path)!r}, key_id={self.key_id!r}, kdf={self.kdf_name!r})"

    @classmethod
    def open(cls, data_dir: Path, passphrase: str | None = None, *, create: bool = True) -> Vault:
        """Load the vault key from ``data_dir``, creating it (wrapped if a passphrase is given).

        An empty passphrase counts as none. A passphrase given for a key file that has none is
        ignored (``kdf_name`` is then None, so the caller can say the vault is unprotected).
        """
        path = Path(data_dir) / cls.KEY_FILE_NAME
        material = _passphrase_material(passphrase)
        passphrase = None  # only the masked copy stays in this frame's locals
        if not path.exists():
            if not create:
                raise VaultError(f"no vault key at {path}")
            created = cls._create(path, material)
            if created is not None:
                return created
        return cls._load(path, material)

    @classmethod
    def is_passphrase_protected(cls, data_dir: Path) -> bool:
        """True if ``<data_dir>/vault.key`` exists and needs a passphrase to open."""
        path = Path(data_dir) / cls.KEY_FILE_NAME
        if not path.exists():
            return False
        return _parse_key_file(path, read_private_file(path, str(path))).get("kdf") is not None

    @property
    def kdf_name(self) -> str | None:
        """``argon2id`` or ``scrypt`` when a passphrase protects the key file, else None."""
        return self._kdf.name if self._kdf else None

    @property
    def key_id(self) -> str:
        return self._key_id.hex()

    @property
    def path(self) -> Path:
        return self._path

    def seal(self, provider: str, field: str, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` for the row ``(provider, field)``; the blob is safe to store."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _row_aad(provider, field))
        return bytes([BLOB_VERSION]) + self._key_id + nonce + sealed

    def unseal(self, provider: str, field: str, blob: bytes) -> Secret:
        """Decrypt a blob made by ``seal`` for the same ``(provider, field)``."""
        blob = bytes(blob)
        what = f"the stored {field} for {provider}"
        if len(blob) < _BLOB_HEADER_BYTES + _TAG_BYTES:
            raise VaultError(f"{what} is truncated or not a vault blob; enter it again")
        if blob[0] != BLOB_VERSION:
            raise VaultError(f"{what} uses blob format {blob[0]}, which this version cannot read")
        key_id = blob[1 : 1 + _KEY_ID_BYTES]
        if key_id != self._key_id:
            raise VaultError(
                f"{what} was sealed with another vault key (key id {key_id.hex()}, this vault "
                f"has {self.key_id}); enter it again or restore the matching {self.KEY_FILE_NAME}"
            )
        nonce, sealed = blob[1 + _KEY_ID_BYTES : _BLOB_HEADER_BYTES], blob[_BLOB_HEADER_BYTES:]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, _row_aad(provider, field))
        except InvalidTag:
            raise VaultError(
                f"{what} failed its integrity check (tampered with, corrupted, or copied from "
                "another entry); enter it again"
            ) from None
        return Secret(plaintext.decode("utf-8"))

    def change_passphrase(self, new_passphrase: str | None) -> None:
        """Rewrap the data key under a new passphrase (None removes it); sealed blobs stay valid."""
        material = _passphrase_material(new_passphrase)
        new_passphrase = None  # only the masked copy stays in this frame's locals
        document, kdf = self._key_document(self._key_id, self._data_key, material)
        _write_atomically(self._path, document, replace=True)
        self._kdf = kdf

    @classmethod
    def _create(cls, path: Path, passphrase: _KeyBytes | None) -> Vault | None:
        """Write a fresh key file; None if another process created one first (then load that)."""
        try:
            ensure_private_dir(path.parent)
        except OSError as error:
            raise VaultError(describe_os_error(error, path.parent, "create the folder")) from None
        key_id = os.urandom(_KEY_ID_BYTES)
        data_key = _KeyBytes(AESGCM.generate_key(bit_length=256))
        document, kdf = cls._key_document(key_id, data_key, passphrase)
        if not _write_atomically(path, document, replace=False):
            return None
        return cls(path, key_id, data_key, kdf)

    @classmethod
    def _load(cls, path: Path, passphrase: _KeyBytes | None) -> Vault:
        document = _parse_key_file(path, read_private_file(path, str(path)))
        key_id = _decode_field(path, document, "key_id", "hex", _KEY_ID_BYTES)
        if document.get("kdf") is None:
            data_key = _KeyBytes(_decode_field(path, document, "data_key", "b64", _DATA_KEY_BYTES))
            return cls(path, key_id, data_key, None)
        if passphrase is None:
            raise PassphraseRequired(
                f"{path} is protected by a passphrase; enter it, or point {PASSPHRASE_FILE_ENV} "
                "at a 0600 file holding it"
            )
        kdf = _kdf_from_json(path, document["kdf"])
        wrapped = _decode_field(path, document, "wrapped_key", "b64", _WRAPPED_KEY_BYTES)
        kek = cls._derive(kdf, passphrase, path)
        nonce, sealed_key = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        try:
            data_key = _KeyBytes(AESGCM(kek.value).decrypt(nonce, sealed_key, _wrap_aad(key_id)))
        except InvalidTag:
            raise VaultError(f"wrong passphrase for {path}") from None
        return cls(path, key_id, data_key, kdf)

    @classmethod
    def _key_document(
        cls, key_id: bytes, data_key: _KeyBytes, passphrase: _KeyBytes | None
    ) -> tuple[dict[str, Any], _KdfSpec | None]:
        document: dict[str, Any] = {
            "format": KEY_FILE_FORMAT,
            "version": KEY_FILE_VERSION,
            "note": _KEY_FILE_NOTE,
            "key_id": key_id.hex(),
        }
        if passphrase is None:
            document["kdf"] = None
            document["data_key"] = _b64(data_key.value)
            return document, None
        kdf, kek = cls._new_kek(passphrase)
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = nonce + AESGCM(kek.value).encrypt(nonce, data_key.value, _wrap_aad(key_id))
        document["kdf"] = kdf.to_json()
        document["wrapped_key"] = _b64(wrapped)
        return document, kdf

    @classmethod
    def _new_kek(cls, passphrase: _KeyBytes) -> tuple[_KdfSpec, _KeyBytes]:
        """A key-encryption key from a fresh salt: Argon2id, or Scrypt where Argon2id is missing."""
        salt = os.urandom(_SALT_BYTES)
        try:
            kdf = _KdfSpec("argon2id", salt, dict(cls.ARGON2ID_PARAMS))
            return kdf, _derive_kek(kdf, passphrase)
        except UnsupportedAlgorithm:
            kdf = _KdfSpec("scrypt", salt, dict(cls.SCRYPT_PARAMS))
            return kdf, _derive_kek(kdf, passphrase)

    @staticmethod
    def _derive(kdf: _KdfSpec, passphrase: _KeyBytes, path: Path) -> _KeyBytes:
        try:
            return _derive_kek(kdf, passphrase)
        except UnsupportedAlgorithm:
            raise VaultError(
                f"{path} was protected with {kdf.name}, which this build of cryptography/OpenSSL "
                "cannot compute; upgrade the cryptography package"
            ) from None


def _derive_kek(kdf: _KdfSpec, passphrase: _KeyBytes) -> _KeyBytes:
    factory = _argon2id if kdf.name == "argon2id" else _scrypt
    return _KeyBytes(factory(kdf.salt, kdf.params).derive(passphrase.value))


def _passphrase_material(passphrase: str | None) -> _KeyBytes | None:
    """The passphrase as masked bytes (None when empty), registered with the log redactor."""
    if not passphrase:
        return None
    register_secret(passphrase)
    # NFKC so the same passphrase typed on different keyboards/terminals derives the same key.
    return _KeyBytes(unicodedata.normalize("NFKC", passphrase).encode("utf-8"))


def _argon2id(salt: bytes, params: Mapping[str, int]) -> Any:
    """An Argon2id KDF; raises UnsupportedAlgorithm where the library or OpenSSL lacks it."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    except ImportError:  # cryptography < 44
        raise UnsupportedAlgorithm("Argon2id is not available in this cryptography") from None
    return Argon2id(
        salt=salt,
        length=_DATA_KEY_BYTES,
        iterations=params["iterations"],
        lanes=params["lanes"],
        memory_cost=params["memory_cost"],
    )


def _scrypt(salt: bytes, params: Mapping[str, int]) -> Scrypt:
    return Scrypt(salt=salt, length=_DATA_KEY_BYTES, n=params["n"], r=params["r"], p=params["p"])


# Bounds on stored KDF parameters: a corrupted or hostile header must not make us allocate
# gigabytes or spin for minutes before we can say "corrupted".
_KDF_BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "argon2id": {"memory_cost": (8, 4 * 1024 * 1024), "iterations": (1, 64), "lanes": (1, 64)},
    "scrypt": {"n": (2, 2**22), "r": (1, 32), "p": (1, 16)},
}


def _kdf_from_json(path: Path, raw: Any) -> _KdfSpec:
    if not isinstance(raw, dict) or raw.get("name") not in _KDF_BOUNDS:
        raise VaultError(f"{path} names an unknown KDF (corrupted, or from a newer version)")
    name = str(raw["name"])
    params: dict[str, int] = {}
    for param, (low, high) in _KDF_BOUNDS[name].items():
        value = raw.get(param)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise VaultError(f"{path} is corrupted ({name} {param} is missing or out of range)")
        params[param] = value
    if name == "scrypt" and params["n"] & (params["n"] - 1):
        raise VaultError(f"{path} is corrupted (scrypt n is not a power of two)")
    if name == "argon2id" and params["memory_cost"] < 8 * params["lanes"]:
        raise VaultError(f"{path} is corrupted (argon2id memory_cost is below 8 x lanes)")
    salt = _decode_field(path, raw, "salt", "b64", _SALT_BYTES)
    return _KdfSpec(name, salt, params)


def _parse_key_file(path: Path, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise VaultError(f"{path} is corrupted or truncated (not JSON); {_RESTORE_HINT}") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise VaultError(f"{path} is not a computehub-tui vault key; {_RESTORE_HINT}")
    if document.get("version") != KEY_FILE_VERSION:
        raise VaultError(
            f"{path} has key file version {document.get('version')!r}, which this version "
            "cannot read"
        )
    return document


def _decode_field(
    path: Path, document: Mapping[str, Any], name: str, encoding: str, size: int
) -> bytes:
    raw = document.get(name)
    malformed = VaultError(f"{path} is corrupted ({name} is malformed); {_RESTORE_HINT}")
    if not isinstance(raw, str):
        raise malformed
    try:
        value = bytes.fromhex(raw) if encoding == "hex" else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise malformed from None
    if len(value) != size:
        raise VaultError(f"{path} is corrupted ({name} has the wrong length); {_RESTORE_HINT}")
    return value


def read_private_file(path: Path, label: str) -> bytes:
    """Read a small file, refusing it (as ssh does) if other users can access it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise VaultError(f"cannot read {label}: {error.strerror or type(error).__name__}") from None
    try:
        info = os.fstat(fd)
        _check_private(path, info)
        chunks = []
        remaining = _MAX_KEY_FILE_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise VaultError(f"{label} is too large to be a key or passphrase file")
    return data


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise VaultError(f"{path} is not a regular file")
    if os.name != "posix":
        return
    if info.st_uid != os.getuid():
        raise VaultError(
            f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}); "
            f"fix it with: chown $(id -u) {path} && chmod 600 {path}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise VaultError(
            f"{path} is accessible by other users (mode {mode:04o}); fix it with: chmod 600 {path}"
        )


def _write_atomically(path: Path, document: Mapping[str, Any], *, replace: bool) -> bool:
    """Write a 0600 file via a temporary file; with replace=False, False if ``path`` exists.

    A read-only or full folder is a VaultError naming the file and the fix.
    """
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temporary, flags, PRIVATE_FILE_MODE)
        try:
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if replace:
                os.replace(temporary, path)
                published = True
            else:
                published = publish_exclusively(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise VaultError(describe_os_error(error, path, "write")) from None
    _fsync_directory(path.parent)
    return published


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _row_aad(provider: str, field: str) -> bytes:
    for part in (provider, field):
        if not part or ":" in part:
            raise ValueError(f"vault provider/field must be non-empty, without ':' ({part!r})")
    return f"computehub:v1:secrets:{provider}:{field}".encode()


def _wrap_aad(key_id: bytes) -> bytes:
    return f"computehub:v1:vault-key:{key_id.hex()}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
