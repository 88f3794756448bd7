"""Private codec between domain objects and the compact text and packed bytes the store keeps in its columns."""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

from computehub_tui.domain import bounds
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample, PricingKind, SshEndpoint

SNAPSHOT_FORMAT = 1
"""Bumped when the snapshot shape changes incompatibly; older snapshots stay decodable."""


class SnapshotDecodeError(ValueError):
    """A stored snapshot is not one this code can turn back into a domain object."""


def encode_instance(instance: Instance) -> str:
    """JSON for an instance's last known state, minus live metrics (they have their own table)."""
    snapshot: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "provider": instance.provider,
        "instance_id": instance.instance_id,
        "label": instance.label,
        "status": instance.status.value,
        "provider_status": instance.provider_status,
        "gpu": instance.gpu,
        "gpu_count": instance.gpu_count,
        "price_hour": instance.price_hour,
        "ssh": _encode_ssh(instance.ssh),
        "ports": dict(instance.ports),
        "started_at": instance.started_at,
        "running_since": instance.running_since,
        "location": instance.location,
        "image": instance.image,
        "storage_price_hour": instance.storage_price_hour,
        "status_message": instance.status_message,
        "pricing": instance.pricing.value if instance.pricing else None,
    }
    return _compact_json(snapshot)


def decode_instance(text: str) -> Instance:
    try:
        snapshot = json.loads(text)
        return Instance(
            provider=str(snapshot["provider"]),
            instance_id=str(snapshot["instance_id"]),
            label=str(snapshot.get("label", "")),
            status=_decode_status(snapshot.get("status")),
            provider_status=str(snapshot.get("provider_status", "")),
            gpu=str(snapshot.get("gpu", "")),
            gpu_count=int(snapshot.get("gpu_count", 0)),
            price_hour=float(snapshot.get("price_hour", 0.0)),
            ssh=_decode_ssh(snapshot.get("ssh")),
            ports={str(k): str(v) for k, v in (snapshot.get("ports") or {}).items()},
            started_at=_optional_float(snapshot.get("started_at")),
            running_since=_optional_float(snapshot.get("running_since")),
            location=str(snapshot.get("location", "")),
            image=str(snapshot.get("image", "")),
            storage_price_hour=float(snapshot.get("storage_price_hour", 0.0)),
            status_message=str(snapshot.get("status_message", "")),
            pricing=PricingKind(snapshot["pricing"]) if snapshot.get("pricing") else None,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SnapshotDecodeError(f"unreadable instance snapshot: {error}") from error


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: cheap as a cache key
class Reading:
    """How one kind of reading is packed: a little-endian unsigned integer (struct ``code``) counting
    1/``scale`` steps up from ``low``. A value outside ``[low, high]`` (or NaN) is absurd, as
    ``domain.bounds`` says, so it is kept as unknown: the code's largest integer, never 0."""

    code: str
    scale: int
    low: float
    high: float
    unknown: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unknown", 2 ** (8 * struct.calcsize(self.code)) - 1)

    def units(self, value: float | None) -> int:
        # NaN fails both comparisons, and so is unknown too.
        if value is None or not self.low <= value <= self.high:
            return self.unknown
        return round((value - self.low) * self.scale)

    def value(self, units: int) -> float | None:
        return None if units == self.unknown else self.low + units / self.scale


PERCENT = Reading("H", 10, 0.0, bounds.MAX_PERCENT)
CPU_PERCENT = Reading("I", 10, 0.0, bounds.MAX_CPU_PERCENT)
VRAM = Reading("I", 1024, 0.0, bounds.MAX_VRAM_GB_PER_GPU)
"""GiB kept as whole MiB."""
TEMPERATURE = Reading("B", 1, bounds.MIN_TEMPERATURE_C, bounds.MAX_TEMPERATURE_C)
POWER = Reading("H", 10, 0.0, bounds.MAX_GPU_POWER_W)

Layout = tuple[Reading, ...]
Units = tuple[tuple[int, ...], ...]
"""Per series (one per ``Layout`` entry), its integers in order: per GPU, or one for a host figure."""

SAMPLE_LAYOUT: Layout = (PERCENT, VRAM, VRAM, TEMPERATURE, POWER, CPU_PERCENT, PERCENT)
"""A raw sample's readings: gpu_util, vram_used_gb, vram_total_gb, gpu_temp_c, gpu_power_w, then cpu_pct and
ram_pct (one value each)."""


StatKind = Literal["mean", "max"]


@dataclass(frozen=True, slots=True)
class RolledStat:
    """One figure a rollup row keeps: ``kind`` of the raw sample series at position ``raw`` of
    ``SAMPLE_LAYOUT`` (per GPU, or one value for CPU and RAM)."""

    name: str
    raw: int
    kind: StatKind


ROLLED_STATS: tuple[RolledStat, ...] = (
    RolledStat("gpu_util_mean", 0, "mean"),
    RolledStat("gpu_util_max", 0, "max"),
    RolledStat("vram_used_mean", 1, "mean"),
    RolledStat("vram_used_max", 1, "max"),
    RolledStat("vram_total", 2, "max"),
    RolledStat("gpu_temp_mean", 3, "mean"),
    RolledStat("gpu_temp_max", 3, "max"),
    RolledStat("power_mean", 4, "mean"),
    RolledStat("power_max", 4, "max"),
    RolledStat("cpu_pct", 5, "mean"),
    RolledStat("ram_pct", 6, "mean"),
)
"""Means and maxima are over known readings only: a GPU never known in a bucket stays unknown, never 0."""
ROLLUP_LAYOUT: Layout = tuple(SAMPLE_LAYOUT[stat.raw] for stat in ROLLED_STATS)
"""How a rollup row's ``stats`` are packed: one series per ``ROLLED_STATS`` entry, in its order."""


class MetricDecodeError(ValueError):
    """Stored readings that do not match their layout (the file was damaged or edited)."""


def pack(layout: Layout, units: Units) -> bytes:
    """One byte per series with its length (at most ``MAX_GPUS_PER_MACHINE``), then every integer."""
    series = [values[: bounds.MAX_GPUS_PER_MACHINE] for values in units]
    lengths = tuple(len(values) for values in series)
    return bytes(lengths) + _struct_of(layout, lengths).pack(*chain.from_iterable(series))


def unpack(layout: Layout, blob: bytes) -> Units:
    lengths = tuple(blob[: len(layout)])
    try:
        flat = _struct_of(layout, lengths).unpack_from(blob, len(layout))
    except (struct.error, ValueError) as error:
        raise MetricDecodeError(f"unreadable metric readings: {error}") from error
    series = []
    position = 0
    for length in lengths:
        series.append(flat[position:position + length])
        position += length
    return tuple(series)


def to_units(layout: Layout, values: Sequence[Sequence[float | None]]) -> Units:
    return tuple(tuple(map(reading.units, series)) for reading, series in zip(layout, values, strict=True))


def to_values(layout: Layout, units: Units) -> tuple[tuple[float | None, ...], ...]:
    return tuple(tuple(map(reading.value, series)) for reading, series in zip(layout, units, strict=True))


@functools.lru_cache(maxsize=512)
def _struct_of(layout: Layout, lengths: tuple[int, ...]) -> struct.Struct:
    if len(lengths) != len(layout):
        raise MetricDecodeError("unreadable metric readings: header cut short")
    return struct.Struct("<" + "".join(f"{length}{reading.code}" for reading, length in zip(layout, lengths,
                                                                                           strict=True)))


MetricRow = tuple[int, bytes, str | None, str | None, str | None]
"""(at in integer milliseconds, packed readings, GPU names as JSON, source, error); the last three are None
when empty (and the source when it is the provider): a NULL costs no bytes in a row. The store keeps each list
of names once and rows carry its integer."""


def time_ms(seconds: float) -> int:
    return round(seconds * 1000)


def encode_metric_sample(sample: MetricSample) -> MetricRow:
    readings = (sample.gpu_util, sample.vram_used_gb, sample.vram_total_gb, sample.gpu_temp_c, sample.gpu_power_w,
                (sample.cpu_pct,), (sample.ram_pct,))
    return (
        time_ms(sample.time),
        pack(SAMPLE_LAYOUT, to_units(SAMPLE_LAYOUT, readings)),
        _compact_json(list(sample.gpu_names)) if sample.gpu_names else None,
        None if sample.source == "provider" else sample.source,
        sample.error,
    )


def decode_metric_sample(row: Sequence[Any]) -> MetricSample:
    at, readings, names, source, error = row
    util, vram_used, vram_total, temp, power, (cpu,), (ram,) = to_values(SAMPLE_LAYOUT,
                                                                         unpack(SAMPLE_LAYOUT, readings))
    return MetricSample(
        time=at / 1000,
        gpu_util=util,
        vram_used_gb=vram_used,
        vram_total_gb=vram_total,
        gpu_temp_c=temp,
        cpu_pct=cpu,
        ram_pct=ram,
        gpu_power_w=power,
        gpu_names=tuple(str(name) for name in json.loads(names or "[]")),
        source="ssh" if source == "ssh" else "provider",
        error=None if error is None else str(error),
    )


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode_ssh(ssh: SshEndpoint | None) -> dict[str, Any] | None:
    if ssh is None:
        return None
    return {"host": ssh.host, "port": ssh.port, "user": ssh.user}


def _decode_ssh(value: Any) -> SshEndpoint | None:
    if value is None:
        return None
    return SshEndpoint(
        host=str(value["host"]), port=int(value["port"]), user=str(value.get("user", "root"))
    )


def _decode_status(value: Any) -> InstanceStatus:
    # A snapshot written by a newer version may carry a status this code does not know yet.
    try:
        return InstanceStatus(value)
    except ValueError:
        return InstanceStatus.UNKNOWN


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
