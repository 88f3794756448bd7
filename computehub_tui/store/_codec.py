"""Private codec between domain objects and the compact text the store keeps in its columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample, SshEndpoint

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
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SnapshotDecodeError(f"unreadable instance snapshot: {error}") from error


MetricRow = tuple[float, str, str, str, str, float | None, float | None, str | None, str | None, str | None,
                  str | None]
"""(at, gpu_util, vram_used_gb, vram_total_gb, gpu_temp_c, cpu_pct, ram_pct, gpu_power_w, gpu_names, source,
error) as stored; the last four are NULL when empty (and the source when it is the provider)."""


def encode_metric_sample(sample: MetricSample) -> MetricRow:
    return (
        sample.time,
        encode_floats(sample.gpu_util),
        encode_floats(sample.vram_used_gb),
        encode_floats(sample.vram_total_gb),
        encode_floats(sample.gpu_temp_c),
        sample.cpu_pct,
        sample.ram_pct,
        encode_floats(sample.gpu_power_w) if sample.gpu_power_w else None,
        _compact_json(list(sample.gpu_names)) if sample.gpu_names else None,
        None if sample.source == "provider" else sample.source,
        sample.error,
    )


def decode_metric_sample(row: Sequence[Any]) -> MetricSample:
    at, gpu_util, vram_used, vram_total, gpu_temp, cpu_pct, ram_pct, power, names, source, error = row
    return MetricSample(
        time=float(at),
        gpu_util=decode_floats(gpu_util),
        vram_used_gb=decode_floats(vram_used),
        vram_total_gb=decode_floats(vram_total),
        gpu_temp_c=decode_floats(gpu_temp),
        cpu_pct=_optional_float(cpu_pct),
        ram_pct=_optional_float(ram_pct),
        gpu_power_w=decode_floats(power),
        gpu_names=tuple(str(name) for name in json.loads(names or "[]")),
        source="ssh" if source == "ssh" else "provider",
        error=None if error is None else str(error),
    )


def encode_floats(values: Sequence[float | None]) -> str:
    """Per-GPU readings as a compact JSON array (``[97.5,12]``)."""
    return _compact_json(list(values))


def decode_floats(text: str | None) -> tuple[float | None, ...]:
    if not text:
        return ()
    return tuple(None if value is None else float(value) for value in json.loads(text))


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
