"""Lambda Cloud adapter: instance types as offers, launch/restart/terminate over the v1 REST API."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from computehub_tui.clock import Clock, SystemClock
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
from computehub_tui.providers.base import (
    AuthError,
    ConfigurationError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnsupportedError,
)
from computehub_tui.providers.http import (
    HttpPolicy,
    ListingBackoff,
    ProviderHttp,
    error_text,
    parse_retry_after,
    readable,
)
from computehub_tui.providers.payload import as_dict as _dict
from computehub_tui.providers.payload import as_float as _as_float
from computehub_tui.providers.payload import as_int as _as_int
from computehub_tui.providers.payload import as_list as _list
from computehub_tui.providers.payload import as_state, as_text

DEFAULT_BASE_URL = "https://cloud.lambda.ai/api/v1"
LAUNCH_PATH = "/instance-operations/launch"
LISTINGS = ("GET /instance-types", "GET /instances")
"""What the Hub polls; rate-limited polls back off instead of retrying at once."""
GIB_TO_GB = 1.074
"""Disk is shown in GB like every provider's; RAM stays in GiB, as every provider's RAM is."""
IMPLAUSIBLE_PRICE = "provider sent an implausible price; not counted"
INVALID_SSH = "provider sent an invalid SSH address"
MAX_FIELD_ERRORS = 5
SSH_USER = "ubuntu"
SOLD_OUT = "sold out"
MAX_NAME_LENGTH = 64
NO_STOP_MESSAGE = "Lambda cannot stop instances — terminate instead; billing runs until terminate"
SSH_KEY_HINT = (
    "set ssh_key_name under [lambda] in the config file to the name of an SSH key "
    "registered at cloud.lambda.ai"
)

CAPABILITIES = Capabilities(
    can_stop=False,
    can_restart=True,
    bills_storage_while_stopped=False,
    interruptible=False,
    logs=False,
    live_metrics=False,
    custom_image=False,
    custom_disk=False,
    notes=(
        "no stop — terminate only; billing runs until terminate",
        "launches need an SSH key registered at cloud.lambda.ai (ssh_key_name under [lambda])",
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
    specs = _dict(instance_type.get("specs"))
    spec_count = _as_int(specs.get("gpus"))
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


def lambda_error(response: httpx.Response) -> ProviderError | None:
    """Typed error from Lambda's ``{"error": {"code", "message", "suggestion"}}`` by its code."""
    if response.status_code == 429:
        return None  # the shared layer reads Retry-After and paces the retry
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = as_text(error.get("code"), 80)
    field_errors = body.get("field_errors") if isinstance(body, dict) else None
    message = readable(_error_message(error, field_errors))
    if code == "instance-operations/launch/insufficient-capacity":
        return NoCapacityError(
            "lambda", f"no capacity for this instance type in this region ({message})"
        )
    if code == "global/invalid-api-key":
        return AuthError("lambda", f"API key rejected ({message})")
    if code == "global/account-inactive":
        return AuthError("lambda", f"account inactive ({message})")
    if code == "global/object-does-not-exist":
        return NotFoundError("lambda", f"not found ({message})")
    if code == "global/invalid-parameters":
        hint = f" — {SSH_KEY_HINT}" if _mentions_ssh_key(field_errors) else ""
        return RequestRejectedError("lambda", f"invalid request ({message}){hint}")
    if code.startswith(("instance-operations/", "ssh-keys/")):
        return RequestRejectedError("lambda", f"request rejected ({message})")
    return None


