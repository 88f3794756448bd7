"""RunPod adapter: GraphQL for offers, pods and lifecycle; REST v2 for restart and SSE logs."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from computehub_tui.clock import Clock
from computehub_tui.domain import bounds
from computehub_tui.domain.gpus import canonical_gpu_name
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
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.adapter import HttpAdapter, checked_price, checked_ssh, offers_matching
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    ReplyTooLargeError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import (
    MB,
    SERVER_STATUSES,
    ErrorDialect,
    ErrorReply,
    ErrorRule,
    HttpPolicy,
    capped_lines,
    read_capped,
    readable,
)
from computehub_tui.providers.payload import (
    TRUNCATED,
    as_dict,
    as_dicts,
    as_float,
    as_int,
    as_list,
    as_state,
    as_text,
    implausible_gpu_count,
    json_or_none,
    list_field,
    log_text,
)

PROVIDER = "runpod"
GRAPHQL_URL = "https://api.runpod.io/graphql"
REST_URL = "https://api.runpod.io/v2"
GPU_COUNTS = (1, 2, 4, 8)
OFFER_CONCURRENCY = 4
LOGS_TIMEOUT_S = 8.0
MAX_LOG_TAIL = 5000
LOG_STREAM_LIMIT = 16 * MB
_PORT_KINDS = frozenset({"tcp", "udp", "http"})
STOPPED_VOLUME_USD_GB_MONTH = 0.20
"""What a stopped pod's volume disk costs: RunPod's storage docs (docs.runpod.io/pods/storage, "Volume disk:
$0.10/GB/month (running), $0.20/GB/month (stopped)"; the shared reference/providers.md gives no figure, only
that stopping "keeps the volume disk"). The container disk is wiped on stop and billed only while running; the
API reports no storage price, so this figure is the only source."""
HOURS_PER_MONTH = 730.0

SPOT_AT_RISK = (
    "RunPod removed spot (interruptible) pods from its docs in May 2026"
    " and may no longer offer them"
)

_CAPACITY = re.compile(
    r"no longer any instances available|no instances? (are )?available|not enough (free )?gpus"
    r"|insufficient (gpu )?capacity|out of stock|no (available )?machines? (found|available)",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"unauthori[sz]ed|api[ _-]?key|not authenticated|authentication (failed|required)|forbidden"
    r"|permission denied",
    re.IGNORECASE,
)
_INTERNAL = re.compile(r"something went wrong", re.IGNORECASE)
_NOT_FOUND = re.compile(r"\bnot found\b|does not exist", re.IGNORECASE)


OFFERS_QUERY = """
query GpuOffers($input: GpuLowestPriceInput!) {
  gpuTypes {
    id displayName manufacturer memoryInGb secureCloud communityCloud securePrice communityPrice
    lowestPrice(input: $input) {
      uninterruptablePrice minimumBidPrice stockStatus minVcpu minMemory
      availableGpuCounts countryCode
    }
  }
}
"""

GPU_CATALOGUE_QUERY = "query GpuCatalogue { gpuTypes { id displayName memoryInGb } }"

PODS_QUERY = """
query Pods {
  myself {
    pods {
      id name desiredStatus costPerHr gpuCount imageName lastStatusChange machineId podType
      memoryInGb vcpuCount containerDiskInGb volumeInGb
      machine { gpuDisplayName location }
      runtime {
        uptimeInSeconds
        ports { ip isIpPublic privatePort publicPort type }
        gpus { id gpuUtilPercent memoryUtilPercent }
        container { cpuPercent memoryPercent }
      }
    }
  }
}
"""

POD_QUERY = """
query Pod($input: PodFilter!) {
  pod(input: $input) {
    id desiredStatus gpuCount costPerHr podType machineId runtime { uptimeInSeconds }
  }
}
"""

ACCOUNT_QUERY = "query Account { myself { id } }"

DEPLOY_MUTATION = """
mutation Deploy($input: PodFindAndDeployOnDemandInput!) {
  podFindAndDeployOnDemand(input: $input) { id desiredStatus costPerHr machineId }
}
"""

SPOT_MUTATION = """
mutation DeploySpot($input: PodRentInterruptableInput!) {
  podRentInterruptable(input: $input) { id desiredStatus costPerHr machineId }
}
"""

STOP_MUTATION = """
mutation Stop($input: PodStopInput!) { podStop(input: $input) { id desiredStatus } }
"""

RESUME_MUTATION = """
mutation Resume($input: PodResumeInput!) { podResume(input: $input) { id desiredStatus } }
"""

BID_RESUME_MUTATION = """
mutation BidResume($input: PodBidResumeInput!) { podBidResume(input: $input) { id desiredStatus } }
"""

# podTerminate returns a scalar; asking for sub-fields is a schema error.
TERMINATE_MUTATION = """
mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }
"""

_STATUS_BY_DESIRED: dict[str, InstanceStatus] = {
    "EXITED": InstanceStatus.STOPPED,
    "TERMINATED": InstanceStatus.TERMINATED,
    "CREATED": InstanceStatus.PROVISIONING,
    "RESTARTING": InstanceStatus.STARTING,
    "PAUSED": InstanceStatus.STOPPED,
}


# -- errors ------------------------------------------------------------------------------------


def graphql_error(error: dict[str, Any], *, http_status: int = 200) -> ProviderError:
    """Type a GraphQL ``errors[0]`` by what its message says (RunPod sends these with HTTP 200)."""
    message = readable(as_text(error.get("message"), 2000)) or "unknown GraphQL error"
    code = as_text(as_dict(error.get("extensions")).get("code"), 60)
    status = http_status if http_status >= 300 else None
    return GRAPHQL_ERRORS.error(PROVIDER, ErrorReply(status, code, message))


@contextmanager
def _spot_at_risk(call: str) -> Iterator[None]:
    """A failed spot call says spot may be gone; a rejected key or a rate limit is not about spot."""
    try:
        yield
    except (AuthError, RateLimitedError):
        raise
    except ProviderError as error:
        raise type(error)(PROVIDER, f"{call} failed: {error.message}; {SPOT_AT_RISK}") from None


def _first_graphql_error(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    # problem+json also has an "errors" list (of strings); those are details, not GraphQL errors.
    if not isinstance(errors, list) or not errors or _is_problem(body):
        return None
    first = errors[0]
    return first if isinstance(first, dict) else {"message": as_text(first, 2000)}


def _is_problem(body: Any) -> bool:
    return isinstance(body, dict) and ("title" in body or "detail" in body)


def problem_words(body: Any) -> tuple[str, str]:
    """REST v2 problem+json as (no code, "title: detail (errors…)"); empty for any other shape."""
    if not _is_problem(body):
        return "", ""
    title = as_text(body.get("title"))
    detail = as_text(body.get("detail"))
    text = f"{title}: {detail}" if title and detail and detail != title else title or detail
    problems = [as_text(item) for item in as_list(body.get("errors"))[:3] if not isinstance(item, dict)]
    if any(problems):
        text += f" ({'; '.join(p for p in problems if p)})"
    return "", readable(text)


_GRAPHQL_REJECTED = ErrorRule(RequestRejectedError, "request rejected: {message}", statuses=frozenset(range(400, 500)))
GRAPHQL_ERRORS = ErrorDialect(
    rules=(
        ErrorRule(NoCapacityError, "no capacity: {message}", phrase=_CAPACITY),
        ErrorRule(AuthError, "API key rejected: {message}", codes={"UNAUTHENTICATED", "FORBIDDEN"}, phrase=_AUTH),
        ErrorRule(UnavailableError, "server error: {message}", codes={"INTERNAL_SERVER_ERROR"}, phrase=_INTERNAL,
                  statuses=SERVER_STATUSES),
        ErrorRule(NotFoundError, "{message}", phrase=_NOT_FOUND),
        _GRAPHQL_REJECTED,
    ),
    in_reply=_GRAPHQL_REJECTED,
)
"""RunPod's GraphQL errors carry no dependable code (most say INTERNAL_SERVER_ERROR), so their words
decide, whatever the HTTP status: the capacity and auth phrases first, since those change what the
user should do next."""

REST_ERRORS = ErrorDialect(read=problem_words)
"""REST v2 errors are problem+json, typed by their status."""


class RunpodProvider(HttpAdapter):
    """A RunPod account over GraphQL (offers, pods, lifecycle) and REST v2 (restart, logs)."""

    name = PROVIDER
    title = "RunPod"
    default_base_url = REST_URL
    errors = REST_ERRORS
    make_policy = partial(HttpPolicy, timeout=30.0)
    capabilities = Capabilities(
        bills_storage_while_stopped=True, interruptible=True, logs=True, live_metrics=True,
        notes=(
            f"Spot bids are at risk: {SPOT_AT_RISK}.",
            "A stopped pod keeps billing for its volume disk (pods launched here have none).",
            "Restart works on a running pod only; start a stopped pod instead.",
        ),
    )

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret | None,
        *,
        graphql_url: str = GRAPHQL_URL,
        rest_url: str = REST_URL,
        clock: Clock | None = None,
        policy: HttpPolicy | None = None,
        logs_timeout: float = LOGS_TIMEOUT_S,
    ) -> None:
        super().__init__(client, api_key, base_url=rest_url, clock=clock, policy=policy)
        self._graphql_url = graphql_url
        self._rest_url = self.http.base_url
        self._logs_timeout = logs_timeout
        self._vram_by_gpu: dict[str, float] = {}
        self._catalogue_fetched = False

    def typed_reply(self, response: httpx.Response) -> ProviderError | None:
        """A GraphQL error is typed by what it says at any status, except where the status alone
        decides (a rejected key, a rate limit)."""
        if response.status_code in (401, 403, 429):
            return None
        first_error = _first_graphql_error(json_or_none(response))
        return None if first_error is None else graphql_error(first_error, http_status=response.status_code)

    # -- offers ------------------------------------------------------------------------------

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        """One lowestPrice query per (GPU count, cloud), a few at a time, filtered here."""
        combinations = [
            (count, secure)
            for count in GPU_COUNTS
            if count >= query.min_gpu_count
            for secure in (True, False)
        ]
        limiter = asyncio.Semaphore(OFFER_CONCURRENCY)

        async def fetch(count: int, secure: bool) -> list[Any]:
            async with limiter:
                data = await self._query(
                    OFFERS_QUERY, {"input": {"gpuCount": count, "secureCloud": secure}}
                )
            return list_field(data, "gpuTypes", PROVIDER)

        results = await asyncio.gather(
            *(fetch(c, s) for c, s in combinations), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
        now = self.clock.now()
        offers: list[Offer] = []
        for (count, secure), gpu_types in zip(combinations, results, strict=True):
            assert isinstance(gpu_types, list)
            self._remember_vram(gpu_types)
            for gpu_type in as_dicts(gpu_types):
                offers.extend(_offers_for(gpu_type, count, secure, now, query))
        self.dropped_rows = 0  # GPU counts are the ones we asked for, never the provider's
        return offers_matching(sorted(offers, key=lambda offer: (offer.price_hour, offer.offer_id)), query)

    # -- instances ---------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        data = await self._query(PODS_QUERY)
        myself = data.get("myself")
        if not isinstance(myself, dict):
            raise AuthError(PROVIDER, "no account behind this API key (myself is empty)")
        pods = self.plausible(as_dicts(list_field(myself, "pods", PROVIDER)),
                              lambda pod: implausible_gpu_count(pod.get("gpuCount")))
        if any(_pod_needs_vram(pod, self._vram_by_gpu) for pod in pods):
            await self._load_gpu_catalogue()
        now = self.clock.now()
        return [self._instance_from(pod, now) for pod in pods]

    def _instance_from(self, pod: dict[str, Any], now: float) -> Instance:
        machine = as_dict(pod.get("machine"))
        runtime = as_dict(pod.get("runtime")) or None
        gpu = canonical_gpu_name(as_text(machine.get("gpuDisplayName"))) if machine else "unknown"
        uptime = bounds.duration(as_float(runtime.get("uptimeInSeconds"))) if runtime else None
        gpu_count = bounds.gpu_count(as_float(pod.get("gpuCount"))) or 0
        status = pod_status(pod)
        notes = [as_text(pod.get("lastStatusChange"))]
        price = checked_price(as_float(pod.get("costPerHr")), gpu_count, notes, sent=pod.get("costPerHr") is not None)
        ssh = checked_ssh(ssh_endpoint(runtime), _ssh_port(runtime) is not None, notes)
        return Instance(
            provider=PROVIDER,
            instance_id=as_text(pod.get("id")),
            label=as_text(pod.get("name")),
            status=status,
            provider_status=as_state(pod.get("desiredStatus")) or status.value,
            gpu=gpu,
            gpu_count=gpu_count,
            price_hour=price,
            ssh=ssh,
            ports=public_ports(runtime),
            started_at=now - uptime if uptime is not None else None,
            running_since=now - uptime if uptime is not None else None,
            location=as_text(machine.get("location")),
            image=as_text(pod.get("imageName")),
            metrics=self._metrics_from(runtime, gpu, now),
            storage_price_hour=stopped_storage_price_hour(pod),
            status_message="; ".join(note for note in notes if note),
            pricing=pod_pricing(pod),
        )

    def _metrics_from(
        self, runtime: dict[str, Any] | None, gpu: str, now: float
    ) -> MetricSample | None:
        if runtime is None:
            return None
        gpus = as_dicts(runtime.get("gpus"))[: bounds.MAX_GPUS_PER_MACHINE]
        container = as_dict(runtime.get("container"))
        if not gpus and not container:
            return None
        vram = self._vram_by_gpu.get(gpu)
        utils = _known(bounds.percent(as_float(item.get("gpuUtilPercent"))) for item in gpus)
        used: tuple[float, ...] = ()
        totals: tuple[float, ...] = ()
        if vram:
            memory = _known(bounds.percent(as_float(item.get("memoryUtilPercent"))) for item in gpus)
            used = tuple(round(vram * pct / 100.0, 2) for pct in memory)
            totals = (vram,) * len(gpus)
        return MetricSample(
            time=now,
            gpu_util=utils,
            vram_used_gb=used,
            vram_total_gb=totals,
            cpu_pct=bounds.percent(as_float(container.get("cpuPercent")), bounds.MAX_CPU_PERCENT),
            ram_pct=bounds.percent(as_float(container.get("memoryPercent"))),
        )

    async def _load_gpu_catalogue(self) -> None:
        """VRAM per GPU model, fetched once; metrics simply go without VRAM if this fails."""
        if self._catalogue_fetched:
            return
        self._catalogue_fetched = True
        try:
            data = await self._query(GPU_CATALOGUE_QUERY)
        except ProviderError:
            return
        self._remember_vram(list_field(data, "gpuTypes", PROVIDER))

    def _remember_vram(self, gpu_types: list[Any]) -> None:
        for gpu_type in as_dicts(gpu_types):
            memory = bounds.within(as_float(gpu_type.get("memoryInGb")), 1.0, bounds.MAX_VRAM_GB_PER_GPU)
            if memory is None:
                continue
            for raw in (as_text(gpu_type.get("id")), as_text(gpu_type.get("displayName"))):
                if raw:
                    self._vram_by_gpu.setdefault(canonical_gpu_name(raw), memory)

    # -- lifecycle ---------------------------------------------------------------------------

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        if not spec.image.strip():
            raise RequestRejectedError(PROVIDER, "an image is required to launch a pod")
        gpu_type_id, cloud_type, count = _offer_target(offer)
        pod_input = _deploy_input(gpu_type_id, cloud_type, count, spec)
        if offer.pricing is PricingKind.INTERRUPTIBLE:
            return await self._launch_spot(offer, pod_input, count, spec)
        data = await self._mutate(DEPLOY_MUTATION, {"input": pod_input}, "launch")
        return _new_pod_id(data, "podFindAndDeployOnDemand")

    async def _launch_spot(
        self, offer: Offer, pod_input: dict[str, Any], count: int, spec: LaunchSpec
    ) -> str:
        bid = spec.bid_price if spec.bid_price is not None else offer.min_bid or offer.price_hour
        pod_input = {**pod_input, "bidPerGpu": round(bid / max(1, count), 4)}
        with _spot_at_risk("spot launch"):
            data = await self._mutate(SPOT_MUTATION, {"input": pod_input}, "launch")
            return _new_pod_id(data, "podRentInterruptable")

    async def stop(self, instance_id: str) -> None:
        await self._mutate(STOP_MUTATION, {"input": {"podId": instance_id}}, "stop")

    async def start(self, instance_id: str) -> None:
        pod = await self._pod(instance_id)
        gpu_count = bounds.gpu_count(as_float(pod.get("gpuCount"))) or 1
        if as_state(pod.get("podType")).upper() == "INTERRUPTABLE":
            last_bid = bounds.billed_price(as_float(pod.get("costPerHr")), gpu_count) or 0.0
            await self._resume_spot(instance_id, gpu_count, last_bid)
            return
        await self._mutate(
            RESUME_MUTATION, {"input": {"podId": instance_id, "gpuCount": gpu_count}}, "start"
        )

    async def _resume_spot(self, instance_id: str, gpu_count: int, cost_per_hour: float) -> None:
        """A stopped spot pod resumes with a bid; we bid what it cost before it stopped."""
        if cost_per_hour <= 0:
            raise RequestRejectedError(
                PROVIDER, f"cannot resume spot pod {instance_id}: its last bid is unknown"
            )
        bid_input = {
            "podId": instance_id,
            "gpuCount": gpu_count,
            "bidPerGpu": round(cost_per_hour / gpu_count, 4),
        }
        with _spot_at_risk("spot resume"):
            await self._mutate(BID_RESUME_MUTATION, {"input": bid_input}, "start")

    async def restart(self, instance_id: str) -> None:
        response = await self.http.request(
            "POST",
            f"{self._rest_url}/pods/{_path_id(instance_id)}/action",
            json_body={"action": "restart"},
            endpoint="rest:pod-action",
            ok_statuses=(200, 201, 202, 204, 409),
            outcome="restart",
        )
        if response.status_code == 409:
            raise RequestRejectedError(
                PROVIDER, await self._restart_conflict_message(instance_id, response)
            )

    async def _restart_conflict_message(self, instance_id: str, response: httpx.Response) -> str:
        detail = self.errors.reply(response).message
        try:
            status = pod_status(await self._pod(instance_id))
        except ProviderError:
            return f"cannot restart this pod now ({detail})"
        hint = (
            "; start it instead"
            if status is InstanceStatus.STOPPED
            else "; wait until it is running"
        )
        return f"cannot restart a pod that is {status.value}{hint} ({detail})"

    async def destroy(self, instance_id: str) -> None:
        await self._mutate(TERMINATE_MUTATION, {"input": {"podId": instance_id}}, "destroy")

    async def _pod(self, instance_id: str) -> dict[str, Any]:
        data = await self._query(POD_QUERY, {"input": {"podId": instance_id}})
        pod = data.get("pod")
        if not isinstance(pod, dict):
            raise NotFoundError(PROVIDER, f"pod {instance_id} not found")
        return pod

    # -- logs and auth -----------------------------------------------------------------------

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        """The last ``tail`` lines of the v2 SSE log stream, read until it ends or goes quiet."""
        tail = max(0, min(tail, MAX_LOG_TAIL))
        if tail == 0:
            return ""
        lines, cut = await self._read_log_stream(instance_id, tail)
        text = log_text("\n".join(lines), tail)
        return f"{TRUNCATED}\n{text}" if cut and not text.startswith(TRUNCATED) else text

    async def _read_log_stream(self, instance_id: str, tail: int) -> tuple[list[str], bool]:
        """The log lines, and whether the stream was cut off at LOG_STREAM_LIMIT."""
        # ProviderHttp reads whole bodies; a follow-mode SSE stream may never end, so this call
        # streams directly and stops at the tail, at the end of the stream, the size cap or the
        # deadline.
        url = f"{self._rest_url}/pods/{_path_id(instance_id)}/logs"
        headers = {**self.http.headers(), "Accept": "text/event-stream"}
        lines: list[str] = []
        connected = False
        cut = False
        try:
            async with asyncio.timeout(self._logs_timeout):
                async with self.http.client.stream(
                    "GET",
                    url,
                    params={"tail": tail},
                    headers=headers,
                    timeout=httpx.Timeout(
                        self._logs_timeout, connect=self.http.policy.connect_timeout
                    ),
                ) as response:
                    connected = True
                    if response.status_code != 200:
                        response = await self._read_error_reply(response)
                        raise self.http.error_for(response)
                    stream = capped_lines(response, PROVIDER, self.http.policy, LOG_STREAM_LIMIT)
                    async with aclosing(sse_events(stream)) as events:
                        async for event in events:
                            line = log_line(event)
                            if line is not None:
                                lines.append(line)
                            if len(lines) >= tail:
                                break
        except ReplyTooLargeError:
            cut = True
        except (TimeoutError, httpx.ReadTimeout):
            if not connected:
                raise UnavailableError(PROVIDER, "log stream did not answer in time") from None
        except httpx.TransportError as error:
            if not lines:
                raise UnavailableError(PROVIDER, self.http.describe(error, url, self._logs_timeout)) from None
        return lines, cut

    async def _read_error_reply(self, response: httpx.Response) -> httpx.Response:
        try:
            return await read_capped(response, PROVIDER, self.http.policy)
        except ReplyTooLargeError:
            raise UnavailableError(PROVIDER, f"log request failed (HTTP {response.status_code})") from None

    async def check_auth(self) -> None:
        data = await self._query(ACCOUNT_QUERY)
        myself = data.get("myself")
        if not isinstance(myself, dict) or not myself.get("id"):
            raise AuthError(PROVIDER, "API key not accepted (no account returned)")

    # -- GraphQL transport -------------------------------------------------------------------

    async def _query(
        self, document: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A read-only GraphQL call: safe to retry on network errors and 5xx."""
        return await self._graphql(document, variables, idempotent=True)

    async def _mutate(self, document: str, variables: dict[str, Any], outcome: str) -> dict[str, Any]:
        """A GraphQL mutation: sent once, never retried, so nothing is rented or stopped twice;
        ``outcome`` names it when a failure leaves unknown whether it happened."""
        return await self._graphql(document, variables, idempotent=False, outcome=outcome)

    async def _graphql(
        self, document: str, variables: dict[str, Any] | None, *, idempotent: bool, outcome: str = ""
    ) -> dict[str, Any]:
        response = await self.http.request(
            "POST",
            self._graphql_url,
            json_body={"query": document, "variables": variables or {}},
            idempotent=idempotent,
            endpoint="graphql",
            outcome=outcome,
        )
        body = self.http.parse_json(response)
        if not isinstance(body, dict):
            raise ProtocolError(PROVIDER, "GraphQL reply was not a JSON object")
        first_error = _first_graphql_error(body)
        if first_error is not None:
            raise graphql_error(first_error, http_status=response.status_code)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ProtocolError(PROVIDER, "GraphQL reply had neither data nor errors")
        return data


