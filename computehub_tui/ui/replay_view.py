"""What the replay screen shows: one rule's firings over the stored history, and a timeline strip per instance."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.replay import ReplayControl, replay, stored_trace
from computehub_tui.engine.crossing import run_on, running_loop
from computehub_tui.engine.hub import Hub
from computehub_tui.rules.model import RuleSet
from computehub_tui.rules.parser import parse_rules

T = TypeVar("T")
MARK = "▲"
EMPTY = "·"
NAME_LIMIT = 60


@dataclass(frozen=True, slots=True)
class ReplayFiring:
    """One firing the replay found: when, on what, which actions, and what made the rule true."""

    at: float
    instance_key: str
    actions: tuple[str, ...]
    evidence: str


@dataclass(frozen=True, slots=True)
class ReplayView:
    """A replay of one rule over ``start``..``end`` (wall-clock seconds)."""

    rule: str
    start: float
    end: float
    firings: tuple[ReplayFiring, ...] = ()
    instances: tuple[str, ...] = ()
    """Every instance the history holds, fired or not, in the order the strips show them."""
    held: tuple[tuple[float, str], ...] = ()
    """What the guards held back (fleet share, the destructive cap)."""
    problem: str = ""
    """Why there is nothing to replay ("the rule file has errors", "no stored history")."""


def timeline(view: ReplayView, instance_key: str, width: int) -> str:
    """``width`` cells from ``view.start`` to ``view.end``, MARK where ``instance_key`` fired."""
    cells = [EMPTY] * max(1, width)
    span = max(1.0, view.end - view.start)
    for firing in view.firings:
        if firing.instance_key == instance_key:
            index = int((firing.at - view.start) / span * len(cells))
            cells[min(len(cells) - 1, max(0, index))] = MARK
    return "".join(cells)


def strips(view: ReplayView, width: int) -> list[tuple[str, str]]:
    """(instance name, strip) for every instance, the name cut to fit beside a strip of the rest of ``width``."""
    names = [clean_text(key, NAME_LIMIT) for key in view.instances]
    name_width = min(24, max((len(name) for name in names), default=0))
    strip_width = max(8, width - name_width - 2)
    return [(name[:name_width].ljust(name_width), timeline(view, key, strip_width))
            for name, key in zip(names, view.instances, strict=True)]


def fired_instances(firings: Sequence[ReplayFiring]) -> int:
    return len({firing.instance_key for firing in firings})


async def replay_rule(hub: Hub, text: str, rule: str, window_s: float,
                      control: ReplayControl | None = None) -> ReplayView:
    """``rule`` of the rules ``text`` over the fleet's last ``window_s`` of stored history: read on the engine's
    loop (its store lives there), replayed on a thread of its own (days of ticks must not hold up polling), which
    ``control`` follows and may stop (ReplayStopped). Nothing is executed and no alert is sent."""
    now = hub.clock.now()
    start = now - window_s
    parsed = parse_rules(text)
    chosen = tuple(r for r in parsed.rules if r.name == rule)
    if not chosen:
        problem = "fix the errors in the editor first" if not parsed.ok else f"no rule named {rule!r} in the text"
        return ReplayView(clean_text(rule, NAME_LIMIT), start, now, problem=problem)
    trace = await _on_engine(hub, stored_trace(hub.store, start, now, hub.poll.instances_interval_s))
    if trace is None:
        return ReplayView(rule, start, now, problem="no stored history in this time (the app records it while "
                                                    "it runs)")
    result = await asyncio.to_thread(asyncio.run, replay(RuleSet(chosen), trace, hub.rules.runner.settings,
                                                         control=control, zone=hub.costs.zone,
                                                         max_interval_s=hub.sample_interval_cap_s))
    firings = tuple(ReplayFiring(f.t, f.instance, f.actions, f.evidence) for f in result.firings)
    return ReplayView(rule, start, now, firings, trace.instances, tuple(result.held))


async def _on_engine(hub: Hub, job: Coroutine[Any, Any, T]) -> T:
    home = hub.home_loop
    return await (job if home is None or running_loop() is home else run_on(home, job))
