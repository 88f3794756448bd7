"""GPU utilisation that follows a script over wall time, so a loopback fake's machine is idle, busy or gappy.

A script is a cycle of stretches. In each, the provider reports one utilisation, omits the metrics (``util`` None:
a gap in the data) or fails the whole instance list (``error``). The time starts when the script is made and
reads ``time.monotonic`` unless told otherwise, because the daemon under test polls in real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stretch:
    seconds: float
    util: float | None
    """Percent the provider reports for every GPU; None: it sends no metrics."""
    error: bool = False
    """The provider answers the instance list with a server error."""


class UtilisationScript:
    """A repeating sequence of stretches; ``now()`` is the stretch in force."""

    def __init__(self, *stretches: Stretch, clock: Callable[[], float] = time.monotonic) -> None:
        if not stretches or any(stretch.seconds <= 0 for stretch in stretches):
            raise ValueError("a script needs stretches of positive length")
        self.stretches = stretches
        self._clock = clock
        self._start = clock()

    def now(self) -> Stretch:
        cycle = sum(stretch.seconds for stretch in self.stretches)
        offset = (self._clock() - self._start) % cycle
        for stretch in self.stretches:
            if offset < stretch.seconds:
                return stretch
            offset -= stretch.seconds
        return self.stretches[-1]  # float rounding at the very end of a cycle


class Readings:
    """A script clock that counts the readings asked of the script instead of seconds: its stretches then last so
    many polls, however slowly a loaded machine polls (a checkpoint dip is one poll, never a window's worth)."""

    def __init__(self) -> None:
        self._count = 0

    def __call__(self) -> float:
        self._count += 1
        return float(self._count)


def idle() -> UtilisationScript:
    """0 % all the time, reported on every poll."""
    return UtilisationScript(Stretch(3600.0, 0.0))


def busy(work_s: float = 5.0, dip_s: float = 2.0, *, clock: Callable[[], float] = time.monotonic) -> UtilisationScript:
    """Training: 90-100 % with a short 0 % dip (a checkpoint being written) after each stretch of work."""
    return UtilisationScript(Stretch(work_s, 97.0), Stretch(dip_s, 0.0), Stretch(work_s, 91.0), Stretch(dip_s, 0.0),
                             Stretch(work_s, 100.0), Stretch(dip_s, 0.0), clock=clock)


def gappy(seen_s: float = 4.0, silent_s: float = 6.0, failing_s: float = 6.0) -> UtilisationScript:
    """Idle whenever it is seen, but seen only in short stretches: between them the provider first sends no
    metrics, then fails outright. No stretch of data is as long as a rule's window, so it never counts as idle."""
    return UtilisationScript(Stretch(seen_s, 0.0), Stretch(silent_s, None), Stretch(failing_s, 0.0, error=True))
