"""`python -m bench.poll_cycle [CYCLES]`: one full instances poll of 1,000 demo instances across 3 providers with
50 ms of simulated API latency per request, polled together (as the Hub's schedules do), beside the same cycle
polled one provider after another and beside the app before issue 8 (commit d5e6558), measured in the same run."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.child import emit

INSTANCES = 1_000
PROVIDERS = ("vast", "runpod", "lambda")
"""The three whose instance list is one request; TensorDock asks once more per instance (see bench/README.md)."""
LATENCY_S = 0.050
CYCLES = 7
WARM_UP_CYCLES = 1
"""The first poll inserts every row; a steady poll updates them."""
TARGET_S = 1.0
CHILD_TIMEOUT_S = 300.0


class DelayedTransport(httpx.AsyncBaseTransport):
    """Answers as the wrapped transport does, ``delay_s`` later: a remote API's round trip, for the bench only."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await asyncio.sleep(self._delay_s)
        return await self._inner.handle_async_request(request)


# -- the child: a fleet on the demo market, a real store, the Hub's own refresh --------------------------------


def launch_fleet(market: Any, count: int) -> None:
    """``count`` machines spread over PROVIDERS, already booted and staying up."""
    gpus = {"vast": "RTX 4090", "runpod": "NVIDIA GeForce RTX 4090", "lambda": "A10"}
    for n in range(count):
        provider = PROVIDERS[n % len(PROVIDERS)]
        machine = market.launch(provider, gpu_name=gpus[provider], gpu_count=1 + n % 4, vram_gb=24.0,
                                price_hour=0.4, label=f"fleet-{n:04d}", location="Texas, US")
        machine.stuck, machine.crash_after_s = False, None
        machine.run_requested_at -= 3600.0


async def timed_cycles(poll: Callable[[], Awaitable[None]], cycles: int) -> dict[str, list[float]]:
    for _ in range(WARM_UP_CYCLES):
        await poll()
    walls, cpus = [], []
    for _ in range(cycles):
        wall, cpu = time.perf_counter(), time.process_time()
        await poll()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": walls, "cpu_s": cpus}


async def measure_side(order: str, cycles: int, profile: Path | None) -> dict[str, Any]:
    from computehub_tui.clock import SystemClock
    from computehub_tui.engine.hub import Hub
    from computehub_tui.providers.demo.adapters import demo_providers
    from computehub_tui.providers.demo.market import DemoMarket
    from computehub_tui.store import Store

    clock = SystemClock()
    market = DemoMarket(clock, vast_offer_count=200, seed_instances=False)
    launch_fleet(market, INSTANCES)
    adapters, clients = demo_providers(market, clock)
    transports = []
    for client in clients:
        # httpx keeps its transport private; wrapping it here leaves the product's demo untouched.
        delayed = DelayedTransport(client._transport, LATENCY_S)
        client._transport = delayed
        transports.append(delayed)
    adapters = {name: adapters[name] for name in PROVIDERS}
    with tempfile.TemporaryDirectory(prefix="chub-poll-") as data_dir:
        store = await Store.open(Path(data_dir) / "bench.db")
        hub = Hub(adapters, store, clock)
        seen: list[int] = []

        async def poll() -> None:
            if order == "together":
                results = await asyncio.gather(*(hub.refresh_instances(name) for name in PROVIDERS))
            else:
                results = [await hub.refresh_instances(name) for name in PROVIDERS]
            if not all(results):
                raise RuntimeError(f"a provider failed to poll: {hub.health()}")
            seen.append(len(hub.instances()))

        if profile is None:
            figures = await timed_cycles(poll, cycles)
        else:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            figures = await timed_cycles(poll, cycles)
            profiler.disable()
            profiler.dump_stats(str(profile))
        requests = sum(t.requests for t in transports)
        samples = sum(len(hub.metric_history(i.key)) for i in hub.instances())
        await store.close()
    for client in clients:
        await client.aclose()
    if set(seen) != {INSTANCES}:
        raise RuntimeError(f"expected {INSTANCES} instances each cycle, saw {sorted(set(seen))}")
    return {**figures, "instances": INSTANCES, "requests": requests, "metric_samples_kept": samples}


# -- standalone: `python -m bench.poll_cycle` runs only this benchmark, as `make bench` does -------------------


def describe_side(result: dict[str, Any]) -> str:
    if "error" in result:
        return str(result["error"])
    return "   ".join(f"{name} median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
                       for name, values in (("wall", result["wall_s"]), ("CPU", result["cpu_s"])))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        profile = Path(argv[3]) if len(argv) > 3 else None
        emit(asyncio.run(measure_side(argv[1], int(argv[2]), profile)))
        return 0
    # The parent's helpers import today's app: a child running the old app must not load them.
    from bench.machine import load_average
    from bench.runner import run_poll_cycle

    print(f"load average {load_average()}", flush=True)
    results = run_poll_cycle(int(argv[0]) if argv else CYCLES)
    for side, result in results.items():
        print(f"{side:<12} {describe_side(result)}")
    print(f"target: one full cycle ≤ {TARGET_S:g} s wall; load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