# -- offers ------------------------------------------------------------------------------------


def _offers_for(
    gpu_type: dict[str, Any], count: int, secure: bool, now: float, query: OfferQuery
) -> list[Offer]:
    lowest = gpu_type.get("lowestPrice")
    if not isinstance(lowest, dict) or not _in_stock(lowest.get("stockStatus")):
        return []
    gpu_type_id = as_text(gpu_type.get("id"))
    if not gpu_type_id:
        return []
    cloud = "SECURE" if secure else "COMMUNITY"
    list_price = gpu_type.get("securePrice") if secure else gpu_type.get("communityPrice")
    per_gpu = _positive(lowest.get("uninterruptablePrice")) or _positive(list_price)
    country = as_text(lowest.get("countryCode"), 8)
    base: dict[str, Any] = {
        "provider": PROVIDER,
        "gpu": canonical_gpu_name(gpu_type_id),
        "gpu_count": count,
        "vram_gb": bounds.size_or_zero(as_float(gpu_type.get("memoryInGb")), bounds.MAX_VRAM_GB_PER_GPU),
        "vcpus": bounds.size_or_zero(as_float(lowest.get("minVcpu")), bounds.MAX_VCPUS),
        "ram_gb": bounds.size_or_zero(as_float(lowest.get("minMemory")), bounds.MAX_RAM_GB),
        "disk_gb": float(query.disk_gb),
        "location": f"{'Secure' if secure else 'Community'} Cloud"
        + (f" ({country})" if country else ""),
        "reliability": None,
        "available": True,
        "quoted_at": now,
        "country": country,
        "raw_gpu_name": gpu_type_id,
    }
    extra = {
        "gpu_type_id": gpu_type_id,
        "cloud_type": cloud,
        "stock_status": as_text(lowest.get("stockStatus")),
        "display_name": as_text(gpu_type.get("displayName")),
        "available_gpu_counts": [
            count for count in (bounds.gpu_count(as_float(item)) for item in as_list(lowest.get("availableGpuCounts")))
            if count is not None
        ][: bounds.MAX_GPUS_PER_MACHINE],
    }
    offers: list[Offer] = []
    offer_id = f"{gpu_type_id}|{cloud}|{count}"
    if per_gpu is not None and PricingKind.ON_DEMAND in query.pricing:
        offers.append(
            Offer(
                offer_id=offer_id,
                price_hour=round(per_gpu * count, 4),
                pricing=PricingKind.ON_DEMAND,
                extra=dict(extra),
                **base,
            )
        )
    min_bid = _positive(lowest.get("minimumBidPrice"))
    if min_bid is not None and PricingKind.INTERRUPTIBLE in query.pricing:
        bid_total = round(min_bid * count, 4)
        offers.append(
            Offer(
                offer_id=f"{offer_id}|SPOT",
                price_hour=bid_total,
                min_bid=bid_total,
                pricing=PricingKind.INTERRUPTIBLE,
                extra=dict(extra),
                **base,
            )
        )
    return offers


