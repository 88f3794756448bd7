"""Vast.ai adapter: offer search, instance listing and lifecycle over Vast's REST API (/api/v0)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.domain.gpus import canonical_gpu_name, gpu_spec
from computehub_tui.domain.models import (
    Capabilities,
    Instance,
    InstanceStatus,
    LaunchSpec,
    MetricSample,
    Offer,
    OfferQuery,
    PricingKind,
    SshEndpoint,
)
from computehub_tui.domain.secret import Secret, redact
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import HttpPolicy, ListingBackoff, ProviderHttp
from computehub_tui.providers.payload import as_float as _float
from computehub_tui.providers.payload import as_int as _int

PROVIDER = "vast"
DEFAULT_BASE_URL = "https://console.vast.ai"

BUNDLES = "POST /api/v0/bundles/"
INSTANCES_LIST = "GET /api/v0/instances/"
INSTANCE_STATE = "PUT /api/v0/instances/{id}/"
INSTANCE_REBOOT = "PUT /api/v0/instances/reboot/{id}/"
INSTANCE_DESTROY = "DELETE /api/v0/instances/{id}/"
ASK_CREATE = "PUT /api/v0/asks/{id}/"
LOGS_REQUEST = "PUT /api/v0/instances/request_logs/{id}/"
LOGS_FETCH = "GET result_url"
CURRENT_USER = "GET /api/v0/users/current/"

VAST_ENDPOINT_INTERVALS: dict[str, float] = {
    INSTANCES_LIST: 1.0,
    INSTANCE_STATE: 1.0,
    INSTANCE_REBOOT: 1.0,
    INSTANCE_DESTROY: 3.0,
    ASK_CREATE: 4.5,
}
"""Seconds between calls per endpoint from Vast's documented 429 thresholds (reboot: assumed)."""

LISTINGS = frozenset({BUNDLES, INSTANCES_LIST})
"""The endpoints the Hub polls; a rate-limited poll is simply repeated later."""

HOURS_PER_MONTH = 720.0
VRAM_TOLERANCE = 0.95
"""Vast reports usable MiB: a "24 GB" L4 shows 23034 MB, which an exact GB×1000 floor drops."""
NOMINAL_VRAM_SLACK = 0.08
LOG_FETCH_ATTEMPTS = 20
LOG_FETCH_DELAY_S = 0.5
ONSTART_LIMIT = 4048

RUNTYPE_SSH = "ssh_direc ssh_proxy"
RUNTYPE_JUPYTER = "jupyter_direc ssh_direc ssh_proxy"

# Server-side spellings (Vast's gpulist); the reverse map below is derived from them so it can
# never disagree with how offers are parsed.
VAST_GPU_SPELLINGS: tuple[str, ...] = (
    "A10", "A10g", "A16", "A30", "A40", "A100 PCIE", "A100 SXM4", "A100 SXM", "A100X", "A800 PCIE",
    "B200", "GH200 SXM", "H100 PCIE", "H100 SXM", "H100 NVL", "H200", "H200 NVL",
    "L4", "L40", "L40S",
    "Tesla T4", "Tesla V100", "Tesla P100", "Tesla P40",
    "RTX 3060", "RTX 3070", "RTX 3080", "RTX 3080 Ti", "RTX 3090", "RTX 3090 Ti", "RTX 4070S",
    "RTX 4080", "RTX 4080S", "RTX 4090", "RTX 4090D", "RTX 5070 Ti", "RTX 5080", "RTX 5090",
    "RTX A2000", "RTX A4000", "RTX A4500", "RTX A5000", "RTX A6000",
    "RTX 2000Ada", "RTX 4000Ada", "RTX 5000Ada", "RTX 6000Ada", "Q RTX 6000", "Q RTX 8000",
    "RTX PRO 6000", "RTX PRO 6000 S", "RTX PRO 6000 WS",
    "InstinctMI50", "InstinctMI100", "InstinctMI210", "InstinctMI250X",
)


def _build_spellings_by_canonical() -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for spelling in VAST_GPU_SPELLINGS:
        grouped.setdefault(canonical_gpu_name(spelling), []).append(spelling)
    return {name: tuple(spellings) for name, spellings in grouped.items()}


