"""TensorDock adapter: per-resource priced VMs over the v2 REST API (locations, instances)."""

from __future__ import annotations

import random
import re
import shlex
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import quote

import httpx

from computehub_tui.domain import bounds
from computehub_tui.domain.gpus import canonical_gpu_name
from computehub_tui.domain.models import (
    Capabilities,
    Instance,
    InstanceStatus,
    LaunchSpec,
    Offer,
    OfferQuery,
    PricingKind,
    SshEndpoint,
    public_address,
    valid_port,
)
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.adapter import Connection, HttpAdapter, checked_price, checked_ssh, offers_matching
from computehub_tui.providers.base import (
    ConfigurationError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    RequestRejectedError,
    UnavailableError,
    UnsupportedError,
)
from computehub_tui.providers.http import KEY_REJECTED, NOT_FOUND, ErrorDialect, ErrorRule, HttpPolicy, readable
from computehub_tui.providers.payload import (
    as_dict,
    as_dicts,
    as_float,
    as_int,
    as_state,
    as_text,
    first_float,
    first_text,
    implausible_gpu_count,
)

DEFAULT_BASE_URL = "https://dashboard.tensordock.com/api/v2"
GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
VCPUS_PER_GPU = 8
RAM_GB_PER_GPU = 32
MIN_STORAGE_GB = 100
OS_IMAGE = "ubuntu2404"
SSH_USER = "user"
"""TensorDock's Ubuntu images log in as ``user`` (v0-era clients; not re-checked for v2)."""
HOURS_PER_MONTH = 730.0
TYPICAL_STORAGE_RATE_HR = 0.00005
"""$/GB/h TensorDock quotes for storage; used only to estimate what a stopped VM costs."""
EXTERNAL_PORT_RANGE = (20000, 60000)
STOP_WAIT_S = 180.0
STOP_POLL_S = 3.0
SSH_KEY_HINT = (
    "set ssh_public_key under [providers.tensordock] in the config file to your public key text "
    "(e.g. the contents of ~/.ssh/id_ed25519.pub)"
)

CAPABILITIES = Capabilities(
    bills_storage_while_stopped=True, custom_image=False,
    notes=(
        "stopped VMs keep billing storage",
        "restart is a stop followed by a start",
        "launches an Ubuntu 24.04 VM: the template's container image is not used",
        "no live GPU metrics or logs through the API",
    ),
)

_STATUSES: dict[str, InstanceStatus] = {
    "creating": InstanceStatus.PROVISIONING,
    "pending": InstanceStatus.PROVISIONING,
    "provisioning": InstanceStatus.PROVISIONING,
    "starting": InstanceStatus.STARTING,
    "restarting": InstanceStatus.STARTING,
    "rebooting": InstanceStatus.STARTING,
    "running": InstanceStatus.RUNNING,
    # A stopping VM has already given up its GPU; only storage is still billed.
    "stopping": InstanceStatus.STOPPED,
    "stopped": InstanceStatus.STOPPED,
    "error": InstanceStatus.ERROR,
    "failed": InstanceStatus.ERROR,
    "deleting": InstanceStatus.TERMINATED,
    "deleted": InstanceStatus.TERMINATED,
    "terminated": InstanceStatus.TERMINATED,
}

_COUNTRIES: dict[str, str] = {
    "united states": "US",
    "usa": "US",
    "united kingdom": "GB",
    "england": "GB",
    "germany": "DE",
    "canada": "CA",
    "netherlands": "NL",
    "france": "FR",
    "norway": "NO",
    "sweden": "SE",
    "finland": "FI",
    "poland": "PL",
    "czechia": "CZ",
    "czech republic": "CZ",
    "spain": "ES",
    "italy": "IT",
    "japan": "JP",
    "singapore": "SG",
    "india": "IN",
    "australia": "AU",
    "brazil": "BR",
    "south korea": "KR",
    "taiwan": "TW",
    "iceland": "IS",
    "ireland": "IE",
}