def _in_stock(stock: Any) -> bool:
    return as_state(stock) != ""


# -- pods --------------------------------------------------------------------------------------


def pod_status(pod: dict[str, Any]) -> InstanceStatus:
    """RunPod's desiredStatus plus runtime/machine presence as our lifecycle status."""
    desired = as_state(pod.get("desiredStatus")).upper()
    if desired == "RUNNING":
        if isinstance(pod.get("runtime"), dict):
            return InstanceStatus.RUNNING
        has_machine = bool(pod.get("machineId")) or isinstance(pod.get("machine"), dict)
        return InstanceStatus.STARTING if has_machine else InstanceStatus.PROVISIONING
    return _STATUS_BY_DESIRED.get(desired, InstanceStatus.UNKNOWN)


_PRICING_BY_POD_TYPE = {"INTERRUPTABLE": PricingKind.INTERRUPTIBLE, "RESERVED": PricingKind.ON_DEMAND}


def pod_pricing(pod: dict[str, Any]) -> PricingKind | None:
    """GraphQL's ``podType`` (``INTERRUPTABLE`` / ``RESERVED``), else REST v1's boolean ``interruptible``."""
    kind = _PRICING_BY_POD_TYPE.get(as_state(pod.get("podType")).upper())
    if kind is None and isinstance(pod.get("interruptible"), bool):
        kind = PricingKind.INTERRUPTIBLE if pod["interruptible"] else PricingKind.ON_DEMAND
    return kind