VAST_SPELLINGS_BY_CANONICAL: dict[str, tuple[str, ...]] = _build_spellings_by_canonical()
"""Canonical GPU name → its Vast spellings, e.g. "A100 SXM" → ("A100 SXM4", "A100 SXM")."""

_VARIANT_SUFFIXES = (" SXM", " PCIe", " NVL")
_COUNTRY_NAMES: dict[str, str] = {
    "united states": "US", "usa": "US", "canada": "CA", "germany": "DE", "united kingdom": "GB",
    "france": "FR", "netherlands": "NL", "norway": "NO", "sweden": "SE", "finland": "FI",
    "japan": "JP", "south korea": "KR", "taiwan": "TW", "singapore": "SG", "australia": "AU",
    "brazil": "BR", "poland": "PL", "czechia": "CZ", "romania": "RO", "spain": "ES", "israel": "IL",
}
_INTERNAL_CODE = re.compile(r"^\s*error\s+\d+/\d+:\s*")
_THRESHOLD = re.compile(r"threshold\s*=\s*([0-9]+(?:\.[0-9]+)?)")
_DIGITS = re.compile(r"^\d+$")

AUTH_CODES = frozenset({"auth_error", "invalid_token", "not_authorized"})
REJECT_CODES = frozenset({"invalid_args", "invalid_price", "no_ssh_key_for_vm", "invalid_request"})
NOT_FOUND_CODES = frozenset({"not_found", "no_such_instance", "invalid_id"})


def vast_spellings(canonical: str) -> tuple[str, ...]:
    """Every Vast spelling to send for one canonical GPU name (the name itself if unknown)."""
    if canonical in VAST_SPELLINGS_BY_CANONICAL:
        return VAST_SPELLINGS_BY_CANONICAL[canonical]
    family_members = tuple(
        spelling
        for name, spellings in VAST_SPELLINGS_BY_CANONICAL.items()
        if name.startswith(canonical + " ")
        for spelling in spellings
    )
    if family_members:  # "A100" asks for every A100 form factor
        return family_members
    for suffix in _VARIANT_SUFFIXES:  # Vast sells "Tesla V100" without saying SXM or PCIe
        if canonical.endswith(suffix) and canonical[: -len(suffix)] in VAST_SPELLINGS_BY_CANONICAL:
            return VAST_SPELLINGS_BY_CANONICAL[canonical[: -len(suffix)]]
    return (canonical,)