_VRAM = re.compile(r"(\d+(?:\.\d+)?)\s*gb", re.IGNORECASE)
_CAPACITY_WORDS = re.compile(
    r"no (available )?(hostnodes?|capacity|gpus?)\b|insufficient (capacity|resources|gpus?)"
    r"|not enough (capacity|resources|gpus?|available)|out of stock|sold out",
    re.IGNORECASE,
)
_HOURLY_PRICE_KEYS = ("rateHourly", "hourlyRate", "pricePerHour", "price_per_hr", "price_per_hour")
_RATE_KEYS = ("per_vcpu_hr", "per_gb_ram_hr", "per_gb_storage_hr")
MAX_ERROR_PARTS = 5


def default_policy() -> HttpPolicy:
    """TensorDock allows 100 requests a minute per organisation; stay just under it."""
    return HttpPolicy(min_interval=0.65)


@dataclass(frozen=True, slots=True)
class ResourcePlan:
    """What one offer rents and what each part costs per hour."""

    gpu_count: int
    vcpus: int
    ram_gb: int
    storage_gb: int
    gpu_hr: float
    vcpu_hr: float
    ram_hr: float
    storage_hr: float

    @property
    def price_hour(self) -> float:
        return self.gpu_hr + self.vcpu_hr + self.ram_hr + self.storage_hr


def plan_resources(gpu: dict[str, Any], gpu_count: int, storage_gb: int) -> ResourcePlan:
    """Size a VM for ``gpu_count`` GPUs within the location's maxima and price each part."""
    resources = as_dict(gpu.get("resources"))
    pricing = as_dict(gpu.get("pricing"))
    vcpus = _capped(VCPUS_PER_GPU * gpu_count, as_float(resources.get("max_vcpus")))
    ram_gb = _capped(RAM_GB_PER_GPU * gpu_count, as_float(resources.get("max_ram_gb")))
    return ResourcePlan(
        gpu_count=gpu_count,
        vcpus=vcpus,
        ram_gb=ram_gb,
        storage_gb=storage_gb,
        gpu_hr=gpu_count * (as_float(gpu.get("price_per_hr")) or 0.0),
        vcpu_hr=vcpus * (as_float(pricing.get("per_vcpu_hr")) or 0.0),
        ram_hr=ram_gb * (as_float(pricing.get("per_gb_ram_hr")) or 0.0),
        storage_hr=storage_gb * (as_float(pricing.get("per_gb_storage_hr")) or 0.0),
    )


def tensordock_message(body: Any) -> tuple[str, str]:
    """The human text of a TensorDock error in whatever JSON shape it came (the v2 error body is
    undocumented, so any is read); TensorDock sends no error codes."""
    return "", readable(_message_in(body))


TENSORDOCK_ERRORS = ErrorDialect(
    read=tensordock_message,
    rules=(KEY_REJECTED, NOT_FOUND, ErrorRule(NoCapacityError, "no capacity ({message})", phrase=_CAPACITY_WORDS)),
    credential="API token",
)
"""With no codes to go by, the status decides where it can; only then do the words tell a capacity
complaint from any other rejected request."""