def stopped_storage_price_hour(pod: dict[str, Any]) -> float:
    """What ``pod`` bills per hour while stopped: its volume disk at RunPod's stopped-volume rate (0 for an
    absurd or missing size)."""
    volume_gb = bounds.within(as_float(pod.get("volumeInGb")), 0.0, bounds.MAX_DISK_GB) or 0.0
    return bounds.storage_price_hour(round(volume_gb * STOPPED_VOLUME_USD_GB_MONTH / HOURS_PER_MONTH, 6)) or 0.0


def ssh_endpoint(runtime: dict[str, Any] | None) -> SshEndpoint | None:
    """The public TCP mapping of port 22, as runpodctl finds it; None if it is not a valid address."""
    port = _ssh_port(runtime)
    return None if port is None else SshEndpoint.parse(port.get("ip"), as_int(port.get("publicPort")))


def _ssh_port(runtime: dict[str, Any] | None) -> dict[str, Any] | None:
    for port in _runtime_ports(runtime):
        if (
            as_int(port.get("privatePort")) == 22
            and port.get("isIpPublic") is True
            and as_state(port.get("type")).lower() == "tcp"
            and port.get("ip")
            and as_int(port.get("publicPort"))
        ):
            return port
    return None


def public_ports(runtime: dict[str, Any] | None) -> dict[str, str]:
    """Container port ("22/tcp") to the validated public "ip:port" of every direct mapping."""
    mapped: dict[str, str] = {}
    for port in _runtime_ports(runtime):
        private = as_int(port.get("privatePort"))
        kind = as_state(port.get("type")).lower() or "tcp"
        address = public_address(port.get("ip"), as_int(port.get("publicPort")))
        if port.get("isIpPublic") is True and address and private and 0 < private < 65536 and kind in _PORT_KINDS:
            mapped[f"{private}/{kind}"] = address
    return mapped


