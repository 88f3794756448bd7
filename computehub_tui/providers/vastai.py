"""Vast.ai adapter: offer search, instance listing and lifecycle over Vast's REST API (/api/v0)."""

from __future__ import annotations

import base64
import gzip
import re
from typing import Any

import httpx

from computehub_tui.domain import bounds
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
    public_address,
)
from computehub_tui.providers.adapter import HttpAdapter, checked_price, checked_ssh
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import (
    MB,
    ErrorDialect,
    ErrorReply,
    ErrorRule,
    HttpPolicy,
    parse_retry_after,
    readable,
    threshold_in,
)
from computehub_tui.providers.payload import (
    as_float,
    as_int,
    as_state,
    as_text,
    first_float,
    implausible_gpu_count,
    json_or_none,
    list_field,
    log_text,
)

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
MIB_PER_GIB = 1024
"""Vast's "MB" for RAM and VRAM are MiB: a 128 GiB machine reports cpu_ram 131072."""
LOG_FETCH_ATTEMPTS = 20
LOG_FETCH_DELAY_S = 0.5
LOG_BODY_LIMIT = 16 * MB
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
_DIGITS = re.compile(r"^\d+$")
_CONTAINER_PORT = re.compile(r"^\d{1,5}/(tcp|udp)$")


def vast_code_and_message(body: Any) -> tuple[str, str]:
    """Vast's ``{"success": false, "error": "<code>", "msg": "<text>"}`` (or ``message`` / ``detail``)
    as (code, safe message); without a message, the code in words."""
    if isinstance(body, str):
        return "", _readable(body, "")
    if not isinstance(body, dict):
        return "", ""
    code = as_text(body.get("error"), 60)
    for key in ("msg", "message", "detail"):
        text = as_text(body.get(key), 2000)
        if text:
            return code, _readable(text, code)
    return code, _readable(code.replace("_", " "), "")


def _readable(message: str, code: str) -> str:
    """Drop Vast's internal prefix ("error 410/3907: no_such_ask ") and any secret; one safe line."""
    text = _INTERNAL_CODE.sub("", as_text(message, 2000))
    if code and text.startswith(code + " "):
        text = text[len(code) + 1:]
    return readable(text)


VAST_ERRORS = ErrorDialect(
    read=vast_code_and_message,
    rules=(
        ErrorRule(RateLimitedError, "rate limited ({message})", codes={"rate_limit_exceeded"}),
        # The bundles endpoint answers a bad key with 404 "Invalid user key".
        ErrorRule(AuthError, "API key rejected ({message})", codes={"auth_error", "invalid_token", "not_authorized"},
                  statuses=(401,), phrase=re.compile("invalid user key", re.IGNORECASE)),
        ErrorRule(AuthError, "not permitted ({message})", statuses=(403,)),
        ErrorRule(NotFoundError, "not found ({message})",
                  codes={"not_found", "no_such_instance", "invalid_id", "no_such_ask"}, statuses=(404, 410)),
        ErrorRule(RequestRejectedError, "rejected ({message})",
                  codes={"invalid_args", "invalid_price", "no_ssh_key_for_vm", "invalid_request"}, statuses=(400,)),
    ),
    in_reply=ErrorRule(RequestRejectedError, "{message}"),
)
"""Vast's error codes (reference: providers.md, "Error body shapes") and what each means."""


def vast_rate_limited(response: httpx.Response, now: float) -> RateLimitedError:
    """Vast sends no Retry-After today; if it ever does, it wins (clamped like every provider's),
    else the "threshold=4.5" in the text."""
    _, message = vast_code_and_message(json_or_none(response))
    text = message or readable(response.text)
    header = parse_retry_after(response.headers.get("retry-after"), now)
    if header is not None:
        return RateLimitedError(PROVIDER, f"rate limited; Vast asks to wait {header:g}s", header)
    threshold = threshold_in(text)
    if threshold is not None:
        return RateLimitedError(
            PROVIDER, f"rate limited: Vast allows this call once every {threshold:g}s", threshold
        )
    return RateLimitedError(PROVIDER, f"rate limited ({text or 'API requests too frequent'})", None)


def vast_policy() -> HttpPolicy:
    """The default network policy: Vast's per-endpoint spacing so we never provoke a 429."""
    return HttpPolicy(endpoint_intervals=dict(VAST_ENDPOINT_INTERVALS))


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


