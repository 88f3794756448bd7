"""`python -m bench.alerts_drain`: 1,000 queued alerts drained by the delivery worker against loopback servers,
each channel at its own pace: a generic webhook (no per-destination limit), SMTP (0.5 s between messages), a
Slack-style webhook (1 message/s) and the same 1,000 raised through hub.alerts, where grouping folds them into
digests. The drain time of each is reported; a paced channel's is bounded below by its rate, which is checked."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.alerts_servers import Arrivals, smtp_sink, webhook_sink
from computehub_tui.clock import SystemClock
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.alerts import QUEUED, DeliveryRow, new_delivery_id
from computehub_tui.engine.alerts import AlertsService, AlertsSettings
from computehub_tui.engine.events import EventBus
from computehub_tui.store import Store

ALERTS = 1_000
PACED_SAMPLE = 12
"""Rows sent through each paced channel: enough to see its rate, not 1,000 × its interval of waiting."""
KINDS = ("instance_down", "rule_fired", "spend", "launch", "provider_down")


def rows(channel: str, count: int, now: float) -> list[DeliveryRow]:
    return [DeliveryRow(new_delivery_id(now), channel, f"bench:{channel}:{number}", "rule_fired",
                        f"alert {number}", QUEUED, 0, now, "", now, None, severity="warning", body="body")
            for number in range(count)]


async def until(arrivals: Arrivals, count: int, timeout_s: float) -> float:
    started = time.monotonic()
    while arrivals.count() < count:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"only {arrivals.count()} of {count} arrived")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def service_for(work: Path, name: str, section: dict[str, Any]) -> tuple[AlertsService, Store]:
    store = await Store.open(work / f"{name}.db")
    service = AlertsService(store, EventBus(), SystemClock(), AlertsSettings(AlertsSection.model_validate(section)))
    await service.load_channels()
    return service, store


async def drained(work: Path, name: str, section: dict[str, Any], channel: str, count: int, arrivals: Arrivals,
                  timeout_s: float) -> dict[str, Any]:
    service, store = await service_for(work, name, section)
    try:
        await store.enqueue(rows(channel, count, time.time()))
        started = time.monotonic()
        task = asyncio.create_task(service.run_delivery())
        seconds = await until(arrivals, count, timeout_s)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gaps = [later - earlier for (_, earlier), (_, later) in zip(arrivals.times, arrivals.times[1:], strict=False)]
        built = service.channel(channel)
        return {"messages": count, "drain_s": seconds, "since_start_s": time.monotonic() - started,
                "min_gap_s": min(gaps) if gaps else None,
                "interval_s": built.min_interval_s if built is not None else None}
    finally:
        await service.aclose()
        await store.close()


async def grouped(work: Path, url: str, arrivals: Arrivals) -> dict[str, Any]:
    service, store = await service_for(work, "grouped", {"webhook": {"url": url, "format": "slack"}})
    try:
        started = time.monotonic()
        for number in range(ALERTS):
            kind = KINDS[number % len(KINDS)]
            await service.raise_alert(kind, f"{kind}:{number}", "warning", f"{kind} {number}", "body")
        queued_s = time.monotonic() - started
        await service.tick()
        task = asyncio.create_task(service.run_delivery())
        first = await until(arrivals, len(KINDS), 30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        folded = len(await store.alerts_where(pending_digest=True))
        return {"alerts": ALERTS, "queued_s": queued_s, "first_of_each_group_s": first,
                "messages_now": arrivals.count(), "folded_for_digests": folded}
    finally:
        await service.aclose()
        await store.close()


async def measure() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="chub-drain-") as work_dir:
        work = Path(work_dir)
        with webhook_sink() as (url, arrivals):
            results["webhook"] = await drained(work, "webhook", {"webhook": {"url": url}}, "webhook", ALERTS,
                                               arrivals, 120)
        with webhook_sink() as (url, arrivals):
            results["slack"] = await drained(work, "slack", {"webhook": {"url": url, "format": "slack"}}, "webhook",
                                             PACED_SAMPLE, arrivals, 60)
        async with smtp_sink() as (port, mails):
            email = {"host": "127.0.0.1", "port": port, "security": "none", "from": "b@computehub.example",
                     "to": ["ops@example.com"]}
            results["email"] = await drained(work, "email", {"email": email}, "email", PACED_SAMPLE, mails, 60)
        with webhook_sink() as (url, arrivals):
            results["grouped"] = await grouped(work, url, arrivals)
    return results


def describe(result: dict[str, Any]) -> list[str]:
    hook, slack, mail, grouped_result = result["webhook"], result["slack"], result["email"], result["grouped"]
    lines = [(f"1,000 queued alerts, generic webhook (no per-destination limit): drained in {hook['drain_s']:.2f} s "
             f"({hook['messages'] / hook['drain_s']:.0f}/s)")]
    for label, paced in (("slack-style webhook", slack), ("SMTP", mail)):
        projected = ALERTS * paced["interval_s"]
        lines.append(f"{label}: {paced['messages']} in {paced['drain_s']:.2f} s, smallest gap {paced['min_gap_s']:.3f} s "
                     f"(limit {paced['interval_s']:g} s): 1,000 would take ≥ {projected:.0f} s")
    lines.append(f"1,000 alerts raised through hub.alerts to the slack-style webhook: queued in "
                 f"{grouped_result['queued_s']:.2f} s; the first of each of {len(KINDS)} groups received after "
                 f"{grouped_result['first_of_each_group_s']:.2f} s, {grouped_result['folded_for_digests']} folded "
                 "into one digest per group")
    return lines


def main(argv: list[str]) -> int:
    result = asyncio.run(measure())
    if argv[:1] == ["--child"]:
        from bench.child import emit

        emit(result)
        return 0
    print("\n".join(describe(result)))
    paced_ok = all(result[name]["min_gap_s"] >= result[name]["interval_s"] * 0.95 for name in ("slack", "email"))
    return 0 if paced_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
