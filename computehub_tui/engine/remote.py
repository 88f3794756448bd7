"""Running the user's ssh as a child process: the argument list, a hard time limit, and readable failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from computehub_tui.domain.models import SshEndpoint
from computehub_tui.domain.text import clean_text
from computehub_tui.private_files import ensure_private_dir

SAMPLE_TIMEOUT_S = 20.0
"""A sample slower than this is abandoned and its ssh killed."""
OUTPUT_LIMIT = 256 * 1024
"""More than any real nvidia-smi answer; a host that floods us is cut off here."""
CONTROL_DIR_LIMIT = 40
"""A unix socket path holds ~104 bytes; ``cm-%C`` adds 44 and ssh a temporary ".XXXXXXXXXXXXXXXX" suffix."""
MESSAGE_LIMIT = 200


class RemoteFailed(Exception):
    """The remote command could not give an answer; ``str(error)`` is one readable line."""


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    returncode: int
    stdout: str
    stderr: str


def ssh_argv(command: Sequence[str], endpoint: SshEndpoint, remote: Sequence[str], *, user: str = "",
             identity: str = "", control_dir: Path | None = None) -> list[str]:
    """``command`` with the usual ssh arguments: never interactive, one reused connection per host."""
    options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "StrictHostKeyChecking=accept-new"]
    if control_dir is not None:
        options += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f"ControlPath={control_dir}/cm-%C"]
    identity_option = ["-i", str(Path(identity).expanduser())] if identity else []
    return [*command, *options, "-p", str(endpoint.port), *identity_option, f"{user or endpoint.user}@{endpoint.host}",
            shlex.join(remote)]


def control_dir(environ: Mapping[str, str], data_dir: Path) -> Path | None:
    """A private (0700, ours) folder for ssh's connection sockets, short enough for a socket path; None if
    there is none (then each sample makes its own connection)."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    candidates = [Path(runtime) / "computehub-tui"] if runtime else []
    candidates += [data_dir / "ssh", Path("/tmp") / f"computehub-ssh-{os.getuid()}"]
    for candidate in candidates:
        if len(str(candidate)) > CONTROL_DIR_LIMIT:
            continue
        try:
            ensure_private_dir(candidate)
            info = candidate.lstat()
        except OSError:
            continue
        # Somebody else's folder (e.g. planted in /tmp) must never hold our sockets.
        if info.st_uid == os.getuid() and (info.st_mode & 0o777) == 0o700 and candidate.is_dir():
            return candidate
    return None


async def run_remote(argv: Sequence[str], timeout_s: float = SAMPLE_TIMEOUT_S) -> RemoteAnswer:
    """Run ``argv`` (no shell, no stdin) and collect its output; past ``timeout_s`` it is killed and reaped.

    Raises RemoteFailed when it cannot be started or takes too long."""
    try:
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl+C in the terminal is for the app, not for every ssh
        )
    except OSError as error:
        raise RemoteFailed(f"cannot run {clean_text(argv[0], 80)!r}: {error.strerror or error} "
                           "(set [monitor] ssh_command)") from None
    try:
        stdout, stderr = await asyncio.wait_for(_read_all(child), timeout_s)
    except TimeoutError:
        await _kill(child)
        raise RemoteFailed(f"no answer in {timeout_s:g} s; the sample was abandoned") from None
    except BaseException:
        await _kill(child)
        raise
    return RemoteAnswer(child.returncode if child.returncode is not None else -1,
                        stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))


async def _read_all(child: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    assert child.stdout is not None and child.stderr is not None
    stdout, stderr = await asyncio.gather(_read_bounded(child.stdout), _read_bounded(child.stderr))
    if child.returncode is None and (len(stdout) >= OUTPUT_LIMIT or len(stderr) >= OUTPUT_LIMIT):
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    await child.wait()
    return stdout, stderr


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < OUTPUT_LIMIT:
        chunk = await stream.read(65_536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:OUTPUT_LIMIT]


async def _kill(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        # The whole group: a wrapper such as "tsh ssh" runs the real ssh as its own child.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
    # Shielded so a cancelled caller still reaps its child: no zombie is left behind.
    await asyncio.shield(child.wait())


def ssh_failure(answer: RemoteAnswer) -> str:
    """Why ssh (exit 255) or the remote command failed, as one line that says what to do."""
    text = answer.stderr
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return "host key changed (REMOTE HOST IDENTIFICATION HAS CHANGED): if the machine was replaced, remove the "\
               "old key with ssh-keygen -R HOST"
    if "Host key verification failed" in text:
        return "host key verification failed"
    if "Permission denied" in text:
        return "SSH login refused (permission denied): check [monitor] ssh_user and ssh_identity"
    if answer.returncode == 127:
        return "nvidia-smi failed: not found on the host (no NVIDIA driver?)"
    lines = [clean_text(line, MESSAGE_LIMIT) for line in text.splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return clean_text(f"ssh failed (exit {answer.returncode}){': ' + last if last else ''}", MESSAGE_LIMIT)