class VastProvider:
    """Vast.ai through its REST API; the API key travels only in the Bearer header.

    A ``policy`` passed in is used as given (the demo turns pacing off); without one the adapter
    spaces calls per endpoint as Vast's documented thresholds require.
    """

    name = PROVIDER
    title = "Vast.ai"
    capabilities = Capabilities(
        can_stop=True,
        can_restart=True,
        bills_storage_while_stopped=True,
        interruptible=True,
        logs=True,
        live_metrics=True,
        notes=(
            "stopped instances still bill storage",
            "offers are single-use: once rented, an offer id cannot be launched again",
            "disk size is fixed at launch",
            "interruptible instances stop when outbid",
        ),
    )

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret | None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.listing_backoff = ListingBackoff()
        self.http = ProviderHttp(
            PROVIDER,
            client,
            base_url,
            api_key=api_key,
            policy=policy or vast_policy(),
            clock=self.clock,
            error_mapper=self._error_for,
        )

    async def aclose(self) -> None:
        """Nothing to release: the caller owns the HTTP client."""

    # -- offers -----------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        body = offer_search_body(query)
        payload = await self.http.request_json("POST", "/api/v0/bundles/", json_body=body,
                                               endpoint=BUNDLES, idempotent=True)
        self.listing_backoff.succeeded(BUNDLES)
        rows = _list_under(payload, "offers")
        now = self.clock.now()
        offers: list[Offer] = []
        for row in rows:
            offers.extend(offers_from_row(row, query, now))
        return offers

    # -- instances --------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        payload = await self.http.request_json("GET", "/api/v0/instances/", params={"owner": "me"},
                                               endpoint=INSTANCES_LIST)
        self.listing_backoff.succeeded(INSTANCES_LIST)
        now = self.clock.now()
        instances: list[Instance] = []
        for row in _list_under(payload, "instances"):
            instance = instance_from_row(row, now)
            if instance is not None:
                instances.append(instance)
        return instances

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        ask_id = ask_id_of(offer)
        body = launch_body(offer, spec)
        sent_before = self.http.request_count
        try:
            payload = await self.http.request_json("PUT", f"/api/v0/asks/{ask_id}/", json_body=body,
                                                   endpoint=ASK_CREATE)
        except UnavailableError as error:
            if self.http.request_count == sent_before:
                raise  # paused by the circuit breaker: nothing was sent
            message = f"launch outcome unknown ({error.message}); check Instances before retrying"
            raise UnavailableError(PROVIDER, message) from None
        result = _require_success(payload, f"launching offer {ask_id}")
        contract = result.get("new_contract")
        if contract is None or not str(contract).strip().isdigit():
            raise ProtocolError(PROVIDER, f"launch reply for offer {ask_id} has no new_contract id")
        return str(contract).strip()

    async def start(self, instance_id: str) -> None:
        await self._set_state(instance_id, "running")

    async def stop(self, instance_id: str) -> None:
        await self._set_state(instance_id, "stopped")

    async def restart(self, instance_id: str) -> None:
        path = f"/api/v0/instances/reboot/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("PUT", path, json_body={}, endpoint=INSTANCE_REBOOT)
        _require_success(payload, f"restarting instance {instance_id}")

    async def destroy(self, instance_id: str) -> None:
        path = f"/api/v0/instances/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("DELETE", path, endpoint=INSTANCE_DESTROY)
        _require_success(payload, f"destroying instance {instance_id}")

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        path = f"/api/v0/instances/request_logs/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("PUT", path, json_body={"tail": str(max(1, tail))},
                                               endpoint=LOGS_REQUEST)
        result = _require_success(payload, f"requesting logs of instance {instance_id}")
        result_url = result.get("result_url")
        if not isinstance(result_url, str) or not result_url.startswith(("https://", "http://")):
            raise ProtocolError(PROVIDER, "log request reply has no result_url")
        return await self._fetch_log_text(result_url, instance_id)

    async def check_auth(self) -> None:
        payload = await self.http.request_json("GET", "/api/v0/users/current/",
                                               endpoint=CURRENT_USER)
        if not isinstance(payload, dict):
            raise ProtocolError(PROVIDER, "account reply is not a JSON object")

    # -- helpers ----------------------------------------------------------------------------

    def _error_for(self, response: httpx.Response) -> ProviderError | None:
        error = vast_error_for(response)
        endpoint = _listing_endpoint(response)
        if not isinstance(error, RateLimitedError) or endpoint is None:
            return error
        wait = self.listing_backoff.wait_after_429(endpoint, error.retry_after)
        if wait == error.retry_after:
            return error
        return RateLimitedError(PROVIDER, f"{error.message}; backing off {wait:g}s", wait)

    async def _set_state(self, instance_id: str, state: str) -> None:
        path = f"/api/v0/instances/{_checked_id(instance_id)}/"
        # Setting a target state twice is harmless, so a lost reply may be retried.
        payload = await self.http.request_json("PUT", path, json_body={"state": state},
                                               endpoint=INSTANCE_STATE, idempotent=True)
        verb = "starting" if state == "running" else "stopping"
        _require_success(payload, f"{verb} instance {instance_id}")

    async def _fetch_log_text(self, result_url: str, instance_id: str) -> str:
        # The log file is uploaded asynchronously; S3 answers 403/404 until it lands.
        for attempt in range(LOG_FETCH_ATTEMPTS):
            response = await self.http.request("GET", result_url, auth=False, endpoint=LOGS_FETCH,
                                               ok_statuses=(200, 403, 404))
            if response.status_code == 200:
                return response.text
            if attempt + 1 < LOG_FETCH_ATTEMPTS:
                await self.clock.sleep(LOG_FETCH_DELAY_S)
        waited = LOG_FETCH_ATTEMPTS * LOG_FETCH_DELAY_S
        message = f"logs of instance {instance_id} were not ready after {waited:.0f}s"
        raise UnavailableError(PROVIDER, message)


