"""The ``metrics`` command: the latest sample of one instance, from its provider or fresh over SSH."""

from __future__ import annotations

import argparse
from typing import Any

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK
from computehub_tui.cli.output import Column, fail, out, print_json, table, warn
from computehub_tui.cli.session import fresh_instance
from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus, MetricSample, iso_utc
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.ssh_sampler import SampleFailed, has_gpu_readings
from computehub_tui.wiring import Session

GPU_COLUMNS = (Column("GPU", right=True), Column("NAME", 32), Column("UTIL", right=True),
               Column("VRAM GiB", right=True), Column("TEMP", right=True), Column("POWER", right=True))


class NoSample(Exception):
    """No sample can be had; ``str(error)`` says why and what to do."""


async def metrics(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    instance = await fresh_instance(args.instance_id, session)
    try:
        sample = await latest_sample(hub, instance)
    except NoSample as error:
        return fail(str(error), EXIT_FAILED)
    if args.json:
        print_json(sample_json(instance, sample))
        return EXIT_OK
    for line in _text(instance, sample):
        out(line)
    if sample.error:
        warn(f"partial sample: {sample.error}")
    return EXIT_OK


async def latest_sample(hub: Hub, instance: Instance) -> MetricSample:
    """The provider's sample where it reports GPU readings, else a fresh one over SSH where that is on."""
    if instance.status is not InstanceStatus.RUNNING:
        raise NoSample(f"{instance.key} is {instance.status.value}: metrics are sampled only while it runs")
    reported = instance.metrics
    has_api = hub.capabilities(instance.provider).live_metrics
    if has_api and reported is not None and has_gpu_readings(reported):
        return reported
    if hub.ssh_sampler.covers(instance.provider):
        try:
            return await hub.sample_over_ssh(instance.key)
        except SampleFailed as error:
            raise NoSample(f"{instance.key}: {error}") from None
    if has_api and reported is not None:
        return reported
    title = PROVIDER_TITLES[instance.provider]
    what = "reported no metrics for it" if has_api else "has no metrics API"
    raise NoSample(f"{instance.key}: {title} {what} and SSH sampling is off for {instance.provider}: add it to "
                   f"[monitor] ssh_providers (e.g. COMPUTEHUB_MONITOR_SSH_PROVIDERS={instance.provider})")


def sample_json(instance: Instance, sample: MetricSample) -> dict[str, Any]:
    """The stable JSON shape of ``metrics --json``: unknown values null, VRAM in GiB."""
    return {
        "instance": instance.key,
        "at": iso_utc(sample.time),
        "source": sample.source,
        "gpus": [_gpu_json(instance, sample, index) for index in range(sample.gpu_count)],
        "cpu_pct": _rounded(sample.cpu_pct, 1),
        "ram_pct": _rounded(sample.ram_pct, 1),
        "error": sample.error,
    }


def _gpu_json(instance: Instance, sample: MetricSample, index: int) -> dict[str, Any]:
    return {
        "index": index,
        "name": _at(sample.gpu_names, index) or clean_text(instance.gpu),
        "util_pct": _rounded(_at(sample.gpu_util, index), 1),
        "vram_used_gb": _rounded(_at(sample.vram_used_gb, index), 3),
        "vram_total_gb": _rounded(_at(sample.vram_total_gb, index), 3),
        "temp_c": _rounded(_at(sample.gpu_temp_c, index), 1),
        "power_w": _rounded(_at(sample.gpu_power_w, index), 1),
    }


def _text(instance: Instance, sample: MetricSample) -> list[str]:
    via = "over SSH (nvidia-smi)" if sample.source == "ssh" else f"from {PROVIDER_TITLES[instance.provider]}"
    lines = [f"{instance.key}  {clean_text(instance.label) or '-'}  {via} at {iso_utc(sample.time)}"]
    rows = []
    for gpu in (_gpu_json(instance, sample, index) for index in range(sample.gpu_count)):
        used, total = gpu["vram_used_gb"], gpu["vram_total_gb"]
        rows.append([str(gpu["index"]), gpu["name"], _shown(gpu["util_pct"], "%"),
                     f"{_shown(used, '', 1)} / {_shown(total, '', 1)}", _shown(gpu["temp_c"], "°C"),
                     _shown(gpu["power_w"], " W")])
    lines += table(GPU_COLUMNS, rows) if rows else ["(no GPU readings)"]
    lines.append(f"CPU {_shown(sample.cpu_pct, '%')}  RAM {_shown(sample.ram_pct, '%')}")
    return lines


def _at(values: tuple[Any, ...], index: int) -> Any:
    return values[index] if index < len(values) else None


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _shown(value: float | None, unit: str, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"