class TensordockProvider(HttpAdapter):
    """A TensorDock organisation. VMs can stop and start; stopped VMs keep billing storage."""

    name = "tensordock"
    title = "TensorDock"
    capabilities = CAPABILITIES
    default_base_url = DEFAULT_BASE_URL
    make_policy = default_policy
    errors = TENSORDOCK_ERRORS

    def __init__(self, client: httpx.AsyncClient, api_key: Secret | None, *, ssh_public_key: str = "",
                 rng: random.Random | None = None, **connection: Unpack[Connection]) -> None:
        super().__init__(client, api_key, **connection)
        self.ssh_public_key = ssh_public_key.strip()
        self._rng = rng or random.Random()

    # -- offers -----------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        if PricingKind.ON_DEMAND not in query.pricing:
            return []
        body = await self.http.request_json("GET", "/locations")
        locations = _collection(body, "locations")
        if locations is None:
            raise ProtocolError(self.name, "locations reply has no 'data.locations' list")
        storage_gb = max(query.disk_gb, MIN_STORAGE_GB)
        now = self.clock.now()
        sold = self.plausible(
            ((location, gpu) for location in as_dicts(locations) for gpu in as_dicts(location.get("gpus"))),
            lambda pair: _implausible_gpu(pair[1]),
        )
        offers = [offer for location, gpu in sold for offer in self._offers_for_gpu(location, gpu, storage_gb, now)]
        return offers_matching(offers, query)

    def _offers_for_gpu(
        self, location: dict[str, Any], gpu: dict[str, Any], storage_gb: int, now: float
    ) -> list[Offer]:
        v0_name = as_text(gpu.get("v0Name"))
        location_id = as_text(location.get("id"))
        if not v0_name or not location_id or as_float(gpu.get("price_per_hr")) is None:
            return []
        max_storage = as_float(as_dict(gpu.get("resources")).get("max_storage_gb"))
        if max_storage is not None and storage_gb > max_storage:
            return []
        max_count = bounds.gpu_count(as_float(gpu.get("max_count"))) or 0
        counts = [count for count in GPU_COUNTS if count <= max_count]
        if not counts:
            return [self._offer(location, gpu, plan_resources(gpu, 1, storage_gb), False, now)]
        return [
            self._offer(location, gpu, plan_resources(gpu, n, storage_gb), True, now)
            for n in counts
        ]

    def _offer(
        self,
        location: dict[str, Any],
        gpu: dict[str, Any],
        plan: ResourcePlan,
        available: bool,
        now: float,
    ) -> Offer:
        v0_name = as_text(gpu.get("v0Name"))
        display_name = as_text(gpu.get("displayName")) or v0_name
        location_id = as_text(location.get("id"))
        storage_rate = as_float(as_dict(gpu.get("pricing")).get("per_gb_storage_hr"))
        return Offer(
            provider=self.name,
            offer_id=f"{location_id}:{v0_name}:{plan.gpu_count}",
            gpu=canonical_gpu_name(v0_name),
            gpu_count=plan.gpu_count,
            vram_gb=_vram_gb(v0_name, display_name),
            vcpus=float(plan.vcpus),
            ram_gb=float(plan.ram_gb),
            disk_gb=float(plan.storage_gb),
            price_hour=round(plan.price_hour, 4),
            pricing=PricingKind.ON_DEMAND,
            location=_place(location),
            reliability=None,
            available=available,
            quoted_at=now,
            country=_COUNTRIES.get(as_text(location.get("country")).lower(), ""),
            storage_gb_month=None
            if storage_rate is None
            else round(storage_rate * HOURS_PER_MONTH, 4),
            raw_gpu_name=display_name,
            extra={
                "location_id": location_id,
                "v0_name": v0_name,
                "vcpus": plan.vcpus,
                "ram_gb": plan.ram_gb,
                "storage_gb": plan.storage_gb,
                "tier": as_text(location.get("tier")),
                "price_breakdown": {
                    "gpu": round(plan.gpu_hr, 5),
                    "vcpu": round(plan.vcpu_hr, 5),
                    "ram": round(plan.ram_hr, 5),
                    "storage": round(plan.storage_hr, 5),
                },
            },
        )

    # -- instances ----------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        body = await self.http.request_json("GET", "/instances")
        summaries = _collection(body, "instances")
        if summaries is None:
            raise ProtocolError(self.name, "instances reply has no 'data.instances' list")
        described: list[tuple[str, dict[str, Any]]] = []
        for summary in summaries:
            fields = _fields(summary)
            instance_id = as_text(fields.get("id"))
            if not instance_id:
                continue
            if as_state(fields.get("status")).lower() not in ("deleted", "terminated"):
                try:
                    fields = {**fields, **await self._detail(instance_id)}
                except NotFoundError:
                    continue  # deleted between the list and the detail call
            described.append((instance_id, fields))
        kept = self.plausible(described, lambda row: implausible_gpu_count(_stated_gpus(row[1])[1]))
        return [self._instance(instance_id, fields) for instance_id, fields in kept]

    async def _detail(self, instance_id: str) -> dict[str, Any]:
        body = await self.http.request_json("GET", f"/instances/{_path_id(instance_id)}")
        return _fields(body)

    def _instance(self, instance_id: str, fields: dict[str, Any]) -> Instance:
        resources = as_dict(fields.get("resources"))
        gpu_name, stated_count = _stated_gpus(fields)
        gpu_count = bounds.gpu_count(stated_count) or 0
        provider_status = as_state(fields.get("status"))
        status = _STATUSES.get(provider_status.lower(), InstanceStatus.UNKNOWN)
        # The address is validated as sent, never cleaned first: dropping a NUL could make another host.
        ip = next((fields[key] for key in ("ipAddress", "ip_address", "ip") if fields.get(key)), None)
        forwards = _port_forwards(fields.get("portForwards") or fields.get("port_forwards"))
        storage_gb = bounds.size_or_zero(as_float(resources.get("storage_gb")), bounds.MAX_DISK_GB)
        notes = [first_text(fields, "statusMessage", "status_message")]
        # The v2 instance detail's price field is undocumented; accept the spellings seen in the wild.
        price = checked_price(first_float(fields, *_HOURLY_PRICE_KEYS) or 0.0, gpu_count, notes)
        offered = bool(ip) and status is InstanceStatus.RUNNING and (22 in forwards or not forwards)
        ssh = checked_ssh(_ssh_endpoint(ip, forwards, status), offered, notes)
        ports = {f"{internal}/tcp": public_address(ip, external) for internal, external in forwards.items()}
        return Instance(
            provider=self.name,
            instance_id=instance_id,
            label=as_text(fields.get("name")),
            status=status,
            provider_status=provider_status or status.value,
            gpu=canonical_gpu_name(gpu_name) if gpu_name else "unknown",
            gpu_count=gpu_count,
            price_hour=round(price, 4),
            ssh=ssh,
            ports={port: address for port, address in ports.items() if address},
            location=first_text(fields, "location", "location_name"),
            image=as_text(fields.get("image")),
            storage_price_hour=round(storage_gb * TYPICAL_STORAGE_RATE_HR, 5),
            status_message="; ".join(note for note in notes if note),
            pricing=PricingKind.ON_DEMAND,  # the v2 API has no spot VMs
        )

    # -- actions ------------------------------------------------------------------------------

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        if not self.ssh_public_key:
            raise ConfigurationError(self.name, f"cannot launch without an SSH key: {SSH_KEY_HINT}")
        if not offer.available:
            raise NoCapacityError(self.name, f"{offer.gpu} is sold out at {offer.location}")
        reply = await self.http.request_json(
            "POST", "/instances", json_body=self.launch_body(offer, spec), idempotent=False, outcome="launch"
        )
        new_id = as_text(_fields(reply).get("id"))
        if not new_id:
            raise ProtocolError(self.name, "create-instance reply has no 'data.id'")
        return new_id

    def launch_body(self, offer: Offer, spec: LaunchSpec) -> dict[str, Any]:
        """The ``POST /instances`` body for renting ``offer`` as ``spec`` describes."""
        location_id, v0_name, count = _launch_target(offer)
        plan_vcpus = as_int(offer.extra.get("vcpus")) or VCPUS_PER_GPU * count
        plan_ram = as_int(offer.extra.get("ram_gb")) or RAM_GB_PER_GPU * count
        attributes: dict[str, Any] = {
            "name": spec.label or "computehub",
            "type": "virtualmachine",
            "image": OS_IMAGE,
            "resources": {
                "vcpu_count": plan_vcpus,
                "ram_gb": plan_ram,
                "storage_gb": max(spec.disk_gb, MIN_STORAGE_GB),
                "gpus": {v0_name: {"count": count}},
            },
            "location_id": location_id,
            "port_forwards": self._port_forwards_for(spec.ports),
            "ssh_key": self.ssh_public_key,
        }
        cloud_init = _cloud_init(spec)
        if cloud_init:
            attributes["cloud_init"] = cloud_init
        return {"data": {"type": "virtualmachine", "attributes": attributes}}

    def _port_forwards_for(self, ports: tuple[str, ...]) -> list[dict[str, int]]:
        internal_ports = [22] + [
            p for p in (_internal_port(text) for text in ports) if p and p != 22
        ]
        chosen: set[int] = set()
        forwards = []
        for internal in dict.fromkeys(internal_ports):
            external = self._rng.randrange(*EXTERNAL_PORT_RANGE)
            while external in chosen:
                external = self._rng.randrange(*EXTERNAL_PORT_RANGE)
            chosen.add(external)
            forwards.append({"internal_port": internal, "external_port": external})
        return forwards

    async def start(self, instance_id: str) -> None:
        await self.http.request("POST", f"/instances/{_path_id(instance_id)}/start", outcome="start")

    async def stop(self, instance_id: str) -> None:
        await self.http.request("POST", f"/instances/{_path_id(instance_id)}/stop", outcome="stop")

    async def restart(self, instance_id: str) -> None:
        """TensorDock has no reboot call: stop, wait until the VM is stopped, start again."""
        if await self._status(instance_id) != "stopped":
            await self.stop(instance_id)
            await self._wait_until_stopped(instance_id)
        await self.start(instance_id)

    async def _status(self, instance_id: str) -> str:
        return as_state((await self._detail(instance_id)).get("status")).lower()

    async def _wait_until_stopped(self, instance_id: str) -> None:
        deadline = self.clock.monotonic() + STOP_WAIT_S
        while await self._status(instance_id) != "stopped":
            if self.clock.monotonic() >= deadline:
                raise UnavailableError(
                    self.name,
                    f"instance {instance_id} did not stop within {STOP_WAIT_S:.0f}s; "
                    "start it by hand",
                )
            await self.clock.sleep(STOP_POLL_S)

    async def destroy(self, instance_id: str) -> None:
        await self.http.request("DELETE", f"/instances/{_path_id(instance_id)}", outcome="destroy")

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        raise UnsupportedError(self.name, "TensorDock has no logs API — SSH in to read logs")

    async def check_auth(self) -> None:
        await self.http.request("GET", "/instances")