# -- request building ------------------------------------------------------------------------


def vast_policy() -> HttpPolicy:
    """The default network policy: Vast's per-endpoint spacing so we never provoke a 429."""
    return HttpPolicy(endpoint_intervals=dict(VAST_ENDPOINT_INTERVALS))


def offer_search_body(query: OfferQuery) -> dict[str, Any]:
    """Our neutral query as a ``POST /bundles/`` body (MB for memory, Vast GPU spellings)."""
    bid_only = PricingKind.ON_DEMAND not in query.pricing
    body: dict[str, Any] = {
        "verified": {"eq": True},
        "rentable": {"eq": True},
        "rented": {"eq": False},
        "num_gpus": {"gte": max(1, query.min_gpu_count)},
        "reliability": {"gte": query.min_reliability},
    }
    if query.gpus:
        spellings = [spelling for gpu in query.gpus for spelling in vast_spellings(gpu)]
        body["gpu_name"] = {"in": list(dict.fromkeys(spellings))}
    if query.min_vram_gb:
        body["gpu_ram"] = {"gte": round(query.min_vram_gb * 1000 * VRAM_TOLERANCE)}
    if query.max_price_hour is not None:
        body["min_bid" if bid_only else "dph_total"] = {"lte": query.max_price_hour}
    if query.countries:
        body["geolocation"] = {"in": [country.upper() for country in query.countries]}
    body["type"] = "bid" if bid_only else "on-demand"
    body["allocated_storage"] = query.disk_gb
    body["order"] = [["min_bid" if bid_only else "dph_total", "asc"]]
    body["limit"] = query.limit
    return body


def launch_body(offer: Offer, spec: LaunchSpec) -> dict[str, Any]:
    """The ``PUT /asks/{id}/`` body in the CLI's form (env as an object, ports as ``-p`` keys)."""
    env: dict[str, str] = {}
    for port in spec.ports:
        flag = _port_flag(port)
        if flag:
            env[flag] = "1"
    env.update(spec.env)
    body: dict[str, Any] = {
        "image": spec.image,
        "disk": spec.disk_gb,
        "label": spec.label,
        "env": env,
        "runtype": RUNTYPE_JUPYTER if spec.jupyter else RUNTYPE_SSH,
    }
    if spec.onstart:
        body["onstart"] = _fit_onstart(spec.onstart)
    bid = spec.bid_price
    if bid is None and offer.pricing is PricingKind.INTERRUPTIBLE:
        bid = offer.min_bid
    if bid is not None:
        if bid <= 0:
            raise RequestRejectedError(PROVIDER, f"bid price must be positive (got {bid})")
        body["price"] = round(bid, 4)
    return body


def _port_flag(port: str) -> str:
    """``"8888/http"`` → ``"-p 8888:8888"``; ``"8081/udp"`` keeps its protocol; SSH needs none."""
    number, _, protocol = port.strip().partition("/")
    if not number.isdigit():
        raise RequestRejectedError(PROVIDER, f"bad port {port!r}; expected e.g. 8888/http")
    if number == "22" and protocol in ("", "tcp"):
        return ""  # the ssh runtype already maps 22
    suffix = "/udp" if protocol == "udp" else ""
    return f"-p {number}:{number}{suffix}"


def _fit_onstart(script: str) -> str:
    if len(script) <= ONSTART_LIMIT:
        return script
    packed = base64.b64encode(gzip.compress(script.encode())).decode()
    wrapped = f"echo '{packed}' | base64 -d | gunzip | bash"
    if len(wrapped) > ONSTART_LIMIT:
        message = f"on-start script is too long for Vast ({len(script)} characters)"
        raise RequestRejectedError(PROVIDER, message)
    return wrapped


