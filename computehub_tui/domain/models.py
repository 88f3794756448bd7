"""Provider-neutral models: offers, instances, metric samples, capabilities and launch requests."""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

PROVIDER_NAMES: tuple[str, ...] = ("vast", "runpod", "lambda", "tensordock")
"""Every provider we know, in display order. Instance keys are ``provider:id``."""

PROVIDER_TITLES: dict[str, str] = {
    "vast": "Vast.ai",
    "runpod": "RunPod",
    "lambda": "Lambda",
    "tensordock": "TensorDock",
}


class PricingKind(str, Enum):
    """How an offer is billed: a guaranteed machine or one that can be taken back."""

    ON_DEMAND = "on-demand"
    INTERRUPTIBLE = "interruptible"


class InstanceStatus(str, Enum):
    """Our normalised lifecycle; each adapter maps its provider's raw status onto this."""

    PROVISIONING = "provisioning"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    EXITED = "exited"
    ERROR = "error"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"

    @property
    def is_billing_compute(self) -> bool:
        """True while the provider charges the full hourly GPU price."""
        return self in (InstanceStatus.PROVISIONING, InstanceStatus.STARTING, InstanceStatus.RUNNING)

    @property
    def is_transitional(self) -> bool:
        return self in (InstanceStatus.PROVISIONING, InstanceStatus.STARTING)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; shown to the user before an action so there are no surprises."""

    can_stop: bool = True
    can_restart: bool = True
    bills_storage_while_stopped: bool = False
    interruptible: bool = False
    logs: bool = False
    live_metrics: bool = False
    custom_image: bool = True
    """Launches run the image the user picks (Lambda boots Lambda Stack, TensorDock an Ubuntu VM)."""
    custom_disk: bool = True
    """The user picks the disk size (Lambda's comes with the instance type)."""
    notes: tuple[str, ...] = ()
    """Plain-language caveats, e.g. "no stop — terminate only"."""


@dataclass(frozen=True, slots=True)
class Offer:
    """One rentable configuration at a quoted price.

    ``price_hour`` is all-in for the whole offer (every GPU, with disk at the planned size).
    ``quoted_at`` is a Unix timestamp in seconds.
    """

    provider: str
    offer_id: str
    gpu: str
    gpu_count: int
    vram_gb: float
    vcpus: float
    ram_gb: float
    disk_gb: float
    price_hour: float
    pricing: PricingKind
    location: str
    reliability: float | None
    available: bool
    quoted_at: float
    country: str = ""
    cuda: float | None = None
    inet_down_mbps: float | None = None
    storage_gb_month: float | None = None
    """Storage price in $/GB/month where the provider quotes one (it keeps billing when stopped)."""
    min_bid: float | None = None
    raw_gpu_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Provider-specific details an adapter needs to launch this offer again."""

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.offer_id}"

    @property
    def price_per_gpu_hour(self) -> float:
        return self.price_hour / self.gpu_count if self.gpu_count else self.price_hour

    @property
    def total_vram_gb(self) -> float:
        return self.vram_gb * self.gpu_count

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape printed by ``computehub-tui offers --json``."""
        return {
            "provider": self.provider,
            "offer_id": self.offer_id,
            "gpu": self.gpu,
            "gpu_count": self.gpu_count,
            "vram_gb": round(self.vram_gb, 1),
            "vcpus": self.vcpus,
            "ram_gb": round(self.ram_gb, 1),
            "disk_gb": round(self.disk_gb, 1),
            "price_hour": round(self.price_hour, 4),
            "price_per_gpu_hour": round(self.price_per_gpu_hour, 4),
            "pricing": self.pricing.value,
            "location": self.location,
            "reliability": None if self.reliability is None else round(self.reliability, 4),
            "available": self.available,
            "quoted_at": iso_utc(self.quoted_at),
        }


@dataclass(frozen=True, slots=True)
class SshEndpoint:
    """Where to SSH. Build it from provider data with ``parse``, which refuses anything that is
    not a plain host name or IP, a port and a user name, so the command is safe to paste."""

    host: str
    port: int
    user: str = "root"

    @classmethod
    def parse(cls, host: object, port: object, user: object = "root") -> SshEndpoint | None:
        """A validated endpoint, or None if any part could smuggle in shell or ssh options."""
        clean_host = valid_host(host)
        clean_port = valid_port(port)
        if clean_host is None or clean_port is None or not isinstance(user, str):
            return None
        if not _SSH_USER.fullmatch(user):
            return None
        return cls(clean_host, clean_port, user)

    @property
    def command(self) -> str:
        """A ready-to-run command line."""
        return shlex.join(self.argv)

    @property
    def argv(self) -> list[str]:
        return ["ssh", "-p", str(self.port), f"{self.user}@{self.host}"]


_SSH_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def valid_host(value: object) -> str | None:
    """An IPv4 or IPv6 address (without brackets) or an RFC 1123 host name, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip(" ")  # anything but a plain space around it is a reason to refuse
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:  # an IPv6 zone ("%eth0") may hold any text at all
        return None if "%" in text else str(address)
    name = text.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():  # "1.2.3.999" is a broken address, not a name
        return None
    return name


def valid_port(value: object) -> int | None:
    """A TCP/UDP port 1..65535 given as a whole number or its digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 5:
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 65535 else None


def public_address(host: object, port: object) -> str | None:
    """``"host:port"`` (``"[v6]:port"``) for a validated host and port, else None."""
    clean_host, clean_port = valid_host(host), valid_port(port)
    if clean_host is None or clean_port is None:
        return None
    return f"[{clean_host}]:{clean_port}" if ":" in clean_host else f"{clean_host}:{clean_port}"


MetricSource = Literal["provider", "ssh"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One reading of an instance's live usage. Per-GPU tuples are aligned by GPU position (index); a GPU
    whose reading is unknown holds None there, and the helpers below leave unknown out (never 0)."""

    time: float
    gpu_util: tuple[float | None, ...] = ()
    vram_used_gb: tuple[float | None, ...] = ()
    """GiB (MiB / 1024), the unit a "24 GB" card is sold in; the same for ``vram_total_gb``."""
    vram_total_gb: tuple[float | None, ...] = ()
    gpu_temp_c: tuple[float | None, ...] = ()
    cpu_pct: float | None = None
    ram_pct: float | None = None
    gpu_power_w: tuple[float | None, ...] = ()
    gpu_names: tuple[str, ...] = ()
    """Per-GPU model names where the source reports them (nvidia-smi), already made safe."""
    source: MetricSource = "provider"
    """Where it came from: the provider's API, or nvidia-smi over SSH."""
    error: str | None = None
    """What a partial sample is missing (e.g. "GPU 1 unreadable"), one safe line."""

    @property
    def mean_gpu_util(self) -> float | None:
        return _mean(known(self.gpu_util))

    @property
    def vram_pct(self) -> float | None:
        pairs = [(used, total) for used, total in zip(self.vram_used_gb, self.vram_total_gb, strict=False)
                 if used is not None and total is not None]
        total = sum(total for _, total in pairs)
        if not pairs or total <= 0:
            return None
        return 100.0 * sum(used for used, _ in pairs) / total

    @property
    def max_gpu_temp(self) -> float | None:
        temps = known(self.gpu_temp_c)
        return max(temps) if temps else None

    @property
    def total_power_w(self) -> float | None:
        """Sum over the GPUs whose draw is known; None if none is."""
        draws = known(self.gpu_power_w)
        return sum(draws) if draws else None

    @property
    def gpu_count(self) -> int:
        return max(len(self.gpu_util), len(self.vram_used_gb), len(self.vram_total_gb), len(self.gpu_temp_c),
                   len(self.gpu_power_w), len(self.gpu_names))


def known(values: tuple[float | None, ...]) -> list[float]:
    """The readings that are known, in order."""
    return [value for value in values if value is not None]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True, slots=True)
class Instance:
    """A machine on a bound account, whoever created it."""

    provider: str
    instance_id: str
    label: str
    status: InstanceStatus
    provider_status: str
    gpu: str
    gpu_count: int
    price_hour: float
    ssh: SshEndpoint | None = None
    ports: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Container port ("8888/tcp") to public "host:port"."""
    started_at: float | None = None
    running_since: float | None = None
    """When the current run began, as the provider reports it (RunPod's uptime, Vast's
    ``uptime_mins``); None where the provider does not say. Seeds uptime for a machine first
    seen already running."""
    location: str = ""
    image: str = ""
    metrics: MetricSample | None = None
    storage_price_hour: float = 0.0
    """What the instance still costs per hour while stopped (disk), where known."""
    status_message: str = ""
    pricing: PricingKind | None = None
    """On-demand or interruptible, as the provider's instance payload says; None where it does not say."""

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.instance_id}"

    @property
    def current_price_hour(self) -> float:
        """What this instance costs right now given its status: ``price_hour`` (compute, all-in) while it
        provisions, starts or runs; ``storage_price_hour`` while stopped; nothing once gone. The one
        definition every view, the burn rate and cost accrual use."""
        if self.status.is_billing_compute:
            return self.price_hour
        if self.status in (InstanceStatus.STOPPED, InstanceStatus.EXITED):
            return self.storage_price_hour
        return 0.0

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape printed by ``computehub-tui instances --json``."""
        return {
            "provider": self.provider,
            "id": self.key,
            "label": self.label,
            "status": self.status.value,
            "provider_status": self.provider_status,
            "gpu": self.gpu,
            "gpu_count": self.gpu_count,
            "price_hour": round(self.price_hour, 4),
            "current_price_hour": round(self.current_price_hour, 4),
            "ssh": self.ssh.command if self.ssh else None,
            "gpu_util": list(self.metrics.gpu_util) if self.metrics and self.metrics.gpu_util else None,
            "started_at": iso_utc(self.started_at) if self.started_at else None,
        }


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything a user chose in the launch dialog, independent of provider."""

    image: str
    disk_gb: int = 20
    label: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ("22/tcp",)
    """Container ports as ``"8888/http"`` or ``"22/tcp"``."""
    onstart: str = ""
    jupyter: bool = False
    bid_price: float | None = None
    """Set for an interruptible launch: the $/h bid for the whole offer."""
    ssh_key_name: str = ""
    template: str = "custom"


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """What to ask each provider for; adapters translate it to their own filters."""

    gpus: tuple[str, ...] = ()
    """Canonical GPU names; empty means all."""
    min_gpu_count: int = 1
    max_price_hour: float | None = None
    min_vram_gb: float | None = None
    min_reliability: float = 0.95
    pricing: tuple[PricingKind, ...] = (PricingKind.ON_DEMAND, PricingKind.INTERRUPTIBLE)
    disk_gb: int = 20
    """The disk the user plans to rent; prices are quoted all-in at this size."""
    countries: tuple[str, ...] = ()
    limit: int = 5000

    def matches(self, offer: Offer) -> bool:
        """Client-side check for providers whose APIs cannot filter (or filter loosely).

        "A100" asks for every A100 variant; "A100 SXM" asks for exactly that one.
        """
        if offer.gpu_count < self.min_gpu_count:
            return False
        if self.gpus and not any(offer.gpu == g or offer.gpu.startswith(f"{g} ") for g in self.gpus):
            return False
        if self.max_price_hour is not None and offer.price_hour > self.max_price_hour:
            return False
        if self.min_vram_gb is not None and offer.vram_gb < self.min_vram_gb:
            return False
        return not self.countries or offer.country.upper() in {c.upper() for c in self.countries}


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")
