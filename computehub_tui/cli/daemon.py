"""``computehub-tui daemon``: the engine without a screen, one flushed line per event on stdout until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from computehub_tui.cli.exits import EXIT_OK, UsageError
from computehub_tui.cli.session import Options
from computehub_tui.domain.models import iso_utc
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.events import (
    ActionFinished,
    ActionStarted,
    AlertQueued,
    AutomationPaused,
    AutomationResumed,
    DeliveryChanged,
    EngineEvent,
    InstancesUpdated,
    LeaseChanged,
    MetricsSampled,
    OffersUpdated,
    ProviderHealthChanged,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
    SpendUpdated,
    StoreFailed,
)
from computehub_tui.wiring import Session

DETAIL_LIMIT = 300
"""One event line stays one readable line in journalctl, whatever a provider put in an error."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
QUIET_REPEATS = frozenset({"offers", "instances", "metrics", "spend"})
"""Poll results that say the same as last time are not repeated: a journal of changes, not of every poll."""

PENDING_LINES = 1000
"""Lines held for a reader of stdout that has fallen behind; more are dropped (and counted) rather than stall."""
CLOSE_WAIT_S = 2.0
"""How long the exit waits for held lines to reach a reader that is still reading."""

Describe = Callable[[EngineEvent], tuple[str, str, str]]