def ask_id_of(offer: Offer) -> str:
    if offer.provider != PROVIDER:
        raise RequestRejectedError(PROVIDER, f"offer {offer.key} is not a Vast offer")
    ask_id = str(offer.extra.get("ask_id") or offer.offer_id.removesuffix("-bid"))
    return _checked_id(ask_id, what="offer")


def _checked_id(raw: str, what: str = "instance") -> str:
    value = str(raw).strip()
    if not _DIGITS.match(value):
        raise NotFoundError(PROVIDER, f"{what} id {value!r} is not a Vast id (digits only)")
    return value


# -- response parsing ------------------------------------------------------------------------


def _list_under(payload: Any, key: str) -> list[Any]:
    if not isinstance(payload, dict):
        raise ProtocolError(PROVIDER, f"expected a JSON object with {key!r}")
    rows = payload.get(key)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise ProtocolError(PROVIDER, f"{key!r} in reply is not a list")
    return rows


def offers_from_row(row: Any, query: OfferQuery, now: float) -> list[Offer]:
    """The on-demand and/or interruptible offers one bundle yields; none if it is unusable."""
    if not isinstance(row, dict):
        return []
    ask_id = _int(row.get("id"))
    num_gpus = _int(row.get("num_gpus"))
    raw_gpu = row.get("gpu_name")
    if ask_id is None or not num_gpus or not isinstance(raw_gpu, str):
        return []
    if row.get("cpu_cores") is None:  # gpuhunt skips these too: the listing is incomplete
        return []
    storage_hour = _storage_hour(row, query.disk_gb)
    on_demand_price = _on_demand_price(row, storage_hour)
    if on_demand_price is None:
        return []
    gpu = canonical_gpu_name(raw_gpu)
    location = str(row.get("geolocation") or "")
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "gpu": gpu,
        "gpu_count": num_gpus,
        "vram_gb": nominal_vram_gb(_float(row.get("gpu_ram")), gpu),
        "vcpus": _first_float(row, "cpu_cores_effective", "cpu_cores") or 0.0,
        "ram_gb": round((_float(row.get("cpu_ram")) or 0.0) / 1000, 1),
        "disk_gb": float(query.disk_gb),  # the disk the quoted price includes
        "location": location,
        "country": country_code(location),
        "reliability": _first_float(row, "reliability", "reliability2"),
        "available": row.get("rentable") is not False and row.get("rented") is not True,
        "quoted_at": now,
        "cuda": _float(row.get("cuda_max_good")),
        "inet_down_mbps": _float(row.get("inet_down")),
        "storage_gb_month": _float(row.get("storage_cost")),
        "min_bid": _float(row.get("min_bid")),
        "raw_gpu_name": raw_gpu,
    }
    extra = {
        "ask_id": ask_id,
        "machine_id": row.get("machine_id"),
        "host_id": row.get("host_id"),
        "dph_base": row.get("dph_base"),
        "storage_hour": storage_hour,
        "max_disk_gb": _float(row.get("disk_space")),
        "direct_port_count": row.get("direct_port_count"),
        "hosting_type": row.get("hosting_type"),
    }
    offers: list[Offer] = []
    bid_search = PricingKind.ON_DEMAND not in query.pricing
    if not bid_search:
        offers.append(Offer(offer_id=str(ask_id), price_hour=round(on_demand_price, 4),
                            pricing=PricingKind.ON_DEMAND, extra=dict(extra), **common))
    min_bid = common["min_bid"]
    if PricingKind.INTERRUPTIBLE in query.pricing and min_bid is not None and min_bid > 0:
        offers.append(Offer(offer_id=f"{ask_id}-bid", price_hour=round(min_bid + storage_hour, 4),
                            pricing=PricingKind.INTERRUPTIBLE, extra=dict(extra), **common))
    if query.max_price_hour is not None:
        offers = [offer for offer in offers if offer.price_hour <= query.max_price_hour]
    return offers


def _storage_hour(row: dict[str, Any], disk_gb: float) -> float:
    """$/h for the planned disk: Vast's own figure if it sent one, else storage_cost/720 per GB."""
    search = row.get("search")
    if isinstance(search, dict) and _float(search.get("diskHour")) is not None:
        return float(search["diskHour"])
    storage_cost = _float(row.get("storage_cost")) or 0.0
    return disk_gb * storage_cost / HOURS_PER_MONTH


