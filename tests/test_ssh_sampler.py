"""The SSH sampler against a fake ssh program: its arguments, failures as states, backoff, hangs killed, polling
unaffected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import (
    Capabilities,
    Instance,
    InstanceStatus,
    MetricSample,
    Offer,
    OfferQuery,
    SshEndpoint,
)
from computehub_tui.engine.events import MetricsSampled
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings, SshSettings
from computehub_tui.engine.sampler_state import SamplerStatus
from computehub_tui.store import Store
from computehub_tui.wiring import open_session
from tests.waiting import until

FAKE_SSH = Path(__file__).parent / "fakes" / "ssh.py"
A100_OUTPUT = """index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu, power.draw [W]
0, GPU-1, NVIDIA A100-SXM4-40GB, 87 %, 30720 MiB, 40960 MiB, 66, 301.5 W
1, GPU-2, NVIDIA A100-SXM4-40GB, [N/A], 1024 MiB, 40960 MiB, 40, [N/A]
"""


@dataclass
class StaticProvider:
    """A provider whose instances a test sets; it counts how often it is polled."""

    name: str
    instances: list[Instance] = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(live_metrics=False))
    title: str = "Static"
    dropped_rows: int = 0
    polls: int = 0

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []

    async def list_instances(self) -> list[Instance]:
        self.polls += 1
        return list(self.instances)


def lambda_instance(instance_id: str = "0920582c7ff041399e34823a0be62549", *, port: int = 22,
                    metrics: MetricSample | None = None, provider: str = "lambda") -> Instance:
    return Instance(provider, instance_id, "job", InstanceStatus.RUNNING, "active", "A100 SXM", 2, 2.58,
                    ssh=SshEndpoint("192.0.2.7", port, "ubuntu"), metrics=metrics)


@dataclass
class Rig:
    hub: Hub
    clock: ManualClock
    provider: StaticProvider
    folder: Path

    def mode(self, mode: str) -> None:
        (self.folder / "mode").write_text(mode, encoding="utf-8")

    def calls(self) -> list[list[str]]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@asynccontextmanager
async def rig(tmp_path: Path, *, identity: str = "", timeout_s: float = 20.0, provider: str = "lambda",
              instances: Sequence[Instance] = ()) -> AsyncIterator[Rig]:
    folder = tmp_path / "ssh"
    folder.mkdir()
    (folder / "output").write_text(A100_OUTPUT, encoding="utf-8")
    control = tmp_path / "cm"
    ssh = SshSettings(command=(sys.executable, "-I", str(FAKE_SSH), str(folder)), identity=identity,
                      providers=(provider,), control_dir=control, timeout_s=timeout_s)
    clock = ManualClock()
    fake = StaticProvider(provider, list(instances or [lambda_instance()]),
                          Capabilities(live_metrics=provider in ("vast", "runpod")))
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub({provider: fake}, store, clock, HubSettings(poll=PollSettings(60.0, 5.0), ssh=ssh))  # type: ignore[dict-item]
    try:
        yield Rig(hub, clock, fake, folder)
    finally:
        await hub.stop()
        await store.close()


def state_of(hub: Hub, key: str = "lambda:0920582c7ff041399e34823a0be62549"):  # type: ignore[no-untyped-def]
    return hub.metrics.sampler_state(key)


async def test_a_sample_runs_ssh_in_batch_mode_with_a_shared_connection_and_is_kept(tmp_path: Path) -> None:
    async with rig(tmp_path, identity="~/.ssh/id_test") as r:
        events: list[object] = []
        r.hub.bus.subscribe(events.append)
        await r.hub.refresh_instances("lambda")
        await r.hub.start()
        await until(lambda: any(isinstance(event, MetricsSampled) for event in events))  # kept, saved, announced
        assert state_of(r.hub).status is SamplerStatus.OK

        (argv,) = r.calls()
        pairs = {argv[n + 1] for n, word in enumerate(argv) if word == "-o"}
        assert {"BatchMode=yes", "ControlMaster=auto", "ControlPersist=60s", f"ControlPath={tmp_path}/cm/cm-%C",
                "ConnectTimeout=10", "StrictHostKeyChecking=accept-new"} <= pairs
        assert argv[argv.index("-p") + 1] == "22"
        assert argv[argv.index("-i") + 1] == str(Path("~/.ssh/id_test").expanduser())
        assert argv[-2] == "ubuntu@192.0.2.7"
        assert argv[-1].startswith("nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,") and "--format=csv" in argv[-1]

        key = "lambda:0920582c7ff041399e34823a0be62549"
        (sample,) = r.hub.metric_history(key)
        assert sample.source == "ssh" and sample.gpu_util == (87.0, None) and sample.gpu_power_w == (301.5, None)
        assert sample.gpu_names == ("NVIDIA A100-SXM4-40GB",) * 2 and sample.vram_used_gb == (30.0, 1.0)
        assert await r.hub.store.metric_history(key, 0) == [sample]
        assert MetricsSampled(sample.time, (key,)) in events


@pytest.mark.parametrize(("mode", "message"), [
    ("hostkey", "host key changed (REMOTE HOST IDENTIFICATION HAS CHANGED)"),
    ("denied", "SSH login refused (permission denied): check [monitor] ssh_user and ssh_identity"),
    ("missing", "nvidia-smi failed: not found on the host"),
    ("driver", "nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"),
])
async def test_a_failure_is_the_instances_state_and_is_retried_with_backoff(
    tmp_path: Path, mode: str, message: str
) -> None:
    async with rig(tmp_path) as r:
        r.mode(mode)
        await r.hub.refresh_instances("lambda")
        await r.hub.start()
        await until(lambda: (state := state_of(r.hub)) is not None and state.status is SamplerStatus.FAILED)
        state = state_of(r.hub)
        assert state.message.startswith(message) and "\n" not in state.message
        assert state.failures == 1 and state.retry_at == r.clock.now() + 30.0  # twice the 15 s interval

        await r.clock.advance(29.0)  # the schedule is looked at every second, but the retry is not due yet
        assert r.hub.ssh_sampler.busy_keys == [] and len(r.calls()) == 1

        r.mode("ok")
        await r.clock.advance(1.0)
        await until(lambda: state_of(r.hub).status is SamplerStatus.OK)
        assert len(r.calls()) == 2 and state_of(r.hub).failures == 0


async def test_backoff_doubles_up_to_five_minutes() -> None:
    settings = SshSettings(interval_s=15.0)
    assert [settings.backoff(n) for n in range(1, 7)] == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]


async def test_a_hanging_sample_is_abandoned_and_its_process_killed(tmp_path: Path) -> None:
    async with rig(tmp_path, timeout_s=1.5) as r:
        r.mode("hang")
        await r.hub.refresh_instances("lambda")
        await r.hub.start()
        await until(lambda: (state := state_of(r.hub)) is not None and state.status is SamplerStatus.FAILED)
        assert state_of(r.hub).message == "no answer in 1.5 s; the sample was abandoned"
        pid = int((r.folder / "pid").read_text(encoding="utf-8"))
        with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie is left
            os.kill(pid, 0)


async def test_polling_goes_on_while_a_sample_hangs_and_stopping_kills_it(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.mode("hang")
        await r.hub.start()
        await until(lambda: (r.folder / "pid").exists())
        # Both poll loops, maintenance and the sampler's schedule are asleep on the clock.
        await until(lambda: r.clock.sleeper_count == 4)
        polls = r.provider.polls
        await r.clock.advance(5.0)
        await until(lambda: r.provider.polls > polls)  # the next instances poll ran while the sample hangs
        assert r.hub.ssh_sampler.busy_keys == ["lambda:0920582c7ff041399e34823a0be62549"]
        pid = int((r.folder / "pid").read_text(encoding="utf-8"))
        await r.hub.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_only_running_reachable_instances_without_provider_metrics_are_wanted(tmp_path: Path) -> None:
    reported = MetricSample(1.0, gpu_util=(40.0,))
    async with rig(tmp_path, provider="vast") as r:
        sampler = r.hub.ssh_sampler
        vast = lambda_instance("123", provider="vast")
        assert sampler.wants(vast)  # Vast reported nothing: SSH fills in
        assert not sampler.wants(lambda_instance("123", provider="vast", metrics=reported))
        assert sampler.wants(lambda_instance("123", provider="vast", metrics=MetricSample(1.0, gpu_util=(None,))))
        stopped = Instance("vast", "124", "x", InstanceStatus.STOPPED, "stopped", "A100", 1, 1.0,
                           ssh=SshEndpoint("192.0.2.7", 22))
        assert not sampler.wants(stopped)
        assert not sampler.wants(Instance("vast", "125", "x", InstanceStatus.RUNNING, "running", "A100", 1, 1.0))
        assert not sampler.wants(lambda_instance())  # lambda is not in this rig's ssh_providers


async def test_with_no_ssh_providers_the_sampler_never_starts(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub({"lambda": StaticProvider("lambda", [lambda_instance()])}, store, clock)  # type: ignore[dict-item]
    await hub.start()
    try:
        assert "ssh-sampler" not in hub.supervisor.running()
    finally:
        await hub.stop()
        await store.close()


async def test_the_demos_lambda_and_tensordock_get_metrics_through_the_sampler(tmp_path: Path) -> None:
    clock = ManualClock(time.time())  # the demo's stand-in ssh reads the real clock
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 100}}), tmp_path, demo=True,
                                 clock=clock, environ={})
    hub = session.hub
    try:
        await hub.refresh_all()
        wanted = [i.key for i in hub.instances() if i.provider in ("lambda", "tensordock")
                  and i.status is InstanceStatus.RUNNING]
        assert len(wanted) == 2
        await hub.start()
        await until(lambda: all((state := hub.metrics.sampler_state(key)) is not None
                                and state.status is SamplerStatus.OK for key in wanted))
        for key in wanted:
            (sample,) = hub.metric_history(key)
            assert sample.source == "ssh" and sample.gpu_util and sample.gpu_names[0].startswith("NVIDIA ")
            assert hub.metrics.sampler_state(key).status is SamplerStatus.OK
    finally:
        await hub.stop()
        await session.aclose()


def test_the_demos_ssh_starts_without_asyncio_or_httpx() -> None:
    """The stand-in runs once per sample of each host: importing asyncio and httpx tripled its CPU time."""
    probe = ("import sys; import computehub_tui.providers.demo.ssh; "
             "print(sorted(name for name in ('asyncio', 'httpx') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