# -- helpers ----------------------------------------------------------------------------------


def _launch_target(offer: Offer) -> tuple[str, str, int]:
    location_id = str(offer.extra.get("location_id") or "")
    v0_name = str(offer.extra.get("v0_name") or "")
    if location_id and v0_name:
        return location_id, v0_name, offer.gpu_count
    parts = offer.offer_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        raise RequestRejectedError(
            "tensordock", f"offer {offer.offer_id!r} is not a TensorDock offer"
        )
    return parts[0], parts[1], int(parts[2])


def _cloud_init(spec: LaunchSpec) -> dict[str, Any]:
    cloud_init: dict[str, Any] = {}
    commands = [line.strip() for line in spec.onstart.splitlines() if line.strip()]
    if commands:
        cloud_init["runcmd"] = commands
    if spec.env:
        exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in spec.env.items())
        cloud_init["write_files"] = [
            {"path": "/etc/profile.d/computehub-env.sh", "content": exports, "permissions": "0644"}
        ]
    return cloud_init


def _internal_port(text: str) -> int | None:
    head = text.split("/", 1)[0].strip()
    return int(head) if head.isdigit() and 0 < int(head) < 65536 else None


def _ssh_endpoint(ip: object, forwards: dict[int, int], status: InstanceStatus) -> SshEndpoint | None:
    if not ip or status is not InstanceStatus.RUNNING:
        return None  # a stopped or booting VM keeps its address but nobody answers on it
    if 22 in forwards:
        return SshEndpoint.parse(ip, forwards[22], SSH_USER)
    if not forwards:  # a dedicated IP: every port is the VM's own
        return SshEndpoint.parse(ip, 22, SSH_USER)
    return None


