"""Log records while the TUI runs: shown as throttled notifications and kept in a short list, never
written over the screen."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from computehub_tui.domain.secret import RedactingFormatter, redact

NOTIFY_EVERY_S = 60.0
"""One notification per kind of message per minute; the rest only go to the list."""
KEPT_RECORDS = 100

Notifier = Callable[[str, str, str], None]
"""(message, title, severity) → show it; must be safe to call from any thread."""


class UiLogHandler(logging.Handler):
    """Turns warnings into notifications, at most one per kind (logger and message template)
    per ``NOTIFY_EVERY_S``, and keeps the last ``KEPT_RECORDS`` records, tracebacks included.

    Records arrive from any thread (aiosqlite, workers), so ``notify`` must be thread-safe; the
    App passes ``App.notify``, which only posts a message. Everything is redacted first.
    """

    def __init__(self, notify: Notifier, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        self.notify = notify
        self.monotonic = monotonic
        self.recent: deque[str] = deque(maxlen=KEPT_RECORDS)
        self._shown_at: dict[tuple[str, str], float] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            kind = (record.name, str(record.msg))
            with self._guard:
                self.recent.append(text)
                now = self.monotonic()
                due = now - self._shown_at.get(kind, float("-inf")) >= NOTIFY_EVERY_S
                if due:
                    self._shown_at[kind] = now
            if due:
                lines = redact(record.getMessage()).strip().splitlines()
                message = lines[0] if lines else record.levelname
                severity = "error" if record.levelno >= logging.ERROR else "warning"
                self.notify(message, f"Logged {record.levelname.lower()} (palette: recent warnings)", severity)
        except Exception:  # noqa: BLE001 - logging must never raise into the code that logged
            self.handleError(record)


def route_root_logging(handler: logging.Handler) -> Callable[[], None]:
    """Replace the root logger's terminal handlers with ``handler``; returns the undo.

    File handlers and in-memory ones (pytest's capture) stay: only output that would land on the
    terminal, under the TUI, moves."""
    root = logging.getLogger()
    moved = [h for h in root.handlers if _writes_to_terminal(h)]
    for old in moved:
        root.removeHandler(old)
    root.addHandler(handler)

    def restore() -> None:
        root.removeHandler(handler)
        for old in moved:
            root.addHandler(old)

    return restore


def _writes_to_terminal(handler: logging.Handler) -> bool:
    return (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            and not isinstance(handler.stream, io.StringIO))
