"""The SSH sampler: nvidia-smi over the user's ssh for running instances whose provider reports no metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Capabilities, Instance, InstanceStatus, MetricSample, known
from computehub_tui.domain.nvidia_smi import QUERY_ARGV, NvidiaSmiError, parse_nvidia_smi
from computehub_tui.engine.events import EventBus, MetricsSampled
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.metrics import MetricsService
from computehub_tui.engine.remote import SAMPLE_TIMEOUT_S, RemoteFailed, run_remote, ssh_argv, ssh_failure
from computehub_tui.engine.sampler_state import SamplerState, SamplerStatus

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
TICK_S = 1.0
"""How often the schedule is looked at (in memory only; no host is asked more often than ``interval_s``)."""
SSH_EXIT_ERROR = 255
COMMAND_NOT_FOUND = 127


@dataclass(frozen=True, slots=True)
class SshSettings:
    """How to reach hosts. No providers (the default here) means the sampler is off."""

    command: tuple[str, ...] = ("ssh",)
    user: str = ""
    """Empty: each endpoint's own user (the provider's usual one)."""
    identity: str = ""
    interval_s: float = 15.0
    providers: tuple[str, ...] = ()
    control_dir: Path | None = None
    """Where ssh keeps its shared connections (None: no connection reuse)."""
    timeout_s: float = SAMPLE_TIMEOUT_S
    concurrency: int = 4

    def backoff(self, failures: int) -> float:
        return min(MAX_BACKOFF_S, self.interval_s * 2 ** max(0, failures))


class SampleFailed(Exception):
    """No sample could be had; ``str(error)`` is one readable line ("host key changed …")."""


class SshSampler:
    """Samples each wanted instance every ``interval_s`` with at most ``concurrency`` ssh processes at once.
    A failing instance is retried with a growing delay; a hanging one only holds its own slot."""

    def __init__(self, settings: SshSettings, live: LiveData, metrics: MetricsService, bus: EventBus, clock: Clock,
                 capabilities: Callable[[str], Capabilities]) -> None:
        self.settings = settings
        self._live = live
        self._metrics = metrics
        self._bus = bus
        self._clock = clock
        self._capabilities = capabilities
        self._due: dict[str, float] = {}
        """Monotonic time each sampled instance is next due."""
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None

    @property
    def busy_keys(self) -> list[str]:
        """Instances with a sample under way right now."""
        return list(self._running)

    def covers(self, provider: str) -> bool:
        return provider in self.settings.providers

    def wants(self, instance: Instance) -> bool:
        """Running, reachable, of a provider sampled over SSH, and without metrics of its provider's own."""
        if not self.covers(instance.provider) or instance.status is not InstanceStatus.RUNNING or instance.ssh is None:
            return False
        return not self._capabilities(instance.provider).live_metrics or not has_gpu_readings(instance.metrics)

    async def run(self) -> None:
        """Sample until cancelled (the supervisor's job)."""
        try:
            while True:
                self._schedule()
                await self._clock.sleep(TICK_S)
        finally:
            tasks = list(self._running.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._running.clear()

    async def sample_now(self, instance: Instance) -> MetricSample:
        """One fresh sample of ``instance`` over SSH, kept in its history and the store and announced; its
        sampler state (and next due time) follows the outcome.

        Raises SampleFailed."""
        try:
            sample = await self._take(instance)
        except SampleFailed as error:
            self._failed(instance.key, str(error))
            raise
        kept = self._metrics.record(instance.key, sample)
        self._succeeded(instance.key, sample)
        if kept:
            await self._metrics.save([(instance.key, sample)])
            self._bus.publish(MetricsSampled(sample.time, (instance.key,)))
        return sample

    async def _take(self, instance: Instance) -> MetricSample:
        if instance.ssh is None:
            raise SampleFailed(f"{instance.key} has no SSH address yet")
        argv = ssh_argv(self.settings.command, instance.ssh, QUERY_ARGV, user=self.settings.user,
                        identity=self.settings.identity, control_dir=self.settings.control_dir)
        try:
            answer = await run_remote(argv, self.settings.timeout_s)
        except RemoteFailed as error:
            raise SampleFailed(str(error)) from None
        if answer.returncode in (SSH_EXIT_ERROR, COMMAND_NOT_FOUND):
            raise SampleFailed(ssh_failure(answer))
        try:
            reading = parse_nvidia_smi(answer.stdout if answer.stdout.strip() else answer.stderr)
        except NvidiaSmiError as error:
            raise SampleFailed(str(error)) from None
        return reading.sample(self._clock.now())

    # -- the schedule ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        now = self._clock.monotonic()
        wanted = {instance.key: instance for instance in self._live.instances if self.wants(instance)}
        for key in [key for key in self._due if key not in wanted]:
            self._forget(key)
        for key, instance in wanted.items():
            if key in self._running or self._due.setdefault(key, now) > now:
                continue
            if self._metrics.sampler_state(key) is None:
                self._metrics.set_sampler_state(key, SamplerState())
            self._running[key] = asyncio.create_task(self._sample_in_slot(instance), name=f"ssh-sample:{key}")

    def _forget(self, key: str) -> None:
        self._due.pop(key, None)
        task = self._running.pop(key, None)
        if task is not None:
            task.cancel()
        self._metrics.set_sampler_state(key, None)

    async def _sample_in_slot(self, instance: Instance) -> None:
        key = instance.key
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.concurrency)
        try:
            async with self._slots:
                try:
                    await self.sample_now(instance)
                except SampleFailed:
                    pass  # sample_now recorded it as the instance's state
                except Exception as error:  # a bug here must not end sampling of the rest
                    log.exception("sampling %s over SSH failed unexpectedly", key)
                    self._failed(key, f"internal error: {type(error).__name__}")
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]

    def _succeeded(self, key: str, sample: MetricSample) -> None:
        self._due[key] = self._clock.monotonic() + self.settings.interval_s
        self._metrics.set_sampler_state(key, SamplerState(SamplerStatus.OK, sample.error or "", sample.time))

    def _failed(self, key: str, message: str) -> None:
        before = self._metrics.sampler_state(key) or SamplerState()
        failures = before.failures + 1
        delay = self.settings.backoff(failures)
        self._due[key] = self._clock.monotonic() + delay
        now = self._clock.now()
        self._metrics.set_sampler_state(key, SamplerState(SamplerStatus.FAILED, message, before.last_sample_at,
                                                          now + delay, failures))
        self._bus.publish(MetricsSampled(now, (key,)))  # the instance's state changed: views repaint it


def has_gpu_readings(sample: MetricSample | None) -> bool:
    """Whether a provider's sample says anything about the GPUs (utilisation or memory)."""
    return sample is not None and bool(known(sample.gpu_util) or known(sample.vram_used_gb))