def _on_demand_price(row: dict[str, Any], storage_hour: float) -> float | None:
    total = _float(row.get("dph_total"))
    if total is not None:
        return total  # already includes the disk we sent as allocated_storage
    base = _float(row.get("dph_base"))
    return None if base is None else base + storage_hour


def nominal_vram_gb(megabytes: float | None, gpu: str) -> float:
    """Per-GPU VRAM in GB from Vast's MB, snapped to the card's nominal size where it matches."""
    if not megabytes or megabytes <= 0:
        spec = gpu_spec(gpu)
        return spec.vram_gb if spec else 0.0
    gib = megabytes / 1024
    spec = gpu_spec(gpu)
    if spec and abs(gib - spec.vram_gb) <= spec.vram_gb * NOMINAL_VRAM_SLACK:
        return spec.vram_gb
    return round(megabytes / 1000, 1)


def country_code(geolocation: str) -> str:
    """``"Oslo, NO"`` → ``NO``; ``"California, United States"`` → ``US``; unknown → ``""``."""
    tail = geolocation.rsplit(",", 1)[-1].strip()
    if len(tail) == 2 and tail.isalpha():
        return tail.upper()
    return _COUNTRY_NAMES.get(tail.lower(), "")


def instance_from_row(row: Any, now: float) -> Instance | None:
    if not isinstance(row, dict) or _int(row.get("id")) is None:
        return None
    actual = row.get("actual_status")
    status, note = map_status(actual, row.get("intended_status"), row.get("status_msg"))
    num_gpus = _int(row.get("num_gpus")) or 0
    raw_gpu = str(row.get("gpu_name") or "")
    storage_hour = _instance_storage_hour(row)
    price = _float(row.get("dph_total"))
    if price is None:
        price = (_float(row.get("dph_base")) or 0.0) + storage_hour
    return Instance(
        provider=PROVIDER,
        instance_id=str(row["id"]),
        label=str(row.get("label") or ""),
        status=status,
        provider_status=str(actual) if actual is not None else "null",
        gpu=canonical_gpu_name(raw_gpu),
        gpu_count=num_gpus,
        price_hour=price,
        ssh=ssh_endpoint(row) if status is InstanceStatus.RUNNING else None,
        ports=public_ports(row),
        started_at=_float(row.get("start_date")),
        location=str(row.get("geolocation") or ""),
        image=str(row.get("image_uuid") or ""),
        metrics=metrics_from_row(row, num_gpus, now) if status is InstanceStatus.RUNNING else None,
        storage_price_hour=round(storage_hour, 6),
        status_message=note,
    )


_STATUS_BY_ACTUAL: dict[str, InstanceStatus] = {
    "created": InstanceStatus.PROVISIONING,
    "scheduling": InstanceStatus.PROVISIONING,
    "loading": InstanceStatus.STARTING,
    "restarting": InstanceStatus.STARTING,
    "rebooting": InstanceStatus.STARTING,
    "running": InstanceStatus.RUNNING,
    "stopped": InstanceStatus.STOPPED,
    "frozen": InstanceStatus.STOPPED,
    "exited": InstanceStatus.EXITED,
    "offline": InstanceStatus.UNKNOWN,
    "unknown": InstanceStatus.UNKNOWN,
}
_STATUS_NOTES: dict[str, str] = {
    "frozen": "frozen by the host (paused, GPU released)",
    "offline": "host is offline",
    "unknown": "no heartbeat from the host",
    "exited": "container exited",
}