class LambdaProvider:
    """A Lambda Cloud account. Lambda has no stop: instances run (and bill) until terminated."""

    name = "lambda"
    title = "Lambda"
    capabilities = CAPABILITIES

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret | None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        policy: HttpPolicy | None = None,
        ssh_key_name: str = "",
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.ssh_key_name = ssh_key_name.strip()
        self.listing_backoff = ListingBackoff()
        self.dropped_rows = 0
        self.http = ProviderHttp(
            self.name,
            client,
            base_url,
            api_key=api_key,
            policy=policy or default_policy(),
            clock=self.clock,
            error_mapper=self._error_for,
        )

    def _error_for(self, response: httpx.Response) -> ProviderError | None:
        """Lambda's typed errors; a 429 on a polled listing backs off longer each time in a row."""
        endpoint = _listing_endpoint(response) if response.status_code == 429 else None
        if endpoint is None:
            return lambda_error(response)
        hint = parse_retry_after(response.headers.get("retry-after"), self.clock.now())
        wait = self.listing_backoff.wait_after_429(endpoint, hint)
        return RateLimitedError(
            self.name, f"rate limited ({error_text(response)}); retrying in {wait:g}s", wait
        )

    # -- offers -----------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        if PricingKind.ON_DEMAND not in query.pricing:
            return []
        body = await self.http.request_json("GET", "/instance-types")
        self.listing_backoff.succeeded(LISTINGS[0])
        entries = body.get("data") if isinstance(body, dict) else None
        if not isinstance(entries, dict):
            raise ProtocolError(self.name, "instance-types reply has no 'data' map")
        now = self.clock.now()
        offers: list[Offer] = []
        dropped = 0
        for type_name, entry in entries.items():
            instance_type = entry.get("instance_type") if isinstance(entry, dict) else None
            if not isinstance(instance_type, dict):
                continue
            instance_type = {"name": as_text(type_name), **instance_type}
            gpu = parse_instance_type_gpu(instance_type)
            if gpu is not None and bounds.gpu_count(gpu.count) is None:
                dropped += 1
                continue
            offers += self._offers_for_type(instance_type, gpu, entry, now)
        self.dropped_rows = dropped
        return [offer for offer in offers if query.matches(offer)][: query.limit]

    def _offers_for_type(
        self, instance_type: dict[str, Any], gpu: LambdaGpu | None, entry: dict[str, Any], now: float
    ) -> list[Offer]:
        type_name = instance_type["name"]
        cents = _as_float(instance_type.get("price_cents_per_hour"))
        if gpu is None or cents is None or not type_name:
            return []
        specs = _dict(instance_type.get("specs"))
        regions = [
            r for r in _list(entry.get("regions_with_capacity_available")) if isinstance(r, dict)
        ]

        def offer_in(region: dict[str, Any] | None) -> Offer:
            region_name = as_text(region.get("name")) if region else ""
            region_description = as_text(region.get("description")) if region else ""
            return Offer(
                provider=self.name,
                offer_id=f"{type_name}@{region_name or 'sold-out'}",
                gpu=gpu.canonical,
                gpu_count=gpu.count,
                vram_gb=gpu.vram_gb,
                vcpus=bounds.size_or_zero(_as_float(specs.get("vcpus")), bounds.MAX_VCPUS),
                ram_gb=round(bounds.size_or_zero(_as_float(specs.get("memory_gib")), bounds.MAX_RAM_GB), 1),
                disk_gb=round(bounds.size_or_zero(_as_float(specs.get("storage_gib")), bounds.MAX_DISK_GB)
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
        self.listing_backoff.succeeded(LISTINGS[1])
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProtocolError(self.name, "instances reply has no 'data' list")
        instances: list[Instance] = []
        dropped = 0
        for item in items:
            if not isinstance(item, dict) or not as_text(item.get("id")):
                continue
            gpu = parse_instance_type_gpu(_dict(item.get("instance_type")))
            if gpu is not None and bounds.gpu_count(gpu.count) is None:
                dropped += 1
                continue
            instances.append(self._instance(item, gpu))
        self.dropped_rows = dropped
        return instances

    def _instance(self, raw: dict[str, Any], gpu: LambdaGpu | None) -> Instance:
        instance_type = _dict(raw.get("instance_type"))
        provider_status = as_state(raw.get("status"))
        status = _STATUSES.get(provider_status.lower(), InstanceStatus.UNKNOWN)
        region = _dict(raw.get("region"))
        gpu_count = gpu.count if gpu else 0
        sent_price = instance_type.get("price_cents_per_hour")
        cents = _as_float(sent_price)
        price = bounds.billed_price(cents / 100.0, gpu_count) if cents is not None else None
        notes = [_STATUS_MESSAGES.get(provider_status.lower(), "")]
        if price is None and sent_price is not None:
            notes.append(IMPLAUSIBLE_PRICE)
        ssh = None
        if raw.get("ip") and status is InstanceStatus.RUNNING:  # booting: sshd not up yet
            ssh = SshEndpoint.parse(raw.get("ip"), 22, SSH_USER)
            if ssh is None:
                notes.append(INVALID_SSH)
        return Instance(
            provider=self.name,
            instance_id=as_text(raw.get("id")),
            label=as_text(raw.get("name")),
            status=status,
            provider_status=provider_status or status.value,
            gpu=gpu.canonical if gpu else "unknown",
            gpu_count=gpu_count,
            price_hour=round(price, 4) if price is not None else 0.0,
            ssh=ssh,
            location=as_text(region.get("name")),
            image="Lambda Stack",
            status_message="; ".join(note for note in notes if note),
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

    async def aclose(self) -> None:
        await self.http.client.aclose()


# -- helpers ----------------------------------------------------------------------------------


def _listing_endpoint(response: httpx.Response) -> str | None:
    try:
        method, path = response.request.method, response.request.url.path
    except RuntimeError:
        return None
    return next((e for e in LISTINGS if e == f"{method} /{path.rsplit('/', 1)[-1]}"), None)


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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def _group_int(match: re.Match[str] | None, group: str) -> int | None:
    if match is None or not match[group]:
        return None
    return int(match[group])
