"""Lambda Cloud adapter: instance types as offers, launch/restart/terminate over the v1 REST API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Unpack

import httpx

from computehub_tui.domain import bounds
from computehub_tui.domain.gpus import canonical_gpu_name, gpu_spec
from computehub_tui.domain.models import (
    Capabilities,
    Instance,
    InstanceStatus,
    LaunchSpec,
    Offer,
    OfferQuery,
    PricingKind,
    SshEndpoint,
)
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.adapter import Connection, HttpAdapter, checked_price, checked_ssh, offers_matching
from computehub_tui.providers.base import (
    AuthError,
    ConfigurationError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    RequestRejectedError,
    UnsupportedError,
)
from computehub_tui.providers.http import ErrorDialect, ErrorRule, HttpPolicy, readable
from computehub_tui.providers.payload import as_dict, as_dicts, as_float, as_int, as_state, as_text

DEFAULT_BASE_URL = "https://cloud.lambda.ai/api/v1"
LAUNCH_PATH = "/instance-operations/launch"
LISTINGS = frozenset({"GET /instance-types", "GET /instances"})
"""What the Hub polls; rate-limited polls back off instead of retrying at once."""
GIB_TO_GB = 1.074
"""Disk is shown in GB like every provider's; RAM stays in GiB, as every provider's RAM is."""
MAX_FIELD_ERRORS = 5
SSH_USER = "ubuntu"
SOLD_OUT = "sold out"
MAX_NAME_LENGTH = 64
NO_STOP_MESSAGE = "Lambda cannot stop instances — terminate instead; billing runs until terminate"
SSH_KEY_HINT = (
    "set ssh_key_name under [providers.lambda] in the config file to the name of an SSH key "
    "registered at cloud.lambda.ai"
)

CAPABILITIES = Capabilities(
    can_stop=False, custom_image=False, custom_disk=False,
    notes=(
        "no stop — terminate only; billing runs until terminate",
        "launches need an SSH key registered at cloud.lambda.ai (ssh_key_name under [providers.lambda])",
        "machines boot Lambda Stack; the template's image and on-start script are not applied",
        "no live GPU metrics or logs through the API",
    ),
)

_STATUSES: dict[str, InstanceStatus] = {
    "booting": InstanceStatus.STARTING,
    "active": InstanceStatus.RUNNING,
    "unhealthy": InstanceStatus.ERROR,
    # Terminating is one-way and no longer usable, so it is shown as gone rather than unknown.
    "terminating": InstanceStatus.TERMINATED,
    "terminated": InstanceStatus.TERMINATED,
}

_STATUS_MESSAGES: dict[str, str] = {
    "booting": "booting",
    "unhealthy": "Lambda reports the instance unhealthy — restart or terminate it",
    "terminating": "terminating",
}

_COUNTRIES: dict[str, str] = {
    "usa": "US",
    "united states": "US",
    "germany": "DE",
    "japan": "JP",
    "israel": "IL",
    "india": "IN",
    "australia": "AU",
    "sweden": "SE",
    "united kingdom": "GB",
    "canada": "CA",
}

# "8x A100 (80 GB SXM4)", "1x GH200 (96 GB)", "8x Tesla V100 (16 GB)"; the count is absent
# in ``gpu_description`` ("H100 (80 GB SXM5)").
_DESCRIPTION = re.compile(
    r"^\s*(?:(?P<count>\d+)\s*x\s+)?(?P<name>[^()]+?)\s*"
    r"\(\s*(?P<vram>\d+(?:\.\d+)?)\s*GB\s*(?P<form>[^)]*)\)\s*$",
    re.IGNORECASE,
)
# "gpu_8x_h100_sxm5", "gpu_8x_a100_80gb_sxm4": the fallback when no description can be parsed.
_TYPE_NAME = re.compile(
    r"^gpu_(?P<count>\d+)x_(?P<model>[a-z0-9]+)(?:_(?P<rest>[a-z0-9_]+))?$", re.IGNORECASE
)
_NAME_VRAM = re.compile(r"(\d+)gb", re.IGNORECASE)


def default_policy() -> HttpPolicy:
    """Lambda asks for about one request per second and one launch per ten seconds."""
    return HttpPolicy(min_interval=1.0, endpoint_intervals={f"POST {LAUNCH_PATH}": 10.0})


@dataclass(frozen=True, slots=True)
class LambdaGpu:
    """The GPUs of one instance type, as parsed from its description."""

    count: int
    raw_name: str
    vram_gb: float
    form_factor: str

    @property
    def canonical(self) -> str:
        return canonical_gpu_name(self.raw_name, self.form_factor)


def parse_instance_type_gpu(instance_type: dict[str, Any]) -> LambdaGpu | None:
    """GPU count, model and VRAM of an instance type; None for types without GPUs. The count is
    as stated: check it against ``bounds.gpu_count`` before use."""
    specs = as_dict(instance_type.get("specs"))
    spec_count = as_int(specs.get("gpus"))
    if spec_count == 0:
        return None
    described = _DESCRIPTION.match(as_text(instance_type.get("description")))
    detailed = _DESCRIPTION.match(as_text(instance_type.get("gpu_description")))
    by_name = _TYPE_NAME.match(as_text(instance_type.get("name")))
    count = spec_count or _group_int(described, "count") or _group_int(by_name, "count") or 1
    source = detailed or described
    if source is not None:
        vram = bounds.size_or_zero(float(source["vram"]), bounds.MAX_VRAM_GB_PER_GPU)
        return LambdaGpu(count, source["name"].strip(), vram, source["form"].strip())
    if by_name is not None:
        rest = (by_name["rest"] or "").replace("_", " ")
        named_vram = _NAME_VRAM.search(rest)
        spec = gpu_spec(canonical_gpu_name(by_name["model"], rest))
        vram = float(named_vram[1]) if named_vram else float(spec.vram_gb) if spec else 0.0
        return LambdaGpu(count, by_name["model"], vram, rest)
    return None


def lambda_code_and_message(body: Any) -> tuple[str, str]:
    """Lambda's ``{"error": {"code", "message", "suggestion"}, "field_errors": {...}}`` as (code, safe
    message); a complaint about the SSH key says how to name the right one."""
    error = as_dict(body).get("error")
    if not isinstance(error, dict):
        return "", ""
    field_errors = as_dict(body).get("field_errors")
    message = readable(_error_message(error, field_errors))
    if _mentions_ssh_key(field_errors):
        message += f" — {SSH_KEY_HINT}"
    return as_text(error.get("code"), 80), message


LAMBDA_ERRORS = ErrorDialect(
    read=lambda_code_and_message,
    rules=(
        # The code decides, not the status: launch may answer "no capacity" with a 403.
        ErrorRule(NoCapacityError, "no capacity for this instance type in this region ({message})",
                  codes={"instance-operations/launch/insufficient-capacity"}),
        ErrorRule(AuthError, "API key rejected ({message})", codes={"global/invalid-api-key"}),
        ErrorRule(AuthError, "account inactive ({message})", codes={"global/account-inactive"}),
        ErrorRule(NotFoundError, "not found ({message})", codes={"global/object-does-not-exist"}),
        ErrorRule(RequestRejectedError, "invalid request ({message})", codes={"global/invalid-parameters"}),
        ErrorRule(RequestRejectedError, "request rejected ({message})", codes={
            "instance-operations/launch/file-system-in-wrong-region",
            "instance-operations/launch/file-systems-not-supported",
            "ssh-keys/key-in-use",
        }),
    ),
)
"""Lambda's error codes (reference: providers.md 3.2) and what each means."""