def _port_forwards(raw: Any) -> dict[int, int]:
    """Internal → external port, from a list of objects or an ``{internal: external}`` map."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        pairs = [
            (
                item.get("internal_port", item.get("internalPort")),
                item.get("external_port", item.get("externalPort")),
            )
            for item in raw
            if isinstance(item, dict)
        ]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    forwards: dict[int, int] = {}
    for internal, external in pairs:
        internal_port, external_port = valid_port(as_int(internal)), valid_port(as_int(external))
        if internal_port and external_port:
            forwards[internal_port] = external_port
    return forwards


def _stated_gpus(fields: dict[str, Any]) -> tuple[str, float | None]:
    """(v0Name, stated count) from ``resources.gpus`` as ``{"<v0Name>": {"count": n}}`` or
    ``[{"gpuV0Name", "count"}]``; the count is None when no GPU is named."""
    raw = as_dict(fields.get("resources")).get("gpus")
    entries: list[tuple[str, Any]] = []
    if isinstance(raw, dict):
        entries = [(as_text(name), as_dict(value).get("count", value)) for name, value in raw.items()]
    elif isinstance(raw, list):
        entries = [(first_text(item, "gpuV0Name", "v0Name", "name"), item.get("count")) for item in as_dicts(raw)]
    entries = [(name, count) for name, count in entries if name]
    if not entries:
        return "", None
    return entries[0][0], sum(as_float(count) or 0.0 for _, count in entries)


def _implausible_gpu(gpu: dict[str, Any]) -> bool:
    """A location's GPU that states a count outside 0..64 or a negative or absurd rate."""
    max_count = as_float(gpu.get("max_count"))
    if max_count is not None and max_count != 0 and bounds.gpu_count(max_count) is None:
        return True
    pricing = as_dict(gpu.get("pricing"))
    rates = [as_float(gpu.get("price_per_hr")), *(as_float(pricing.get(key)) for key in _RATE_KEYS)]
    return any(rate is not None and bounds.within(rate, 0.0, bounds.MAX_PRICE_PER_GPU_HOUR) is None
               for rate in rates)