def _runtime_ports(runtime: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(runtime, dict):
        return []
    return as_dicts(runtime.get("ports"))


def _pod_needs_vram(pod: dict[str, Any], known: dict[str, float]) -> bool:
    runtime = pod.get("runtime")
    machine = pod.get("machine")
    if not isinstance(runtime, dict) or not runtime.get("gpus") or not isinstance(machine, dict):
        return False
    return canonical_gpu_name(as_text(machine.get("gpuDisplayName"))) not in known


# -- launch ------------------------------------------------------------------------------------


def _offer_target(offer: Offer) -> tuple[str, str, int]:
    """(gpuTypeId, cloudType, gpuCount) from the offer's extras, else from its id."""
    parts = offer.offer_id.split("|")
    gpu_type_id = str(offer.extra.get("gpu_type_id") or parts[0])
    cloud_type = str(
        offer.extra.get("cloud_type") or (parts[1] if len(parts) > 1 else "ALL")
    ).upper()
    if not gpu_type_id or cloud_type not in ("SECURE", "COMMUNITY", "ALL"):
        raise RequestRejectedError(PROVIDER, f"offer {offer.offer_id!r} is not a RunPod offer")
    return gpu_type_id, cloud_type, max(1, offer.gpu_count)


def _deploy_input(
    gpu_type_id: str, cloud_type: str, count: int, spec: LaunchSpec
) -> dict[str, Any]:
    ports = [port.strip() for port in spec.ports if port.strip()]
    if spec.jupyter and "8888/http" not in ports:
        ports.insert(0, "8888/http")
    pod_input: dict[str, Any] = {
        "cloudType": cloud_type,
        "gpuTypeId": gpu_type_id,
        "gpuCount": count,
        "name": spec.label
        or f"computehub-{canonical_gpu_name(gpu_type_id).lower().replace(' ', '-')}",
        "imageName": spec.image.strip(),
        "containerDiskInGb": spec.disk_gb,
        "volumeInGb": 0,
        "ports": ",".join(ports),
        "env": [{"key": key, "value": value} for key, value in spec.env.items()],
        "startSsh": True,
        "startJupyter": spec.jupyter,
        "supportPublicIp": True,
    }
    if spec.onstart.strip():
        # dockerArgs replaces the image's command; a shell runs multi-line scripts as written.
        pod_input["dockerArgs"] = f"bash -c {shlex.quote(spec.onstart)}"
    return pod_input


def _new_pod_id(data: dict[str, Any], field: str) -> str:
    pod = data.get(field)
    pod_id = as_text(pod.get("id")) if isinstance(pod, dict) else ""
    if not pod_id:
        raise ProtocolError(PROVIDER, f"{field} returned no pod id")
    return pod_id


def _path_id(instance_id: str) -> str:
    return quote(instance_id, safe="")


# -- server-sent events ------------------------------------------------------------------------


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The data of each Server-Sent Event (multi-line data joined with newlines)."""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


def log_line(data: str) -> str | None:
    """The text of one v2 log event ``{"source", "line", "ts"}``; raw text if it is not JSON."""
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        return data
    if isinstance(event, dict):
        line = event.get("line")
        if line is None:
            return None
        return line if isinstance(line, str) else as_text(line)
    return data


# -- small parsers -----------------------------------------------------------------------------


def _known(values: Iterable[float | None]) -> tuple[float, ...]:
    """The readings that are known; an unknown one is left out, never counted as zero."""
    return tuple(value for value in values if value is not None)


def _positive(value: Any) -> float | None:
    number = as_float(value)
    return number if number is not None and number > 0 else None
