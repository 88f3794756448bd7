"""Owner-only folders (0700) and files (0600) for the data dir, the databases and the vault key."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

_OS_ERROR_FIXES: dict[int, str] = {
    errno.EACCES: "permission denied; make {folder} writable by you, or choose another folder with --data-dir",
    errno.EPERM: "not permitted; make {folder} writable by you, or choose another folder with --data-dir",
    errno.EROFS: "the file system is read-only; choose a writable folder with --data-dir",
    errno.ENOSPC: "no space left on the device; free some disk space",
    errno.EDQUOT: "disk quota exceeded; free some space or raise the quota",
}


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` as 0700 (with its parents), or tighten it to 0700 if it is ours and looser.

    A folder owned by someone else is left alone: it is not ours to change. Raises OSError.
    """
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(directory, PRIVATE_DIR_MODE)


def tighten_private_file(path: Path) -> None:
    """Make an existing file of ours 0600 if others can read it; a missing file is fine. Raises OSError."""
    try:
        _tighten(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def publish_exclusively(temporary: Path, path: Path) -> bool:
    """Give the finished file ``temporary`` the name ``path`` unless ``path`` exists; False if it did.

    A hard link never overwrites, so two processes creating the same file at once cannot end up
    with different contents (the loser uses the winner's). Raises OSError.
    """
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError:
        if path.exists():
            return False
        os.replace(temporary, path)  # a filesystem without hard links
    return True


def describe_os_error(error: OSError, path: Path | str, doing: str) -> str:
    """One line naming ``path``, what went wrong and how to fix it, e.g. for EACCES, EROFS or ENOSPC."""
    folder = Path(path).parent
    fix = _OS_ERROR_FIXES.get(error.errno or 0)
    reason = fix.format(folder=folder) if fix else (error.strerror or type(error).__name__)
    return f"cannot {doing} {path}: {reason}"


def _tighten(path: Path, mode: int) -> None:
    if os.name != "posix":
        return
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)