class LineStream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class BackgroundStdout:
    """Writes to a file descriptor from its own thread. A reader that stops reading fills the pipe and blocks the
    write: it must block this thread, never the engine's loop (polls, rules, and the SIGTERM handler run there)."""

    def __init__(self, fd: int, pending: int = PENDING_LINES) -> None:
        self._fd = fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(pending)
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_all, name="daemon-stdout", daemon=True)
        self._thread.start()

    def write(self, text: str, /) -> int:
        try:
            self._queue.put_nowait(text.encode("utf-8", "replace"))
        except queue.Full:
            self.dropped += 1
        return len(text)

    def flush(self) -> None:
        """Lines go out as soon as the reader takes them; nothing waits here."""

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(wait_s)  # a reader that never reads keeps the rest: the thread is a daemon thread

    def _write_all(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError:  # the reader has gone: the daemon goes on acting, it only stops saying so
                return


def describe(event: EngineEvent) -> tuple[str, str, str]:
    """(kind, instance or provider, details) of one engine event."""
    match event:
        case OffersUpdated(provider=provider, count=count):
            return "offers", provider, f"count={count}"
        case InstancesUpdated(provider=provider, count=count):
            return "instances", provider, f"count={count}"
        case MetricsSampled(instance_keys=keys):
            return "metrics", "-", f"instances={len(keys)}"
        case ProviderHealthChanged(health=health):
            detail = f"state={health.state}" + (f" error={health.last_error}" if health.last_error else "")
            return "health", health.provider, detail
        case ActionStarted(action=action, target=target):
            return "action-started", target, f"action={action}"
        case ActionFinished(action=action, target=target, ok=ok, message=message):
            return "action", target, f"action={action} result={'ok' if ok else 'failed'}" + (
                f" {message}" if message else "")
        case SpendUpdated(burn_rate_hour=burn, spend_today=today, spend_this_month=month):
            return "spend", "-", f"burn_rate=${burn:.2f}/h today=${today:.2f} month=${month:.2f}"
        case StoreFailed(message=message):
            return "store-failed", "-", message
        case RuleFired(rule=rule, target=target, action=action, result=result, ok=ok, dry_run=dry, evidence=evidence):
            outcome = "dry-run" if dry else ("ok" if ok else "failed")
            return "rule-fired", target, f"rule={rule} action={action} result={outcome} {result} because {evidence}"
        case RuleWarningPending(rule=rule, target=target, action=action, due_at=due_at):
            return "rule-warning", target, f"rule={rule} action={action} at={iso_utc(due_at)}"
        case RuleNotify(rule=rule, target=target, channel=channel, message=message):
            return "notify", target, f"rule={rule} channel={channel} {message}"
        case AutomationPaused(reason=reason):
            return "automation-paused", "-", reason
        case AutomationResumed():
            return "automation-resumed", "-", ""
        case AlertQueued(alert_key=key, kind=kind, severity=severity, title=title, channels=channels, folded=folded):
            how = "digest" if folded else ",".join(channels)
            return "alert-queued", key, f"kind={kind} severity={severity} to={how} {title}"
        case DeliveryChanged(channel=channel, alert_key=key, title=title, state=state, attempts=attempts, error=error):
            detail = f"channel={channel} attempts={attempts} {title}" + (f" error={error}" if error else "")
            return f"alert-{state}", key, detail
        case LeaseChanged(holder=holder, ours=ours):
            return "lease", "-", "held by this daemon" if ours else f"held by {holder}" if holder else "free"
    return type(event).__name__, "-", ""


def event_line(at: float, kind: str, subject: str, detail: str) -> str:
    """``<ISO time> <kind> <instance or provider> <details>``, made safe and bounded."""
    return " ".join(part for part in (iso_utc(at), clean_text(kind, 40), clean_text(subject, 120) or "-",
                                      clean_text(detail, DETAIL_LIMIT)) if part)


class EventPrinter:
    """Writes each event as one line and flushes at once, so `journalctl -f` shows it live."""

    def __init__(self, session: Session, stream: LineStream, describe_event: Describe = describe) -> None:
        self._session = session
        self._stream = stream
        self._describe = describe_event
        self._last: dict[tuple[str, str], str] = {}

    def __call__(self, event: EngineEvent) -> None:
        kind, subject, detail = self._describe(event)
        if kind in QUIET_REPEATS:
            if self._last.get((kind, subject)) == detail:
                return
            self._last[(kind, subject)] = detail
        self.line(kind, subject, detail)

    def line(self, kind: str, subject: str, detail: str = "") -> None:
        try:
            self._stream.write(event_line(self._session.hub.clock.now(), kind, subject, detail) + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader has gone: the daemon goes on acting, it only stops saying so


def daemon_options(args: argparse.Namespace, options: Options) -> Options:
    """``--rules FILE`` in place of ``[automation] rules_file``; it must exist (the default one may not yet)."""
    if args.rules is None:
        return options
    path = args.rules.expanduser().absolute()
    if not path.is_file():
        raise UsageError(f"{path}: no such rule file")
    config = options.config
    automation = config.automation.model_copy(update={"rules_file": str(path)})
    return replace(options, config=config.model_copy(update={"automation": automation}))


async def daemon(args: argparse.Namespace, session: Session, stream: LineStream | None = None) -> int:
    """Run the engine until a stop signal; stopping is orderly (tasks stopped, store closed by the caller)."""
    if stream is not None:
        return await _run(session, EventPrinter(session, stream), lambda: 0)
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (an in-process caller's buffer): write to it
        return await _run(session, EventPrinter(session, sys.stdout), lambda: 0)
    stdout = BackgroundStdout(fd)
    try:
        return await _run(session, EventPrinter(session, stdout), lambda: stdout.dropped)
    finally:
        stdout.close()


async def _run(session: Session, printer: EventPrinter, dropped: Callable[[], int]) -> int:
    hub = session.hub
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(number: signal.Signals) -> None:
        received.append(number.name)
        stop.set()

    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, on_signal, number)
    unsubscribe = hub.bus.subscribe(printer)
    providers = ",".join(hub.providers) or "none"
    rules_path = hub.settings.automation.rules_path
    printer.line("started", "-", f"pid={os.getpid()} providers={providers} rules={rules_path or 'none'}"
                 + (" demo=yes" if session.demo else ""))
    try:
        await hub.load_snapshot()
        await hub.rules.start()  # reads the rule file once; the supervised runner started next finds it read
        for error in hub.rules.errors:
            printer.line("rules-error", str(rules_path), error.replace("\n", " | "))
        if not hub.rules.errors:
            printer.line("rules", str(rules_path), f"loaded={len(hub.rules.rule_set.rules)}")
        await hub.start()
        await stop.wait()
        printer.line("stopping", "-", f"signal={received[0]}")
    finally:
        await hub.stop()
        unsubscribe()
        for number in STOP_SIGNALS:
            loop.remove_signal_handler(number)
    lost = dropped()
    printer.line("stopped", "-", f"signal={received[0] if received else 'none'}"
                 + (f" dropped_lines={lost} (stdout was not read)" if lost else ""))
    return EXIT_OK