class VastProvider(HttpAdapter):
    """Vast.ai through its REST API; the API key travels only in the Bearer header.

    Without a ``policy`` the adapter spaces calls per endpoint as Vast's documented thresholds
    require.
    """

    name = PROVIDER
    title = "Vast.ai"
    default_base_url = DEFAULT_BASE_URL
    make_policy = vast_policy
    errors = VAST_ERRORS
    listings = LISTINGS
    capabilities = Capabilities(
        bills_storage_while_stopped=True, interruptible=True, logs=True, live_metrics=True,
        notes=(
            "stopped instances still bill storage",
            "offers are single-use: once rented, an offer id cannot be launched again",
            "disk size is fixed at launch",
            "interruptible instances stop when outbid",
        ),
    )

    def typed_reply(self, response: httpx.Response) -> RateLimitedError | None:
        """Vast words a 429 its own way: a threshold in plain text, no Retry-After (so far)."""
        return vast_rate_limited(response, self.clock.now()) if response.status_code == 429 else None

    # -- offers -----------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        body = offer_search_body(query)
        payload = await self.http.request_json("POST", "/api/v0/bundles/", json_body=body,
                                               endpoint=BUNDLES, idempotent=True)
        rows = self.plausible(list_field(payload, "offers", PROVIDER), _gpu_count_implausible)
        now = self.clock.now()
        return [offer for row in rows for offer in offers_from_row(row, query, now)]

    # -- instances --------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        payload = await self.http.request_json("GET", "/api/v0/instances/", params={"owner": "me"},
                                               endpoint=INSTANCES_LIST)
        rows = self.plausible(list_field(payload, "instances", PROVIDER), _gpu_count_implausible)
        now = self.clock.now()
        return [instance for instance in (instance_from_row(row, now) for row in rows) if instance is not None]

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        ask_id = ask_id_of(offer)
        body = launch_body(offer, spec)
        try:
            payload = await self.http.request_json("PUT", f"/api/v0/asks/{ask_id}/", json_body=body,
                                                   endpoint=ASK_CREATE, outcome="launch")
            result = _require_success(payload, f"launching offer {ask_id}")
        except NotFoundError:
            # An offer that no longer exists was rented by someone else or withdrawn by its host.
            message = f"offer {ask_id} is no longer available (rented or withdrawn); refresh offers"
            raise NoCapacityError(PROVIDER, message) from None
        contract = as_text(result.get("new_contract"))
        if not contract.isdigit():
            raise ProtocolError(PROVIDER, f"launch reply for offer {ask_id} has no new_contract id")
        return contract

    async def start(self, instance_id: str) -> None:
        await self._set_state(instance_id, "running")

    async def stop(self, instance_id: str) -> None:
        await self._set_state(instance_id, "stopped")

    async def restart(self, instance_id: str) -> None:
        path = f"/api/v0/instances/reboot/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("PUT", path, json_body={}, endpoint=INSTANCE_REBOOT,
                                               outcome="restart")
        _require_success(payload, f"restarting instance {instance_id}")

    async def destroy(self, instance_id: str) -> None:
        path = f"/api/v0/instances/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("DELETE", path, endpoint=INSTANCE_DESTROY, outcome="destroy")
        _require_success(payload, f"destroying instance {instance_id}")

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        path = f"/api/v0/instances/request_logs/{_checked_id(instance_id)}/"
        payload = await self.http.request_json("PUT", path, json_body={"tail": str(max(1, tail))},
                                               endpoint=LOGS_REQUEST)
        result = _require_success(payload, f"requesting logs of instance {instance_id}")
        result_url = result.get("result_url")
        if not isinstance(result_url, str) or not result_url.startswith(("https://", "http://")):
            raise ProtocolError(PROVIDER, "log request reply has no result_url")
        return log_text(await self._fetch_log_text(result_url, instance_id), max(1, tail))

    async def check_auth(self) -> None:
        payload = await self.http.request_json("GET", "/api/v0/users/current/",
                                               endpoint=CURRENT_USER)
        if not isinstance(payload, dict):
            raise ProtocolError(PROVIDER, "account reply is not a JSON object")

    # -- helpers ----------------------------------------------------------------------------

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
                                               ok_statuses=(200, 403, 404), max_body=LOG_BODY_LIMIT)
            if response.status_code == 200:
                return response.text
            if attempt + 1 < LOG_FETCH_ATTEMPTS:
                await self.clock.sleep(LOG_FETCH_DELAY_S)
        waited = LOG_FETCH_ATTEMPTS * LOG_FETCH_DELAY_S
        message = f"logs of instance {instance_id} were not ready after {waited:.0f}s"
        raise UnavailableError(PROVIDER, message)