class LambdaProvider(HttpAdapter):
    """A Lambda Cloud account. Lambda has no stop: instances run (and bill) until terminated."""

    name = "lambda"
    title = "Lambda"
    capabilities = CAPABILITIES
    default_base_url = DEFAULT_BASE_URL
    make_policy = default_policy
    errors = LAMBDA_ERRORS
    listings = LISTINGS

    def __init__(self, client: httpx.AsyncClient, api_key: Secret | None, *, ssh_key_name: str = "",
                 **connection: Unpack[Connection]) -> None:
        super().__init__(client, api_key, **connection)
        self.ssh_key_name = ssh_key_name.strip()

    # -- offers -----------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        if PricingKind.ON_DEMAND not in query.pricing:
            return []
        body = await self.http.request_json("GET", "/instance-types")
        entries = body.get("data") if isinstance(body, dict) else None
        if not isinstance(entries, dict):
            raise ProtocolError(self.name, "instance-types reply has no 'data' map")
        types = [
            ({"name": as_text(type_name), **entry["instance_type"]}, entry)
            for type_name, entry in entries.items()
            if isinstance(entry, dict) and isinstance(entry.get("instance_type"), dict)
        ]
        typed = self.plausible(((kind, parse_instance_type_gpu(kind), entry) for kind, entry in types),
                               lambda row: _gpu_implausible(row[1]))
        now = self.clock.now()
        offers = [offer for kind, gpu, entry in typed for offer in self._offers_for_type(kind, gpu, entry, now)]
        return offers_matching(offers, query)

    def _offers_for_type(
        self, instance_type: dict[str, Any], gpu: LambdaGpu | None, entry: dict[str, Any], now: float
    ) -> list[Offer]:
        type_name = instance_type["name"]
        cents = as_float(instance_type.get("price_cents_per_hour"))
        if gpu is None or cents is None or not type_name:
            return []
        specs = as_dict(instance_type.get("specs"))
        regions = as_dicts(entry.get("regions_with_capacity_available"))

        def offer_in(region: dict[str, Any] | None) -> Offer:
            region_name = as_text(region.get("name")) if region else ""
            region_description = as_text(region.get("description")) if region else ""
            return Offer(
                provider=self.name,
                offer_id=f"{type_name}@{region_name or 'sold-out'}",
                gpu=gpu.canonical,
                gpu_count=gpu.count,
                vram_gb=gpu.vram_gb,
                vcpus=bounds.size_or_zero(as_float(specs.get("vcpus")), bounds.MAX_VCPUS),
                ram_gb=round(bounds.size_or_zero(as_float(specs.get("memory_gib")), bounds.MAX_RAM_GB), 1),
                disk_gb=round(bounds.size_or_zero(as_float(specs.get("storage_gib")), bounds.MAX_DISK_GB)
                              * GIB_TO_GB, 1),
                price_hour=round(cents / 100.0, 4),
                pricing=PricingKind.ON_DEMAND,
                location=region_name or SOLD_OUT,
                reliability=None,
                available=region is not None,
                quoted_at=now,
                country=_country_of(region_name, region_description),
                raw_gpu_name=gpu.raw_name,
                extra={
                    "instance_type_name": type_name,
                    "region_name": region_name,
                    "region_description": region_description,
                    "description": as_text(instance_type.get("description")),
                },
            )

        if not regions:
            return [offer_in(None)]  # sold out everywhere, still listed so users see it exists
        return [offer_in(region) for region in regions]

    # -- instances ----------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        body = await self.http.request_json("GET", "/instances")
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProtocolError(self.name, "instances reply has no 'data' list")
        typed = self.plausible(
            ((item, parse_instance_type_gpu(as_dict(item.get("instance_type"))))
             for item in as_dicts(items) if as_text(item.get("id"))),
            lambda row: _gpu_implausible(row[1]),
        )
        return [self._instance(item, gpu) for item, gpu in typed]

    def _instance(self, raw: dict[str, Any], gpu: LambdaGpu | None) -> Instance:
        instance_type = as_dict(raw.get("instance_type"))
        provider_status = as_state(raw.get("status"))
        status = _STATUSES.get(provider_status.lower(), InstanceStatus.UNKNOWN)
        region = as_dict(raw.get("region"))
        gpu_count = gpu.count if gpu else 0
        sent_price = instance_type.get("price_cents_per_hour")
        cents = as_float(sent_price)
        notes = [_STATUS_MESSAGES.get(provider_status.lower(), "")]
        price = checked_price(None if cents is None else cents / 100.0, gpu_count, notes, sent=sent_price is not None)
        reachable = bool(raw.get("ip")) and status is InstanceStatus.RUNNING  # booting: sshd not up yet
        ssh = checked_ssh(SshEndpoint.parse(raw.get("ip"), 22, SSH_USER) if reachable else None, reachable, notes)
        return Instance(
            provider=self.name,
            instance_id=as_text(raw.get("id")),
            label=as_text(raw.get("name")),
            status=status,
            provider_status=provider_status or status.value,
            gpu=gpu.canonical if gpu else "unknown",
            gpu_count=gpu_count,
            price_hour=round(price, 4),
            ssh=ssh,
            location=as_text(region.get("name")),
            image="Lambda Stack",
            status_message="; ".join(note for note in notes if note),
            pricing=PricingKind.ON_DEMAND,  # Lambda rents nothing interruptible
        )

    # -- actions ------------------------------------------------------------------------------

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        key_name = (spec.ssh_key_name or self.ssh_key_name).strip()
        if not key_name:
            raise ConfigurationError(self.name, f"cannot launch without an SSH key: {SSH_KEY_HINT}")
        type_name, region_name = _launch_target(offer)
        if not offer.available or not region_name:
            raise NoCapacityError(self.name, f"{type_name} is sold out in every region")
        body = {
            "region_name": region_name,
            "instance_type_name": type_name,
            "ssh_key_names": [key_name],
            "file_system_names": [],
            "quantity": 1,
            "name": (spec.label or "computehub")[:MAX_NAME_LENGTH],
        }
        reply = await self.http.request_json("POST", LAUNCH_PATH, json_body=body, idempotent=False,
                                             outcome="launch")
        data = reply.get("data") if isinstance(reply, dict) else None
        ids = data.get("instance_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list):
            raise ProtocolError(self.name, "launch reply has no 'data.instance_ids'")
        if not ids:
            raise NoCapacityError(
                self.name, f"Lambda accepted the launch but started no {type_name}"
            )
        new_id = as_text(ids[0])
        if not new_id:
            raise ProtocolError(self.name, "launch reply has an empty instance id")
        return new_id

    async def start(self, instance_id: str) -> None:
        raise UnsupportedError(self.name, NO_STOP_MESSAGE)

    async def stop(self, instance_id: str) -> None:
        raise UnsupportedError(self.name, NO_STOP_MESSAGE)

    async def restart(self, instance_id: str) -> None:
        await self._instance_operation("restart", instance_id, "restarted_instances", "restart")

    async def destroy(self, instance_id: str) -> None:
        await self._instance_operation("terminate", instance_id, "terminated_instances", "destroy")

    async def _instance_operation(self, operation: str, instance_id: str, result_key: str, outcome: str) -> None:
        reply = await self.http.request_json(
            "POST", f"/instance-operations/{operation}", json_body={"instance_ids": [instance_id]},
            outcome=outcome,
        )
        data = reply.get("data") if isinstance(reply, dict) else None
        done = data.get(result_key) if isinstance(data, dict) else None
        # Lambda may act on only part of the batch; an answer without our id means it did nothing.
        if isinstance(done, list) and not any(
            isinstance(item, dict) and as_text(item.get("id")) == instance_id for item in done
        ):
            raise RequestRejectedError(
                self.name, f"Lambda did not {operation} instance {instance_id}"
            )

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        raise UnsupportedError(self.name, "Lambda has no logs API — SSH in to read logs")

    async def list_ssh_key_names(self) -> list[str]:
        """Names of the SSH keys registered on the account (what ``ssh_key_name`` must be)."""
        body = await self.http.request_json("GET", "/ssh-keys")
        keys = body.get("data") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise ProtocolError(self.name, "ssh-keys reply has no 'data' list")
        names = (as_text(key.get("name")) for key in keys if isinstance(key, dict))
        return [name for name in names if name]

    async def check_auth(self) -> None:
        await self.list_ssh_key_names()


# -- helpers ----------------------------------------------------------------------------------


def _launch_target(offer: Offer) -> tuple[str, str]:
    type_name = str(offer.extra.get("instance_type_name") or "")
    region_name = str(offer.extra.get("region_name") or "")
    if not type_name:
        type_name, _, region_name = offer.offer_id.partition("@")
    if region_name == "sold-out":
        region_name = ""
    return type_name, region_name


def _country_of(region_name: str, region_description: str) -> str:
    place = region_description.rsplit(",", 1)[-1].strip().lower()
    if place in _COUNTRIES:
        return _COUNTRIES[place]
    return "US" if region_name.startswith("us-") else ""


def _error_message(error: dict[str, Any], field_errors: Any) -> str:
    parts = [as_text(error.get("message")) or as_text(error.get("code")) or "unknown error"]
    parts.append(as_text(error.get("suggestion")))
    if isinstance(field_errors, dict):
        for field_name, detail in list(field_errors.items())[:MAX_FIELD_ERRORS]:
            text = (
                (as_text(detail.get("message")) or as_text(detail.get("code")))
                if isinstance(detail, dict)
                else as_text(detail)
            )
            parts.append(f"{as_text(field_name, 60)}: {text}")
    return " — ".join(part.rstrip(".") for part in parts if part)


def _mentions_ssh_key(field_errors: Any) -> bool:
    return isinstance(field_errors, dict) and any("ssh_key" in as_text(name) for name in field_errors)


def _gpu_implausible(gpu: LambdaGpu | None) -> bool:
    """An instance type that states a GPU count outside 1..64 (dropped and counted)."""
    return gpu is not None and bounds.gpu_count(gpu.count) is None


def _group_int(match: re.Match[str] | None, group: str) -> int | None:
    if match is None or not match[group]:
        return None
    return int(match[group])