def map_status(actual: Any, intended: Any, status_msg: Any) -> tuple[InstanceStatus, str]:
    """Vast's ``actual_status``/``intended_status`` pair as our status plus a short explanation."""
    message = " ".join(str(status_msg).split()) if status_msg else ""
    key = str(actual).lower() if actual is not None else None
    if key is None:
        status = InstanceStatus.PROVISIONING
    else:
        status = _STATUS_BY_ACTUAL.get(key, InstanceStatus.UNKNOWN)
    notes: list[str] = []
    if key is not None and key not in _STATUS_BY_ACTUAL:
        notes.append(f"unrecognised Vast status {actual!r}")
    elif key in _STATUS_NOTES:
        notes.append(_STATUS_NOTES[key])
    if intended == "stopped" and status in (InstanceStatus.RUNNING, InstanceStatus.STARTING):
        notes.append("stop requested; still running")
    elif intended == "running" and key == "stopped":
        # Still billed as stopped until the host schedules it (or, for a bid, until it wins again).
        notes.append("start requested; waiting for the host")
    if status.is_transitional and message.lower().startswith("error"):
        status = InstanceStatus.ERROR
    if message:
        notes.append(message)
    return status, "; ".join(notes)


def ssh_endpoint(row: dict[str, Any]) -> SshEndpoint | None:
    """Direct ``public_ipaddr:ports[22/tcp]`` if mapped, else the proxy (+1 for jupyter images)."""
    direct_port = _host_port(row.get("ports"), "22/tcp")
    public_ip = row.get("public_ipaddr")
    if direct_port is not None and isinstance(public_ip, str) and public_ip.strip():
        return SshEndpoint(public_ip.strip(), direct_port)
    host = row.get("ssh_host")
    port = _int(row.get("ssh_port"))
    if not isinstance(host, str) or not host or port is None:
        return None
    if "jupyter" in str(row.get("image_runtype") or ""):
        port += 1
    return SshEndpoint(host, port)


def public_ports(row: dict[str, Any]) -> dict[str, str]:
    ports = row.get("ports")
    public_ip = row.get("public_ipaddr")
    if not isinstance(ports, dict) or not isinstance(public_ip, str) or not public_ip.strip():
        return {}
    mapped: dict[str, str] = {}
    for container_port in ports:
        host_port = _host_port(ports, container_port)
        if host_port is not None:
            mapped[str(container_port)] = f"{public_ip.strip()}:{host_port}"
    return mapped


def _host_port(ports: Any, container_port: str) -> int | None:
    if not isinstance(ports, dict):
        return None
    bindings = ports.get(container_port)
    if not isinstance(bindings, list) or not bindings or not isinstance(bindings[0], dict):
        return None
    return _int(bindings[0].get("HostPort"))


def _instance_storage_hour(row: dict[str, Any]) -> float:
    for key in ("instance", "search"):
        breakdown = row.get(key)
        if isinstance(breakdown, dict) and _float(breakdown.get("diskHour")) is not None:
            return float(breakdown["diskHour"])
    disk = _float(row.get("disk_space")) or 0.0
    return disk * (_float(row.get("storage_cost")) or 0.0) / HOURS_PER_MONTH


def metrics_from_row(row: dict[str, Any], num_gpus: int, now: float) -> MetricSample | None:
    """One sample from Vast's aggregate readings, repeated per GPU (Vast sends one value each)."""
    gpus = max(1, num_gpus)
    util = _float(row.get("gpu_util"))
    vram_used = _float(row.get("vmem_usage"))
    temp = _float(row.get("gpu_temp"))
    per_gpu_mb = _float(row.get("gpu_ram"))
    if per_gpu_mb is None and _float(row.get("gpu_totalram")) is not None:
        per_gpu_mb = float(row["gpu_totalram"]) / gpus
    cpu = _float(row.get("cpu_util"))
    ram_pct = _ratio_pct(_float(row.get("mem_usage")), _float(row.get("mem_limit")))
    if util is None and vram_used is None and temp is None and cpu is None and ram_pct is None:
        return None
    return MetricSample(
        time=now,
        gpu_util=(util,) * gpus if util is not None else (),
        vram_used_gb=(vram_used,) * gpus if vram_used is not None else (),
        vram_total_gb=(round(per_gpu_mb / 1000, 2),) * gpus if per_gpu_mb else (),
        gpu_temp_c=(temp,) * gpus if temp is not None else (),
        cpu_pct=cpu,
        ram_pct=ram_pct,
    )


def _ratio_pct(used: float | None, limit: float | None) -> float | None:
    if used is None or not limit or limit <= 0:
        return None
    return round(100.0 * used / limit, 1)


