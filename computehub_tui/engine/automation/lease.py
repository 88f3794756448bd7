"""Leases in the store: only the process that holds the automation lease runs rules (the others show who does),
and only the holder of the Telegram lease polls the bot."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable

from computehub_tui.clock import Clock
from computehub_tui.engine.events import EventBus, LeaseChanged
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store.automation import LeaseClaim, LeaseHolder

LEASE_NAME = "automation"
TELEGRAM_LEASE_NAME = "telegram-bot"
"""Telegram lets one reader poll a bot's updates; a second one gets 409 Conflict."""
MAX_TTL_S = 30.0
"""A lease whose holder stopped renewing is free after at most this long."""


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (one we may not signal still exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: LeaseHolder) -> str:
    """``daemon pid 4242 on box``: the holder id without its uniqueness token."""
    return holder.holder.partition(" #")[0]


class LeaseKeeper:
    """Claims and renews lease ``name`` (``claim``, every few seconds); when ``announce``, publishes LeaseChanged
    when its holder changes (the automation lease: the TUI shows who runs rules).

    ``role`` names this process for others (``daemon``, ``tui``). A holder on this host whose pid is gone is
    taken over at once; any other holder only once its lease has expired (``ttl_s``, at most 30 s).
    """

    def __init__(self, store: SafeStore, bus: EventBus, clock: Clock, *, role: str, ttl_s: float = MAX_TTL_S,
                 host: str | None = None, pid: int | None = None,
                 alive: Callable[[int], bool] = pid_alive, name: str = LEASE_NAME, announce: bool = True) -> None:
        self._store = store
        self._name = name
        self._announce = announce
        self._bus = bus
        self._clock = clock
        self._ttl_s = min(ttl_s, MAX_TTL_S)
        self._alive = alive
        host = host or socket.gethostname()
        pid = os.getpid() if pid is None else pid
        self.claim_as = LeaseClaim(f"{role} pid {pid} on {host} #{secrets.token_hex(4)}", host, pid)
        self.holder: LeaseHolder | None = None
        """Whoever held the lease at the last claim or read (None: nobody, or not asked yet)."""

    @property
    def held(self) -> bool:
        """True while this process holds an unexpired lease."""
        holder = self.holder
        return holder is not None and holder.holder == self.claim_as.holder and holder.expires_at > self._clock.now()

    @property
    def holder_description(self) -> str | None:
        holder = self.holder
        return describe(holder) if holder is not None and holder.expires_at > self._clock.now() else None

    async def claim(self) -> bool:
        """Take or renew the lease if it is free, ours, expired, or its holder died; True if held afterwards."""
        holder = await self._store.call(self._store.store.claim_lease(self._name, self.claim_as, self._clock.now(),
                                                                      self._ttl_s, self._gone))
        self._set(holder)
        return self.held

    async def refresh(self) -> LeaseHolder | None:
        """Read who holds the lease without claiming it."""
        self._set(await self._store.call(self._store.store.lease_holder(self._name)))
        return self.holder

    async def release(self) -> None:
        if self.holder is not None and self.holder.holder == self.claim_as.holder:
            await self._store.call(self._store.store.release_lease(self._name, self.claim_as.holder))
            self._set(None)

    def _gone(self, holder: LeaseHolder) -> bool:
        return holder.host == self.claim_as.host and holder.pid != self.claim_as.pid and not self._alive(holder.pid)

    def _set(self, holder: LeaseHolder | None) -> None:
        before = None if self.holder is None else self.holder.holder
        self.holder = holder
        if self._announce and (None if holder is None else holder.holder) != before:
            self._bus.publish(LeaseChanged(None if holder is None else describe(holder), self.held))