# -- request building ------------------------------------------------------------------------


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


def _gpu_count_implausible(row: Any) -> bool:
    return isinstance(row, dict) and implausible_gpu_count(row.get("num_gpus"))


def offers_from_row(row: Any, query: OfferQuery, now: float) -> list[Offer]:
    """The on-demand and/or interruptible offers one bundle yields; none if it is unusable."""
    if not isinstance(row, dict):
        return []
    ask_id = as_int(row.get("id"))
    num_gpus = bounds.gpu_count(as_float(row.get("num_gpus")))
    raw_gpu = as_text(row.get("gpu_name"))
    if ask_id is None or num_gpus is None or not raw_gpu:
        return []
    if row.get("cpu_cores") is None:  # gpuhunt skips these too: the listing is incomplete
        return []
    storage_hour = _storage_hour(row, query.disk_gb)
    on_demand_price = _on_demand_price(row, storage_hour)
    if on_demand_price is None:
        return []
    gpu = canonical_gpu_name(raw_gpu)
    location = as_text(row.get("geolocation"))
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "gpu": gpu,
        "gpu_count": num_gpus,
        "vram_gb": nominal_vram_gb(as_float(row.get("gpu_ram")), gpu),
        "vcpus": bounds.size_or_zero(first_float(row, "cpu_cores_effective", "cpu_cores"), bounds.MAX_VCPUS),
        "ram_gb": gib_from_mib(as_float(row.get("cpu_ram")), bounds.MAX_RAM_GB),
        "disk_gb": float(query.disk_gb),  # the disk the quoted price includes
        "location": location,
        "country": country_code(location),
        "reliability": bounds.reliability(first_float(row, "reliability", "reliability2")),
        "available": row.get("rentable") is not False and row.get("rented") is not True,
        "quoted_at": now,
        "cuda": bounds.within(as_float(row.get("cuda_max_good")), 0.0, bounds.MAX_CUDA_VERSION),
        "inet_down_mbps": bounds.within(as_float(row.get("inet_down")), 0.0, bounds.MAX_BANDWIDTH_MBPS),
        "storage_gb_month": bounds.within(as_float(row.get("storage_cost")), 0.0, bounds.MAX_STORAGE_PRICE_GB_MONTH),
        "min_bid": as_float(row.get("min_bid")),
        "raw_gpu_name": raw_gpu,
    }
    extra = {
        "ask_id": ask_id,
        "machine_id": as_int(row.get("machine_id")),
        "host_id": as_int(row.get("host_id")),
        "dph_base": as_float(row.get("dph_base")),
        "storage_hour": storage_hour,
        "max_disk_gb": bounds.within(as_float(row.get("disk_space")), 0.0, bounds.MAX_DISK_GB),
        "direct_port_count": as_int(row.get("direct_port_count")),
        "hosting_type": as_int(row.get("hosting_type")),
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
    disk_hour = as_float(search.get("diskHour")) if isinstance(search, dict) else None
    if disk_hour is None:
        disk_hour = disk_gb * (as_float(row.get("storage_cost")) or 0.0) / HOURS_PER_MONTH
    return bounds.storage_price_hour(disk_hour) or 0.0


def _on_demand_price(row: dict[str, Any], storage_hour: float) -> float | None:
    total = as_float(row.get("dph_total"))
    if total is not None:
        return total  # already includes the disk we sent as allocated_storage
    base = as_float(row.get("dph_base"))
    return None if base is None else base + storage_hour


def gib_from_mib(mebibytes: float | None, ceiling: float) -> float:
    """Vast's MB (really MiB) as GiB to one decimal; 0.0 (unknown) when absent or absurd."""
    return round(bounds.size_or_zero((mebibytes or 0.0) / MIB_PER_GIB, ceiling), 1)


def nominal_vram_gb(megabytes: float | None, gpu: str) -> float:
    """Per-GPU VRAM in GB from Vast's MB (MiB), snapped to the card's nominal size where it matches.

    Offers and Monitor both use this, so a 4090 is 24 GB everywhere."""
    spec = gpu_spec(gpu)
    gib = bounds.within(megabytes, 1.0, bounds.MAX_VRAM_GB_PER_GPU * MIB_PER_GIB)
    if gib is None:
        return spec.vram_gb if spec else 0.0
    gib /= MIB_PER_GIB
    if spec and abs(gib - spec.vram_gb) <= spec.vram_gb * NOMINAL_VRAM_SLACK:
        return spec.vram_gb
    return round(gib, 1)


def country_code(geolocation: str) -> str:
    """``"Oslo, NO"`` → ``NO``; ``"California, United States"`` → ``US``; unknown → ``""``."""
    tail = geolocation.rsplit(",", 1)[-1].strip()
    if len(tail) == 2 and tail.isascii() and tail.isalpha():
        return tail.upper()
    return _COUNTRY_NAMES.get(tail.lower(), "")


def instance_from_row(row: Any, now: float) -> Instance | None:
    if not isinstance(row, dict) or as_int(row.get("id")) is None or _gpu_count_implausible(row):
        return None
    actual = as_state(row.get("actual_status"))
    status, note = map_status(actual or None, row.get("intended_status"), row.get("status_msg"))
    num_gpus = bounds.gpu_count(as_float(row.get("num_gpus"))) or 0
    gpu = canonical_gpu_name(as_text(row.get("gpu_name")))
    storage_hour = _instance_storage_hour(row)
    notes = [note] if note else []
    price = as_float(row.get("dph_total"))
    if price is None:
        price = (as_float(row.get("dph_base")) or 0.0) + storage_hour
    billed = checked_price(price, num_gpus, notes)
    running = status is InstanceStatus.RUNNING
    ssh = checked_ssh(ssh_endpoint(row) if running else None, running and _offers_ssh(row), notes)
    return Instance(
        provider=PROVIDER,
        instance_id=as_text(row.get("id")),
        label=as_text(row.get("label")),
        status=status,
        # Vast leaves actual_status null while it looks for room on the host.
        provider_status=actual or "scheduling",
        gpu=gpu,
        gpu_count=num_gpus,
        price_hour=billed,
        ssh=ssh,
        ports=public_ports(row),
        started_at=bounds.timestamp(as_float(row.get("start_date")), now),
        running_since=_running_since(row, now) if running else None,
        location=as_text(row.get("geolocation")),
        image=as_text(row.get("image_uuid")),
        metrics=metrics_from_row(row, num_gpus, now, gpu) if running else None,
        storage_price_hour=round(storage_hour, 6),
        status_message="; ".join(notes),
        pricing=instance_pricing(row.get("is_bid")),
    )


def instance_pricing(is_bid: Any) -> PricingKind | None:
    """Vast's ``is_bid`` on an instance: true for an interruptible (bid) rental. Only a JSON boolean counts."""
    if isinstance(is_bid, bool):
        return PricingKind.INTERRUPTIBLE if is_bid else PricingKind.ON_DEMAND
    return None


def _running_since(row: dict[str, Any], now: float) -> float | None:
    """Vast's ``start_date`` survives a stop and start; ``uptime_mins`` is the current run's age."""
    minutes = bounds.duration(as_float(row.get("uptime_mins")))
    return None if minutes is None else now - minutes * 60


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
    message = as_text(status_msg)
    word = as_state(actual)
    key = word.lower() or None
    if key is None:
        status = InstanceStatus.PROVISIONING
    else:
        status = _STATUS_BY_ACTUAL.get(key, InstanceStatus.UNKNOWN)
    intended_word = as_state(intended).lower()
    notes: list[str] = []
    if key is not None and key not in _STATUS_BY_ACTUAL:
        notes.append(f"unrecognised Vast status '{word}'")
    elif key in _STATUS_NOTES:
        notes.append(_STATUS_NOTES[key])
    if intended_word == "stopped" and status in (InstanceStatus.RUNNING, InstanceStatus.STARTING):
        notes.append("stop requested; still running")
    elif intended_word == "running" and key == "stopped":
        # Still billed as stopped until the host schedules it (or, for a bid, until it wins again).
        notes.append("start requested; waiting for the host")
    if status.is_transitional and message.lower().startswith("error"):
        status = InstanceStatus.ERROR
    if message:
        notes.append(message)
    return status, "; ".join(notes)


def ssh_endpoint(row: dict[str, Any]) -> SshEndpoint | None:
    """Direct ``public_ipaddr:ports[22/tcp]`` if mapped, else the proxy (+1 for jupyter images);
    None when neither is a valid address."""
    direct_port = _host_port(row.get("ports"), "22/tcp")
    if direct_port is not None:
        direct = SshEndpoint.parse(row.get("public_ipaddr"), direct_port)
        if direct is not None:
            return direct
    port = as_int(row.get("ssh_port"))
    if port is None:
        return None
    if "jupyter" in as_text(row.get("image_runtype")):
        port += 1
    return SshEndpoint.parse(row.get("ssh_host"), port)


def _offers_ssh(row: dict[str, Any]) -> bool:
    """The row names some SSH address (valid or not)."""
    return bool(row.get("ssh_host") or _host_port(row.get("ports"), "22/tcp") is not None)


def public_ports(row: dict[str, Any]) -> dict[str, str]:
    """Container port ("8888/tcp") to a validated public "ip:port"."""
    ports = row.get("ports")
    if not isinstance(ports, dict):
        return {}
    mapped: dict[str, str] = {}
    for container_port in ports:
        if not isinstance(container_port, str) or not _CONTAINER_PORT.match(container_port):
            continue
        address = public_address(row.get("public_ipaddr"), _host_port(ports, container_port))
        if address is not None:
            mapped[container_port] = address
    return mapped


def _host_port(ports: Any, container_port: str) -> int | None:
    if not isinstance(ports, dict):
        return None
    bindings = ports.get(container_port)
    if not isinstance(bindings, list) or not bindings or not isinstance(bindings[0], dict):
        return None
    return as_int(bindings[0].get("HostPort"))


def _instance_storage_hour(row: dict[str, Any]) -> float:
    for key in ("instance", "search"):
        breakdown = row.get(key)
        disk_hour = as_float(breakdown.get("diskHour")) if isinstance(breakdown, dict) else None
        if disk_hour is not None:
            return bounds.storage_price_hour(disk_hour) or 0.0
    disk = as_float(row.get("disk_space")) or 0.0
    return bounds.storage_price_hour(disk * (as_float(row.get("storage_cost")) or 0.0) / HOURS_PER_MONTH) or 0.0


def metrics_from_row(row: dict[str, Any], num_gpus: int, now: float, gpu: str) -> MetricSample | None:
    """One sample from Vast's aggregate readings, repeated per GPU (Vast sends one value each).

    Every reading is bounded; the per-GPU VRAM total is the same nominal size Offers shows."""
    gpus = bounds.gpu_count(num_gpus) or 1
    util = bounds.percent(as_float(row.get("gpu_util")))
    vram_used = bounds.within(as_float(row.get("vmem_usage")), 0.0, bounds.MAX_VRAM_GB_PER_GPU)
    temp = bounds.temperature_c(as_float(row.get("gpu_temp")))
    per_gpu_mb = as_float(row.get("gpu_ram"))
    total_mb = as_float(row.get("gpu_totalram"))
    if per_gpu_mb is None and total_mb is not None:
        per_gpu_mb = total_mb / gpus
    vram_total = nominal_vram_gb(per_gpu_mb, gpu) if per_gpu_mb else 0.0
    cpu = bounds.percent(as_float(row.get("cpu_util")), bounds.MAX_CPU_PERCENT)
    ram_pct = bounds.percent(_ratio_pct(as_float(row.get("mem_usage")), as_float(row.get("mem_limit"))))
    if util is None and vram_used is None and temp is None and cpu is None and ram_pct is None:
        return None
    return MetricSample(
        time=now,
        gpu_util=(util,) * gpus if util is not None else (),
        vram_used_gb=(vram_used,) * gpus if vram_used is not None else (),
        vram_total_gb=(vram_total,) * gpus if vram_total else (),
        gpu_temp_c=(temp,) * gpus if temp is not None else (),
        cpu_pct=cpu,
        ram_pct=ram_pct,
    )


def _ratio_pct(used: float | None, limit: float | None) -> float | None:
    if used is None or not limit or limit <= 0:
        return None
    return round(100.0 * used / limit, 1)


def _require_success(payload: Any, action: str) -> dict[str, Any]:
    """A 200 reply's body; ``{"success": false, ...}`` becomes the matching typed error."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ProtocolError(PROVIDER, f"unexpected reply while {action}")
    if payload.get("success") is False:
        code, message = vast_code_and_message(payload)
        raise VAST_ERRORS.error(PROVIDER, ErrorReply(None, code, message or "refused without a reason"), action)
    return payload