def _listing_endpoint(response: httpx.Response) -> str | None:
    """BUNDLES or INSTANCES_LIST if ``response`` answers one (the base URL may carry a prefix)."""
    try:
        method, path = response.request.method, response.request.url.path
    except RuntimeError:
        return None
    for endpoint in LISTINGS:
        listing_method, _, listing_path = endpoint.partition(" ")
        if method == listing_method and path.endswith(listing_path):
            return endpoint
    return None


def _require_success(payload: Any, action: str) -> dict[str, Any]:
    """A 200 reply's body; ``{"success": false, ...}`` becomes the matching typed error."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ProtocolError(PROVIDER, f"unexpected reply while {action}")
    if payload.get("success") is False:
        raise error_from_body(200, payload, "", action)
    return payload


def _first_float(row: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = _float(row.get(key))
        if value is not None:
            return value
    return None


# -- errors -----------------------------------------------------------------------------------


def vast_error_for(response: httpx.Response) -> ProviderError | None:
    """ProviderHttp's hook: Vast's error shapes as typed errors; None leaves 5xx to the default."""
    status = response.status_code
    if status >= 500:
        return None
    body = _json_or_none(response)
    if status == 429:
        return _rate_limited(response, body)
    try:
        path = response.request.url.path
    except RuntimeError:
        path = ""
    return error_from_body(status, body, path, "")


def error_from_body(status: int, body: Any, path: str, action: str) -> ProviderError:
    code, message = _code_and_message(body)
    if not message:
        message = f"HTTP {status}" if status != 200 else "refused without a reason"
    lowered = message.lower()
    context = f"{action}: " if action else ""
    if code == "rate_limit_exceeded":
        return RateLimitedError(PROVIDER, f"{context}rate limited ({message})", None)
    if status == 401 or code in AUTH_CODES or "invalid user key" in lowered:
        return AuthError(PROVIDER, f"{context}API key rejected ({message})")
    if code == "no_such_ask" or (status in (404, 410) and "/asks/" in path):
        ask = _id_in_path(path) or (body.get("ask_id") if isinstance(body, dict) else None)
        which = f"offer {ask}" if ask else "the offer"
        message = f"{which} is no longer available (rented or withdrawn); refresh offers"
        return NoCapacityError(PROVIDER, message)
    if status == 403:
        return AuthError(PROVIDER, f"{context}not permitted ({message})")
    if code in NOT_FOUND_CODES or status in (404, 410):
        return NotFoundError(PROVIDER, f"{context}not found ({message})")
    if code in REJECT_CODES or status == 400:
        return RequestRejectedError(PROVIDER, f"{context}rejected ({message})")
    return RequestRejectedError(PROVIDER, f"{context}{message}" if context else message)


def _rate_limited(response: httpx.Response, body: Any) -> RateLimitedError:
    _, message = _code_and_message(body)
    text = message or " ".join(response.text.split())[:200]
    match = _THRESHOLD.search(text)
    if match:
        threshold = float(match.group(1))
        return RateLimitedError(
            PROVIDER, f"rate limited: Vast allows this call once every {threshold:g}s", threshold
        )
    return RateLimitedError(PROVIDER, f"rate limited ({text or 'API requests too frequent'})", None)


def _code_and_message(body: Any) -> tuple[str, str]:
    if isinstance(body, str):
        return "", _readable(body, "")
    if not isinstance(body, dict):
        return "", ""
    code = body.get("error")
    code = code if isinstance(code, str) else ""
    for key in ("msg", "message", "detail"):
        if body.get(key):
            return code, _readable(str(body[key]), code)
    return code, _readable(code.replace("_", " "), "")


def _readable(message: str, code: str) -> str:
    """Drop Vast's internal prefix ("error 410/3907: no_such_ask ") and any secret."""
    text = _INTERNAL_CODE.sub("", " ".join(message.split()))
    if code and text.startswith(code + " "):
        text = text[len(code) + 1:]
    return redact(text)[:300]


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return text or None


def _id_in_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    return parts[-1] if parts and parts[-1].isdigit() else ""