def _fields(body: Any) -> dict[str, Any]:
    """One resource's fields whether sent flat or in a JSON:API ``data``/``attributes`` envelope."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict):
        return {}
    attributes = body.get("attributes")
    if isinstance(attributes, dict):
        return {**{k: v for k, v in body.items() if k != "attributes"}, **attributes}
    return dict(body)


def _collection(body: Any, name: str) -> list[Any] | None:
    """``data.<name>`` (as documented) or ``data.attributes.<name>`` (TensorDock's examples)."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        return None
    items = data.get(name)
    if items is None and isinstance(data.get("attributes"), dict):
        items = data["attributes"].get(name)
    return items if isinstance(items, list) else None


def _message_in(body: Any, depth: int = 0) -> str:
    if isinstance(body, str):
        return as_text(body, 2000)
    if depth > 4:
        return ""
    if isinstance(body, list):
        return "; ".join(filter(None, (_message_in(item, depth + 1) for item in body[:MAX_ERROR_PARTS])))
    if not isinstance(body, dict):
        return ""
    for key in ("error", "message", "detail", "errors", "title", "msg"):
        value = body.get(key)
        if value and not isinstance(value, bool):
            return _message_in(value, depth + 1)
    return ""


def _place(location: dict[str, Any]) -> str:
    parts = [as_text(location.get(key)) for key in ("city", "country")]
    return ", ".join(part for part in parts if part) or as_text(location.get("id"))


def _vram_gb(v0_name: str, display_name: str) -> float:
    for text in (v0_name, display_name):
        found = _VRAM.findall(text)
        if found:
            return float(found[-1])
    return 0.0


def _capped(wanted: int, maximum: float | None) -> int:
    return wanted if maximum is None or maximum <= 0 else int(min(wanted, maximum))


def _path_id(instance_id: str) -> str:
    return quote(instance_id, safe="")
