"""The simulated GPU marketplace behind demo mode: catalogues, drifting prices, instance lifecycles.

Provider-neutral. The wire-format handlers next to this module render its state in each
provider's real API shapes, so the real adapters run unchanged against it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import string
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from computehub_tui.domain.gpus import canonical_gpu_name
from computehub_tui.providers.demo.traces import GpuReading, TraceKind, gpu_reading, noise

if TYPE_CHECKING:
    from computehub_tui.clock import Clock

DEFAULT_SEED = 42
KEEP_DESTROYED_S = 3600.0
"""How long a destroyed instance stays in the saved world (handlers show them for a few seconds)."""
PRICE_PERIOD_S = 6 * 3600.0
QUOTE_BUCKET_S = 600.0


class WorldStateError(ValueError):
    """A saved demo world that this code cannot restore (damaged, or from an incompatible version)."""


class SimError(Exception):
    """A request the simulated provider refuses; ``code`` is neutral, handlers phrase it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- catalogues -----------------------------------------------------------------------------

# Vast spelling, VRAM MB, per-GPU $/h range, weight, typical counts
_VAST_GPUS: tuple[tuple[str, int, float, float, int, tuple[int, ...]], ...] = (
    ("RTX 4090", 24564, 0.28, 0.55, 30, (1, 1, 1, 2, 2, 4, 8)),
    ("RTX 3090", 24576, 0.14, 0.30, 18, (1, 1, 2, 2, 4, 8)),
    ("RTX 5090", 32607, 0.55, 0.90, 7, (1, 1, 2, 4, 8)),
    ("RTX A6000", 49140, 0.38, 0.65, 6, (1, 2, 4, 8)),
    ("RTX 6000Ada", 49140, 0.70, 1.00, 3, (1, 2, 4, 8)),
    ("RTX A5000", 24564, 0.16, 0.30, 3, (1, 2, 4)),
    ("RTX A4000", 16376, 0.10, 0.20, 2, (1, 2, 4)),
    ("RTX 4080S", 16376, 0.17, 0.30, 3, (1, 2)),
    ("RTX 3080", 10240, 0.07, 0.16, 3, (1, 2, 4)),
    ("A100 SXM4", 81920, 0.85, 1.45, 5, (1, 2, 4, 8, 8)),
    ("A100 PCIE", 81920, 0.75, 1.25, 4, (1, 1, 2, 4, 8)),
    ("H100 SXM", 81559, 1.65, 2.60, 6, (1, 2, 8, 8)),
    ("H100 PCIE", 81559, 1.45, 2.20, 3, (1, 2, 4)),
    ("H100 NVL", 95830, 1.90, 2.70, 1, (1, 2, 4)),
    ("H200", 143771, 2.40, 3.50, 2, (1, 8, 8)),
    ("L40S", 46068, 0.58, 0.95, 4, (1, 2, 4, 8)),
    ("L40", 46068, 0.50, 0.85, 1, (1, 2, 4)),
    ("A40", 46068, 0.32, 0.55, 2, (1, 2, 4, 8)),
    ("Tesla V100", 32768, 0.14, 0.30, 2, (1, 2, 4, 8)),
    ("Q RTX 8000", 49152, 0.28, 0.45, 1, (1, 2, 4)),
    ("Tesla T4", 15360, 0.07, 0.15, 1, (1, 2, 4)),
    ("L4", 23034, 0.24, 0.40, 1, (1, 2, 4)),
    ("B200", 183359, 3.40, 5.00, 1, (8,)),
)

_VAST_PLACES: tuple[str, ...] = (
    "Texas, US", "California, US", "Virginia, US", "Oregon, US", "Quebec, CA", "Ontario, CA",
    "Oslo, NO", "Bavaria, DE", "Hesse, DE", "North Holland, NL", "Stockholm, SE", "Helsinki, FI",
    "Prague, CZ", "Warsaw, PL", "Bucharest, RO", "Budapest, HU", "Madrid, ES", "Tokyo, JP",
    "Seoul, KR", "Taipei, TW", "Singapore, SG", "Tel Aviv, IL", "Sydney, AU", "Sao Paulo, BR",
)


@dataclass(frozen=True, slots=True)
class VastAsk:
    """One rentable Vast machine offer (a bundle)."""

    ask_id: int
    machine_id: int
    host_id: int
    gpu_name: str
    num_gpus: int
    gpu_ram_mb: int
    cpu_cores: int
    cpu_cores_effective: float
    cpu_ram_mb: int
    disk_space_gb: float
    base_dph: float
    """Compute-only $/h for the whole offer before drift."""
    storage_cost: float
    """$/GB/month."""
    reliability: float
    geolocation: str
    cuda_max_good: float
    driver_version: str
    inet_down: float
    inet_up: float
    inet_down_cost: float
    inet_up_cost: float
    verified: bool
    hosting_type: int
    direct_port_count: int
    total_flops: float
    dlperf: float
    compute_cap: int


