"""The demo world kept in the demo data dir, so the TUI and each CLI command see one world that carries on."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from computehub_tui.private_files import PRIVATE_FILE_MODE
from computehub_tui.providers.demo.market import DemoMarket, WorldStateError

if TYPE_CHECKING:  # the demo's ssh reads the world and must start without httpx
    import httpx

    Handler = Callable[[httpx.Request], httpx.Response]

log = logging.getLogger(__name__)

WORLD_FILE_NAME = "demo-world.json"
WORLD_FORMAT = 1


class DemoWorldError(Exception):
    """The saved demo world cannot be read or written; ``str(error)`` is one line with the fix."""


class DemoWorld:
    """Keeps ``market``'s changing state (instances, ids, rented machines) in ``<directory>/demo-world.json``.

    Every request to the simulated providers runs under an exclusive ``flock`` on a lock file next to it:
    the world is reloaded first if another process changed it, and saved afterwards if the request
    changed it. So a launch from the CLI is there for the TUI, and a stop in the TUI for the next command.
    """

    def __init__(self, market: DemoMarket, directory: Path) -> None:
        self.market = market
        self.path = directory / WORLD_FILE_NAME
        self._lock_path = directory / f".{WORLD_FILE_NAME}.lock"
        self._stamp: tuple[int, int, int] | None = None
        """(inode, size, mtime) of the file as this process last read or wrote it."""
        self._saved = ""

    @classmethod
    def open(cls, market: DemoMarket, directory: Path, *, reset: bool = False) -> DemoWorld:
        """Load the saved world into ``market`` (or save ``market`` as the world if there is none yet);
        ``reset`` throws the saved world away first."""
        world = cls(market, directory)
        try:
            with world._locked():
                if reset:
                    world.path.unlink(missing_ok=True)
                if not world._reload():
                    world._save()
        except OSError as error:
            raise DemoWorldError(f"cannot use the demo world in {directory}: {error.strerror or error}") from None
        except WorldStateError as error:
            raise DemoWorldError(
                f"{world.path} is damaged ({error}); start a fresh demo world with --demo-reset") from None
        return world

    def guard(self, handler: Handler) -> Handler:
        """``handler`` run against the shared world: reloaded before, saved after if it changed."""

        def guarded(request: httpx.Request) -> httpx.Response:
            try:
                lock = self._acquire_lock()
            except OSError as error:
                log.warning("cannot lock the demo world in %s (%s); using this process's copy", self.path, error)
                return handler(request)
            try:
                self._reload_quietly()
                response = handler(request)
                self._save_quietly()
            finally:
                os.close(lock)  # closing releases the lock
            return response

        return guarded

    def _acquire_lock(self) -> int:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = self._acquire_lock()
        try:
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _reload(self) -> bool:
        """Load the file into the market if it changed since this process last saw it; False if there is
        no saved world for this seed."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp == self._stamp:
            return True
        text = self.path.read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except ValueError as error:
            raise WorldStateError(f"not JSON: {error}") from None
        if not isinstance(document, dict) or document.get("format") != WORLD_FORMAT:
            raise WorldStateError(f"not a demo world of format {WORLD_FORMAT}")
        if document.get("seed") != self.market.seed:
            log.info("the saved demo world has another seed; starting a fresh one")
            return False
        self.market.restore(document)
        self._stamp, self._saved = stamp, text
        return True

    def _reload_quietly(self) -> None:
        try:
            self._reload()
        except (OSError, WorldStateError) as error:
            # Keep this process's world; the next save replaces the damaged file.
            log.warning("ignoring an unreadable demo world in %s: %s", self.path, error)

    def _save_quietly(self) -> None:
        try:
            self._save()
        except OSError as error:
            # The world lives on in this process; the next request tries to save it again.
            log.warning("could not save the demo world to %s: %s", self.path, error)

    def _save(self) -> None:
        text = json.dumps({"format": WORLD_FORMAT, **self.market.snapshot()}, separators=(",", ":"))
        if text == self._saved and self.path.exists():
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0),
                     PRIVATE_FILE_MODE)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
        info = self.path.stat()
        self._stamp, self._saved = (info.st_ino, info.st_size, info.st_mtime_ns), text