@dataclass(frozen=True, slots=True)
class RunpodGpuType:
    gpu_type_id: str
    display_name: str
    memory_gb: int
    secure_price: float | None
    community_price: float | None
    max_gpu_count: int
    manufacturer: str = "Nvidia"

    @property
    def secure_spot_price(self) -> float | None:
        return None if self.secure_price is None else round(self.secure_price * 0.55, 2)

    @property
    def community_spot_price(self) -> float | None:
        return None if self.community_price is None else round(self.community_price * 0.5, 2)


_RUNPOD_TYPES: tuple[RunpodGpuType, ...] = (
    RunpodGpuType("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, 8),
    RunpodGpuType("NVIDIA GeForce RTX 5090", "RTX 5090", 32, 0.94, 0.69, 8),
    RunpodGpuType("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.43, 0.22, 8),
    RunpodGpuType("NVIDIA RTX A6000", "RTX A6000", 48, 0.76, 0.49, 8),
    RunpodGpuType("NVIDIA RTX A5000", "RTX A5000", 24, 0.27, 0.16, 8),
    RunpodGpuType("NVIDIA RTX A4000", "RTX A4000", 16, 0.25, 0.17, 8),
    RunpodGpuType("NVIDIA RTX 4000 Ada Generation", "RTX 4000 Ada", 20, 0.26, 0.20, 8),
    RunpodGpuType("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, 0.88, 0.74, 8),
    RunpodGpuType("NVIDIA L40S", "L40S", 48, 0.86, 0.79, 8),
    RunpodGpuType("NVIDIA L40", "L40", 48, 0.99, 0.69, 8),
    RunpodGpuType("NVIDIA L4", "L4", 24, 0.43, None, 8),
    RunpodGpuType("NVIDIA A40", "A40", 48, 0.44, 0.35, 8),
    RunpodGpuType("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19, 8),
    RunpodGpuType("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.74, 1.39, 8),
    RunpodGpuType("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.39, 1.99, 8),
    RunpodGpuType("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.99, 2.69, 8),
    RunpodGpuType("NVIDIA H100 NVL", "H100 NVL", 94, 2.79, 2.59, 8),
    RunpodGpuType("NVIDIA H200", "H200 SXM", 141, 3.99, 3.59, 8),
    RunpodGpuType("NVIDIA B200", "B200", 180, 5.99, None, 8),
    RunpodGpuType("AMD Instinct MI300X OAM", "MI300X", 192, 2.49, None, 8, "AMD"),
    RunpodGpuType("Tesla V100-SXM2-32GB", "V100 SXM2 32GB", 32, None, 0.29, 8),
)

RUNPOD_DATACENTERS: tuple[tuple[str, str], ...] = (
    ("US-TX-3", "US"), ("US-CA-2", "US"), ("US-GA-1", "US"), ("CA-MTL-1", "CA"),
    ("EU-RO-1", "RO"), ("EU-SE-1", "SE"), ("EU-NL-1", "NL"), ("EUR-IS-1", "IS"), ("AP-JP-1", "JP"),
)


@dataclass(frozen=True, slots=True)
class LambdaType:
    name: str
    description: str
    gpu_description: str
    price_cents: int
    vcpus: int
    memory_gib: int
    storage_gib: int
    gpus: int


_LAMBDA_TYPES: tuple[LambdaType, ...] = (
    LambdaType("gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1),
    LambdaType("gpu_1x_rtx6000", "1x RTX 6000 (24 GB)", "RTX 6000 (24 GB)", 50, 14, 46, 512, 1),
    LambdaType("gpu_1x_a6000", "1x A6000 (48 GB)", "A6000 (48 GB)", 80, 14, 100, 512, 1),
    LambdaType("gpu_2x_a6000", "2x A6000 (48 GB)", "A6000 (48 GB)", 160, 28, 200, 1024, 2),
    LambdaType("gpu_4x_a6000", "4x A6000 (48 GB)", "A6000 (48 GB)", 320, 56, 400, 2048, 4),
    LambdaType("gpu_1x_a100", "1x A100 (40 GB PCIe)", "A100 (40 GB PCIe)", 129, 30, 200, 512, 1),
    LambdaType("gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 200, 512, 1),
    LambdaType("gpu_8x_a100_80gb_sxm4", "8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 20480, 8),
    LambdaType("gpu_1x_h100_pcie", "1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1024, 1),
    LambdaType("gpu_1x_h100_sxm5", "1x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 329, 26, 225, 2816, 1),
    LambdaType("gpu_2x_h100_sxm5", "2x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 658, 52, 450, 5632, 2),
    LambdaType("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 22528, 8),
    LambdaType("gpu_1x_gh200", "1x GH200 (96 GB)", "GH200 (96 GB)", 149, 64, 432, 4096, 1),
    LambdaType("gpu_8x_v100", "8x Tesla V100 (16 GB)", "Tesla V100 (16 GB)", 440, 88, 448, 6041, 8),
    LambdaType("gpu_8x_b200_sxm6", "8x B200 (180 GB SXM6)", "B200 (180 GB SXM6)", 4792, 208, 2900, 22528, 8),
)

LAMBDA_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-east-1", "Virginia, USA"), ("us-west-1", "California, USA"), ("us-west-2", "Arizona, USA"),
    ("us-west-3", "Utah, USA"), ("us-south-1", "Texas, USA"), ("us-midwest-1", "Illinois, USA"),
    ("europe-central-1", "Germany"), ("asia-northeast-1", "Tokyo, Japan"), ("me-west-1", "Israel"),
)


@dataclass(frozen=True, slots=True)
class TensordockGpu:
    v0_name: str
    display_name: str
    max_count: int
    price_per_hr: float
    vram_gb: int


@dataclass(frozen=True, slots=True)
class TensordockLocation:
    location_id: str
    city: str
    stateprovince: str
    country: str
    tier: int
    gpus: tuple[TensordockGpu, ...]
    per_vcpu_hr: float = 0.003
    per_gb_ram_hr: float = 0.002
    per_gb_storage_hr: float = 0.00005
    max_vcpus: int = 64
    max_ram_gb: int = 256
    max_storage_gb: int = 4000


_TD_GPUS: dict[str, TensordockGpu] = {
    g.v0_name: g
    for g in (
        TensordockGpu("geforcertx4090-pcie-24gb", "NVIDIA GeForce RTX 4090 PCIe 24GB", 8, 0.35, 24),
        TensordockGpu("geforcertx3090-pcie-24gb", "NVIDIA GeForce RTX 3090 PCIe 24GB", 8, 0.20, 24),
        TensordockGpu("rtxa6000-pcie-48gb", "NVIDIA RTX A6000 PCIe 48GB", 8, 0.45, 48),
        TensordockGpu("a100-pcie-80gb", "NVIDIA A100 PCIe 80GB", 8, 1.10, 80),
        TensordockGpu("h100-sxm5-80gb", "NVIDIA H100 SXM5 80GB", 8, 2.25, 80),
        TensordockGpu("l40-pcie-48gb", "NVIDIA L40 PCIe 48GB", 4, 0.80, 48),
        TensordockGpu("v100-pcie-16gb", "NVIDIA V100 PCIe 16GB", 4, 0.18, 16),
    )
}

_TD_LOCATIONS: tuple[tuple[str, str, str, str, int, tuple[str, ...]], ...] = (
    ("1a5b9c2e-0000-4000-8000-000000000001", "Chicago", "Illinois", "United States", 3,
     ("geforcertx4090-pcie-24gb", "rtxa6000-pcie-48gb", "a100-pcie-80gb")),
    ("1a5b9c2e-0000-4000-8000-000000000002", "Dallas", "Texas", "United States", 3,
     ("h100-sxm5-80gb", "a100-pcie-80gb", "l40-pcie-48gb")),
    ("1a5b9c2e-0000-4000-8000-000000000003", "Manchester", "England", "United Kingdom", 2,
     ("geforcertx3090-pcie-24gb", "geforcertx4090-pcie-24gb", "v100-pcie-16gb")),
    ("1a5b9c2e-0000-4000-8000-000000000004", "Frankfurt", "Hesse", "Germany", 3,
     ("rtxa6000-pcie-48gb", "h100-sxm5-80gb")),
    ("1a5b9c2e-0000-4000-8000-000000000005", "Orlando", "Florida", "United States", 1,
     ("geforcertx3090-pcie-24gb", "geforcertx4090-pcie-24gb")),
    ("1a5b9c2e-0000-4000-8000-000000000006", "Montreal", "Quebec", "Canada", 2,
     ("rtxa6000-pcie-48gb", "l40-pcie-48gb", "geforcertx4090-pcie-24gb")),
)


# --- instances ------------------------------------------------------------------------------

INTERRUPTIBLE_SEEDS = frozenset({"sd-webui"})
"""Seeded machines rented as interruptible (a bid at their price), so ``pricing == "interruptible"`` matches one."""


@dataclass
class SimInstance:
    """A simulated rented machine. Its status is computed from its timeline and the clock."""

    provider: str
    instance_id: str
    label: str
    gpu_name: str
    """Spelled the way this provider spells it."""
    gpu_count: int
    vram_gb: float
    price_hour: float
    storage_price_hour: float
    image: str
    disk_gb: int
    location: str
    created_at: float
    run_requested_at: float
    trace: TraceKind
    provisioning_s: float
    loading_s: float
    crash_after_s: float | None = None
    """Seconds of running after which the container exits; None = never."""
    stuck: bool = False
    """Never gets past provisioning."""
    intended: str = "running"
    """What the user asked for: ``running``, ``stopped`` or ``destroyed``."""
    stopped_at: float | None = None
    destroyed_at: float | None = None
    idle_after_s: float = 300.0
    ssh_host: str = ""
    ssh_port: int = 0
    public_ip: str = ""
    bid_price: float | None = None
    ports: tuple[str, ...] = ("22/tcp",)
    env: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    """Provider-specific values a handler wants to remember (offer id, machine id…)."""

    @property
    def gpu(self) -> str:
        return canonical_gpu_name(self.gpu_name)


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What an instance looks like at one moment."""

    status: str
    """provisioning | loading | running | stopped | exited | terminated"""
    seconds_running: float
    """Since the container reached running (0 unless running)."""
    running_since: float | None
    gpus: tuple[GpuReading, ...]
    cpu_pct: float
    ram_pct: float
    status_message: str


class DemoMarket:
    """A seeded, deterministic marketplace that moves with the injected clock."""

    def __init__(self, clock: Clock, seed: int = DEFAULT_SEED, vast_offer_count: int = 3200,
                 seed_instances: bool = True) -> None:
        self.clock = clock
        self.seed = seed
        self._rng = random.Random(seed)
        self._vast_offer_count = vast_offer_count
        self.rented_asks: set[int] = set()
        self.runpod_gpu_types: tuple[RunpodGpuType, ...] = _RUNPOD_TYPES
        self.lambda_types: tuple[LambdaType, ...] = _LAMBDA_TYPES
        self.tensordock_locations: tuple[TensordockLocation, ...] = tuple(
            TensordockLocation(lid, city, state, country, tier, tuple(_TD_GPUS[g] for g in gpus))
            for lid, city, state, country, tier, gpus in _TD_LOCATIONS
        )
        self.instances: dict[tuple[str, str], SimInstance] = {}
        self.launch_count = 0
        self._next_vast_id = 9_104_000 + self._rng.randrange(1000)
        if seed_instances:
            self._seed_instances()

    @cached_property
    def vast_asks(self) -> list[VastAsk]:
        """The Vast machines on offer, built when first asked for: commands that only list instances never
        pay for thousands of them (they have their own random stream, so the market is the same)."""
        return self._make_vast_asks(self._vast_offer_count)

    @cached_property
    def vast_asks_by_id(self) -> dict[int, VastAsk]:
        return {ask.ask_id: ask for ask in self.vast_asks}

    # -- prices and availability ----------------------------------------------------------

    def drift(self, key: str, now: float | None = None) -> float:
        """A slow multiplicative price drift in about ±8 %, unique per offer key."""
        now = self.clock.now() if now is None else now
        phase = noise(self.seed, key, "phase") * 2 * math.pi
        wobble = noise(self.seed, key, int(now // QUOTE_BUCKET_S)) - 0.5
        return 1.0 + 0.06 * math.sin(2 * math.pi * now / PRICE_PERIOD_S + phase) + 0.04 * wobble

    def vast_ask_available(self, ask: VastAsk, now: float | None = None) -> bool:
        now = self.clock.now() if now is None else now
        if ask.ask_id in self.rented_asks:
            return False
        return noise(self.seed, "vast-avail", ask.ask_id, int(now // 900)) > 0.06

    def vast_ask_price(self, ask: VastAsk, now: float | None = None) -> float:
        """Compute-only $/h for the whole offer at ``now``."""
        return round(ask.base_dph * self.drift(f"vast:{ask.ask_id}", now), 4)

    def vast_min_bid(self, ask: VastAsk, now: float | None = None) -> float:
        return round(self.vast_ask_price(ask, now) * (0.45 + 0.2 * noise(self.seed, "bid", ask.ask_id)), 4)

    def runpod_price(self, gpu: RunpodGpuType, secure: bool, now: float | None = None) -> float | None:
        base = gpu.secure_price if secure else gpu.community_price
        if base is None:
            return None
        return round(base * self.drift(f"runpod:{gpu.gpu_type_id}:{secure}", now), 2)

    def runpod_stock(self, gpu: RunpodGpuType, secure: bool, count: int, now: float | None = None) -> str | None:
        """``High``/``Medium``/``Low`` or None when that configuration is out of stock."""
        if (secure and gpu.secure_price is None) or (not secure and gpu.community_price is None):
            return None
        if count > gpu.max_gpu_count:
            return None
        now = self.clock.now() if now is None else now
        roll = noise(self.seed, "rp-stock", gpu.gpu_type_id, secure, count, int(now // 900))
        roll += 0.08 * math.log2(count)
        if roll > 0.85:
            return None
        return "High" if roll < 0.35 else "Medium" if roll < 0.65 else "Low"

    def lambda_regions_with_capacity(self, instance_type: LambdaType,
                                     now: float | None = None) -> list[tuple[str, str]]:
        now = self.clock.now() if now is None else now
        bucket = int(now // 900)
        return [
            region
            for region in LAMBDA_REGIONS
            if noise(self.seed, "lambda-cap", instance_type.name, region[0], bucket)
            < (0.5 if instance_type.gpus == 1 else 0.22)
        ]

    def tensordock_gpu_price(self, location: TensordockLocation, gpu: TensordockGpu, now: float | None = None) -> float:
        return round(gpu.price_per_hr * self.drift(f"td:{location.location_id}:{gpu.v0_name}", now), 3)

    def tensordock_available(self, location: TensordockLocation, gpu: TensordockGpu, now: float | None = None) -> int:
        """How many of this GPU the location can place right now (0 = sold out)."""
        now = self.clock.now() if now is None else now
        roll = noise(self.seed, "td-cap", location.location_id, gpu.v0_name, int(now // 900))
        return 0 if roll < 0.15 else max(1, int(gpu.max_count * roll))

    # -- lifecycle --------------------------------------------------------------------------

    def launch(
        self, provider: str, *, gpu_name: str, gpu_count: int, vram_gb: float, price_hour: float,
        storage_price_hour: float = 0.0, label: str = "", image: str = "", disk_gb: int = 20,
        location: str = "", instance_id: str | None = None, bid_price: float | None = None,
        ports: tuple[str, ...] = ("22/tcp",), env: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> SimInstance:
        """Rent a machine. The first launch always boots cleanly; later ones may crash or stick."""
        now = self.clock.now()
        self.launch_count += 1
        instance_id = instance_id or self.new_instance_id(provider)
        rng = random.Random(f"{self.seed}:{provider}:{instance_id}")
        crash_after: float | None = None
        stuck = False
        trace = TraceKind.TRAINING
        if self.launch_count > 1:
            roll = rng.random()
            stuck = roll < 0.06
            crash_after = rng.uniform(120, 600) if 0.06 <= roll < 0.16 else None
            trace = rng.choice(list(TraceKind))
        instance = SimInstance(
            provider=provider, instance_id=instance_id, label=label, gpu_name=gpu_name,
            gpu_count=gpu_count, vram_gb=vram_gb, price_hour=price_hour,
            storage_price_hour=storage_price_hour, image=image, disk_gb=disk_gb, location=location,
            created_at=now, run_requested_at=now, trace=trace,
            provisioning_s=rng.uniform(5, 10), loading_s=rng.uniform(7, 14),
            crash_after_s=crash_after, stuck=stuck, idle_after_s=rng.uniform(180, 480),
            bid_price=bid_price, ports=ports, env=dict(env or {}), extra=dict(extra or {}),
        )
        self._assign_network(instance, rng)
        self.instances[(provider, instance_id)] = instance
        return instance

    def new_instance_id(self, provider: str) -> str:
        if provider == "vast":
            self._next_vast_id += 1 + self._rng.randrange(40)
            return str(self._next_vast_id)
        if provider == "runpod":
            return "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(14))
        if provider == "lambda":
            return "".join(self._rng.choice("0123456789abcdef") for _ in range(32))
        hexed = "".join(self._rng.choice("0123456789abcdef") for _ in range(32))
        return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:32]}"

    def get(self, provider: str, instance_id: str) -> SimInstance:
        instance = self.instances.get((provider, instance_id))
        if instance is None or instance.intended == "destroyed":
            raise SimError("not_found", f"instance {instance_id} not found")
        return instance

    def instances_of(self, provider: str, include_destroyed_for: float = 0.0) -> list[SimInstance]:
        """Live instances of one provider, plus those destroyed in the last few seconds if asked."""
        now = self.clock.now()
        return [
            inst
            for (prov, _), inst in self.instances.items()
            if prov == provider
            and (inst.intended != "destroyed"
                 or (inst.destroyed_at is not None and now - inst.destroyed_at < include_destroyed_for))
        ]

    def start(self, provider: str, instance_id: str) -> SimInstance:
        instance = self.get(provider, instance_id)
        status = self.view(instance).status
        if status not in ("stopped", "exited"):
            raise SimError("bad_state", f"instance is {status}; only a stopped instance can be started")
        instance.intended = "running"
        instance.run_requested_at = self.clock.now()
        instance.stopped_at = None
        instance.crash_after_s = None
        instance.stuck = False
        instance.provisioning_s, instance.loading_s = 3.0, 6.0
        return instance

    def stop(self, provider: str, instance_id: str) -> SimInstance:
        instance = self.get(provider, instance_id)
        status = self.view(instance).status
        if status in ("stopped",):
            raise SimError("bad_state", "instance is already stopped")
        instance.intended = "stopped"
        instance.stopped_at = self.clock.now()
        return instance

    def reboot(self, provider: str, instance_id: str) -> SimInstance:
        instance = self.get(provider, instance_id)
        status = self.view(instance).status
        if status == "stopped":
            raise SimError("bad_state", "instance is stopped; start it instead")
        instance.intended = "running"
        instance.run_requested_at = self.clock.now()
        instance.crash_after_s = None
        instance.stuck = False
        instance.provisioning_s, instance.loading_s = 2.0, 5.0
        return instance

    def destroy(self, provider: str, instance_id: str) -> SimInstance:
        instance = self.get(provider, instance_id)
        instance.intended = "destroyed"
        instance.destroyed_at = self.clock.now()
        return instance

    def view(self, instance: SimInstance, now: float | None = None) -> InstanceView:
        now = self.clock.now() if now is None else now
        if instance.intended == "destroyed":
            return InstanceView("terminated", 0.0, None, (), 0.0, 0.0, "destroyed")
        if instance.intended == "stopped":
            return InstanceView("stopped", 0.0, None, (), 0.0, 0.0, "stopped by user")
        elapsed = now - instance.run_requested_at
        if instance.stuck or elapsed < instance.provisioning_s:
            message = "waiting for host to accept" if instance.stuck else "scheduling"
            return InstanceView("provisioning", 0.0, None, (), 0.0, 0.0, message)
        if elapsed < instance.provisioning_s + instance.loading_s:
            return InstanceView("loading", 0.0, None, (), 0.0, 0.0, f"pulling {instance.image or 'image'}")
        running_since = instance.run_requested_at + instance.provisioning_s + instance.loading_s
        seconds_running = now - running_since
        if instance.crash_after_s is not None and seconds_running >= instance.crash_after_s:
            return InstanceView("exited", 0.0, None, (), 0.0, 0.0, "container exited with code 137")
        seed = f"{self.seed}:{instance.provider}:{instance.instance_id}"
        readings = tuple(
            gpu_reading(instance.trace, seed, index, seconds_running, instance.vram_gb, instance.idle_after_s)
            for index in range(instance.gpu_count)
        )
        mean_util = sum(r.util for r in readings) / max(1, len(readings))
        cpu = round(8 + mean_util * 0.5 + 6 * noise(seed, "cpu", int(seconds_running // 5)), 1)
        ram = round(20 + mean_util * 0.35 + 4 * noise(seed, "ram", int(seconds_running // 30)), 1)
        return InstanceView("running", seconds_running, running_since, readings, cpu, ram,
                            f"running {instance.image or 'container'}")

    def logs(self, instance: SimInstance, tail: int = 200) -> list[str]:
        """Container log lines up to now: boot messages, then progress lines from the trace."""
        view = self.view(instance)
        lines = [
            f"[boot] pulling image {instance.image or 'ubuntu:22.04'}",
            "[boot] image pulled, starting container",
            f"[boot] {instance.gpu_count}x {instance.gpu_name} visible (CUDA 12.4)",
        ]
        if view.status == "running":
            steps = int(view.seconds_running // 10)
            for step in range(max(0, steps - tail), steps):
                loss = 2.5 * math.exp(-step / 300) + 0.05 * noise(self.seed, instance.instance_id, step)
                lines.append(f"[train] step {step * 50:>6}  loss {loss:.4f}")
        elif view.status == "exited":
            lines.append("[train] RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
            lines.append("[boot] container exited with code 137")
        elif view.status == "stopped":
            lines.append("[boot] stop requested; container stopped")
        return lines[-tail:]

    # -- saved state -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything that changes as people use the market, as JSON-ready data; offers and prices
        are not in it, they follow from the seed and the clock."""
        now = self.clock.now()
        version, internal, gauss = self._rng.getstate()
        return {
            "seed": self.seed,
            "instances": [
                _instance_state(instance) for instance in self.instances.values()
                if instance.destroyed_at is None or now - instance.destroyed_at < KEEP_DESTROYED_S
            ],
            "rented_asks": sorted(self.rented_asks),
            "launch_count": self.launch_count,
            "next_vast_id": self._next_vast_id,
            "rng": [version, list(internal), gauss],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the changing state with a ``snapshot()``; raises WorldStateError if it is unusable."""
        try:
            instances = [_instance_from_state(item) for item in state["instances"]]
            rented = {int(ask_id) for ask_id in state["rented_asks"]}
            launch_count, next_vast_id = int(state["launch_count"]), int(state["next_vast_id"])
            version, internal, gauss = state["rng"]
            rng = random.Random()
            rng.setstate((int(version), tuple(int(n) for n in internal), gauss))
        except (KeyError, TypeError, ValueError) as error:
            raise WorldStateError(f"unreadable demo world ({type(error).__name__}: {error})") from None
        self.instances = {(i.provider, i.instance_id): i for i in instances}
        self.rented_asks = rented
        self.launch_count, self._next_vast_id, self._rng = launch_count, next_vast_id, rng

    # -- construction ------------------------------------------------------------------------

    def _assign_network(self, instance: SimInstance, rng: random.Random) -> None:
        instance.public_ip = f"203.0.113.{rng.randrange(2, 250)}"
        instance.ssh_port = rng.randrange(20000, 60000)
        if instance.provider == "vast":
            instance.ssh_host = f"ssh{rng.randrange(1, 9)}.vast.ai"
        elif instance.provider == "runpod":
            instance.public_ip = f"198.51.100.{rng.randrange(2, 250)}"
            instance.ssh_host = instance.public_ip
        elif instance.provider == "lambda":
            instance.public_ip = f"192.0.2.{rng.randrange(2, 250)}"
            instance.ssh_host, instance.ssh_port = instance.public_ip, 22
        else:
            instance.ssh_host = instance.public_ip

    def _make_vast_asks(self, count: int) -> list[VastAsk]:
        rng = random.Random(f"{self.seed}:vast-asks")
        weights = [g[4] for g in _VAST_GPUS]
        asks: list[VastAsk] = []
        ask_id = 18_800_000
        for index in range(count):
            name, vram_mb, low, high, _, counts = rng.choices(_VAST_GPUS, weights=weights)[0]
            num_gpus = rng.choice(counts)
            per_gpu = rng.uniform(low, high)
            cores = rng.choice((8, 16, 24, 32, 48, 64, 96, 128))
            effective = float(min(cores, max(4, num_gpus * rng.choice((4, 6, 8, 12, 16)))))
            reliability = min(0.9999, 1 - rng.betavariate(1.2, 30)) if rng.random() > 0.08 else rng.uniform(0.6, 0.94)
            ask_id += rng.randrange(1, 400)
            place = rng.choice(_VAST_PLACES)
            spec_flops = {"RTX 4090": 82.6, "RTX 3090": 35.6, "H100 SXM": 66.9, "A100 SXM4": 19.5}.get(name, 30.0)
            base = per_gpu * num_gpus
            if index in (7, 911, 2203):  # a few broken listings, as real markets have
                base = 0.0 if index == 7 else 950.0 * num_gpus
            asks.append(
                VastAsk(
                    ask_id=ask_id, machine_id=10_000 + index * 3 + rng.randrange(3),
                    host_id=1000 + rng.randrange(4000), gpu_name=name, num_gpus=num_gpus,
                    gpu_ram_mb=vram_mb, cpu_cores=cores, cpu_cores_effective=effective,
                    cpu_ram_mb=int(rng.choice((32, 64, 128, 256, 512)) * 1024 * effective / cores * 1.0),
                    disk_space_gb=float(rng.choice((50, 100, 200, 500, 1000, 2000))),
                    base_dph=round(base, 4), storage_cost=round(rng.uniform(0.05, 0.3), 3),
                    reliability=round(reliability, 4), geolocation=place,
                    cuda_max_good=rng.choice((11.8, 12.1, 12.2, 12.4, 12.6, 12.8, 13.0)),
                    driver_version=rng.choice(("535.183.01", "550.127.05", "560.35.03", "570.86.10")),
                    inet_down=round(rng.uniform(80, 4000), 1), inet_up=round(rng.uniform(50, 2000), 1),
                    inet_down_cost=round(rng.choice((0.0, 0.002, 0.005, 0.01)), 4),
                    inet_up_cost=round(rng.choice((0.0, 0.002, 0.005, 0.01)), 4),
                    verified=rng.random() > 0.1, hosting_type=1 if rng.random() < 0.2 else 0,
                    direct_port_count=rng.choice((0, 20, 100, 500)),
                    total_flops=round(spec_flops * num_gpus * rng.uniform(0.9, 1.05), 1),
                    dlperf=round(spec_flops * num_gpus * rng.uniform(0.7, 0.9), 1),
                    compute_cap=890 if "40" in name else 800,
                )
            )
        return asks

    def _seed_instances(self) -> None:
        """A few machines already on the account so the lists are not empty on first run."""
        now = self.clock.now()
        # provider, label, GPU as the provider spells it, count, VRAM, $/GPU-h, trace, age (s), state, location
        seeds: tuple[tuple[str, str, str, int, float, float, TraceKind, float, str, str], ...] = (
            ("vast", "llama-finetune", "RTX 4090", 2, 24.0, 0.82, TraceKind.TRAINING, 7800, "running", "Texas, US"),
            ("vast", "sd-webui", "RTX 3090", 1, 24.0, 0.24, TraceKind.IDLE_AFTER, 2700, "running", "Oslo, NO"),
            ("vast", "old-experiment", "H100 SXM", 1, 80.0, 2.05, TraceKind.TRAINING, 20000, "stopped", "Quebec, CA"),
            ("runpod", "comfyui-prod", "NVIDIA RTX A6000", 1, 48.0,
             0.76, TraceKind.BURSTY, 10800, "running", "US-TX-3"),
            ("runpod", "jupyter-scratch", "NVIDIA A100-SXM4-80GB", 1, 80.0,
             1.74, TraceKind.VRAM_HELD, 3000, "running", "EU-SE-1"),
            ("runpod", "eval-job", "NVIDIA GeForce RTX 4090", 1, 24.0,
             0.69, TraceKind.TRAINING, 5400, "exited", "CA-MTL-1"),
            ("lambda", "bert-serve", "A10", 1, 24.0, 0.75, TraceKind.BURSTY, 3600, "running", "us-east-1"),
            ("tensordock", "render-box", "geforcertx4090-pcie-24gb", 1, 24.0,
             0.41, TraceKind.TRAINING, 1800, "running", "Chicago, United States"),
        )
        for provider, label, gpu_name, count, vram, price, trace, age, state, location in seeds:
            instance_id = self.new_instance_id(provider)
            rng = random.Random(f"{self.seed}:{provider}:{instance_id}")
            instance = SimInstance(
                provider=provider, instance_id=instance_id, label=label, gpu_name=gpu_name,
                gpu_count=count, vram_gb=vram, price_hour=price * count,
                storage_price_hour=0.02 if provider in ("vast", "runpod", "tensordock") else 0.0,
                image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", disk_gb=50, location=location,
                created_at=now - age, run_requested_at=now - age, trace=trace, provisioning_s=8.0,
                loading_s=12.0, idle_after_s=300.0,
            )
            if label in INTERRUPTIBLE_SEEDS:
                instance.bid_price = instance.price_hour
            if state == "stopped":
                instance.intended, instance.stopped_at = "stopped", now - 3600
            elif state == "exited":
                instance.crash_after_s = age - 900
            self._assign_network(instance, rng)
            self.instances[(provider, instance_id)] = instance


_SIM_INSTANCE_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(SimInstance))
_SIM_INSTANCE_FIELDS = set(_SIM_INSTANCE_FIELD_NAMES)


def _instance_state(instance: SimInstance) -> dict[str, Any]:
    # Field by field rather than dataclasses.asdict, whose deep copies were most of the cost of saving the world
    # after every request; the two dicts are copied, so a later change to the instance leaves the state as it was.
    state = {name: getattr(instance, name) for name in _SIM_INSTANCE_FIELD_NAMES}
    state["trace"] = instance.trace.value
    state["ports"] = list(instance.ports)
    state["env"], state["extra"] = dict(instance.env), dict(instance.extra)
    return state


def _instance_from_state(state: Any) -> SimInstance:
    if not isinstance(state, dict) or not _SIM_INSTANCE_FIELDS >= state.keys():
        raise ValueError("an instance entry has unknown fields")
    fields = dict(state)
    fields["trace"] = TraceKind(fields["trace"])
    fields["ports"] = tuple(str(port) for port in fields.get("ports", ()))
    return SimInstance(**fields)
