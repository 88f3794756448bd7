"""The demo marketplace served in Vast.ai's real REST wire format, for httpx.MockTransport."""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import re
import shlex
from collections.abc import Callable
from typing import Any

import httpx

from computehub_tui.providers.demo.market import DemoMarket, SimError, SimInstance, VastAsk
from computehub_tui.providers.demo.traces import noise

HOURS_PER_MONTH = 720.0
DEFAULT_ALLOCATED_STORAGE_GB = 8.0
DEFAULT_LIMIT = 64
MAX_LIMIT = 10_000
LOG_HOST = "vast-demo-logs.s3.invalid"
"""Where ``request_logs`` points; ``.invalid`` never resolves, so only this handler answers."""
KEPT_LOG_FILES = 64
BID_MIN = 0.001
BID_MAX = 128.0

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda value, options: value in options,
    "notin": lambda value, options: value not in options,
}
_ALIASES = {
    "reliability2": "reliability",
    "dphtotal": "dph_total",
    "dph": "dph_total",
    "gpu_totalram": "gpu_total_ram",
    "cuda_vers": "cuda_max_good",
    "ubuntu_version": "os_version",
    "driver_vers": "driver_version",
}
_GB_ALIASES = {"gpu_ram_GB": "gpu_ram", "cpu_ram_GB": "cpu_ram", "gpu_totalram_GB": "gpu_total_ram"}
_VIRTUAL: dict[str, Callable[[Row], Any]] = {
    "verified": lambda row: row["verification"] == "verified",
    "datacenter": lambda row: row["hosting_type"] >= 1,
    "geolocation": lambda row: str(row["geolocation"] or "")[-2:],
}
_CONTROL_KEYS = frozenset({
    "order", "limit", "type", "allocated_storage", "disable_bundling", "show_incompatible",
    "sort_option", "extra_ids", "template_id", "gpu_option", "target_reliability",
})
_PRICING_TYPES = {
    "on-demand": False, "ondemand": False, "reserved": False, "bid": True, "interruptible": True,
}

_BUNDLES = re.compile(r"^/api/v0/bundles/?$")
_INSTANCES = re.compile(r"^/api/v0/instances/?$")
_INSTANCE = re.compile(r"^/api/v0/instances/(\d+)/?$")
_REBOOT = re.compile(r"^/api/v0/instances/reboot/(\d+)/?$")
_REQUEST_LOGS = re.compile(r"^/api/v0/instances/request_logs/(\d+)/?$")
_ASK = re.compile(r"^/api/v0/asks/(\d+)/?$")
_CURRENT_USER = re.compile(r"^/api/v0/users/current/?$")
_LOG_FILE = re.compile(r"^/instance_logs/([0-9a-f]+)\.log$")
_PORT_FLAG = re.compile(r"^-p\s+(\d+):(\d+)(?:/(tcp|udp))?$")


class BadQuery(Exception):
    """A search body the real API would answer with 400 invalid_args."""


def make_vast_handler(market: DemoMarket) -> Callable[[httpx.Request], httpx.Response]:
    """A MockTransport handler answering Vast's REST routes from the demo market's state."""
    return VastDemoApi(market)


class VastDemoApi:
    """Vast's console API (and its S3 log bucket) over a ``DemoMarket``."""

    def __init__(self, market: DemoMarket) -> None:
        self.market = market
        self.log_files: dict[str, list[Any]] = {}
        """token → [text, times fetched]"""
        self._log_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == LOG_HOST:
            return self._log_file(request)
        path, method = request.url.path, request.method.upper()
        try:
            return self._route(method, path, request)
        except SimError as error:
            return _sim_error_response(error)
        except BadQuery as error:
            return _error(400, "invalid_args", str(error))

    def _route(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        if method == "POST" and _BUNDLES.match(path):
            return self._search(request)
        if method == "GET" and _INSTANCES.match(path):
            instances = [self.instance_json(inst) for inst in self.market.instances_of("vast")]
            payload = {"instances": instances, "instances_found": len(instances)}
            return httpx.Response(200, json=payload)
        if method == "PUT" and (match := _ASK.match(path)):
            return self._create(int(match.group(1)), request)
        if method == "PUT" and (match := _REBOOT.match(path)):
            self.market.reboot("vast", match.group(1))
            return httpx.Response(200, json={"success": True})
        if method == "PUT" and (match := _REQUEST_LOGS.match(path)):
            return self._request_logs(match.group(1), request)
        if match := _INSTANCE.match(path):
            return self._instance(method, match.group(1), request)
        if method == "GET" and _CURRENT_USER.match(path):
            return httpx.Response(200, json=_DEMO_USER)
        return _error(404, "not_found", f"no route for {method} {path}")

    # -- offers -----------------------------------------------------------------------------

    def _search(self, request: httpx.Request) -> httpx.Response:
        body = _json_body(request)
        is_bid = _pricing_is_bid(body.get("type", "on-demand"))
        storage = _number(body.get("allocated_storage", DEFAULT_ALLOCATED_STORAGE_GB),
                          "allocated_storage")
        predicates = [
            _predicate(column, spec) for column, spec in body.items() if column not in _CONTROL_KEYS
        ]
        order = _order(body.get("order", [["score", "desc"]]))
        limit = int(_number(body.get("limit", DEFAULT_LIMIT), "limit"))
        now = self.market.clock.now()
        rows: list[Row] = []
        for ask in self.market.vast_asks:
            if ask.disk_space_gb < storage:
                continue
            row = self.offer_json(ask, now, storage, is_bid)
            if all(check(row) for check in predicates):
                rows.append(row)
        for column, descending in reversed(order):  # stable sorts, least significant key first
            rows.sort(key=_sort_key(column, descending), reverse=descending)
        return httpx.Response(200, json={"offers": rows[: max(0, min(limit, MAX_LIMIT))]})

    def offer_json(self, ask: VastAsk, now: float, storage_gb: float, is_bid: bool) -> Row:
        """One bundle as ``POST /bundles/`` returns it, priced with ``storage_gb`` of disk."""
        market = self.market
        return _offer_row(
            ask, compute=market.vast_ask_price(ask, now), min_bid=market.vast_min_bid(ask, now),
            rentable=market.vast_ask_available(ask, now), rented=ask.ask_id in market.rented_asks,
            now=now, storage_gb=storage_gb, is_bid=is_bid,
        )

    # -- instances --------------------------------------------------------------------------

    def _create(self, ask_id: int, request: httpx.Request) -> httpx.Response:
        market = self.market
        ask = market.vast_asks_by_id.get(ask_id)
        if ask is None:
            message = f"error 404/3603: no_such_ask Instance type by id {ask_id} is not available."
            return _error(404, "no_such_ask", message, ask_id=ask_id)
        if not market.vast_ask_available(ask):
            message = f"error 410/3907: no_such_ask Instance type {ask_id} is no longer available."
            return _error(410, "no_such_ask", message, ask_id=ask_id)
        body = _json_body(request)
        image = body.get("image")
        if not isinstance(image, str) or not image.strip():
            return _error(400, "invalid_args", "image is required")
        disk = _number(body.get("disk", 10), "disk")
        if not 1 <= disk <= ask.disk_space_gb:
            message = f"disk must be between 1 and {ask.disk_space_gb:g} GB on this machine"
            return _error(400, "invalid_args", message)
        env, ports = _split_env(body.get("env"))
        min_bid = market.vast_min_bid(ask)
        bid = body.get("price")
        if bid is not None:
            bid = _number(bid, "price")
            if not BID_MIN <= bid <= BID_MAX:
                message = f"Please set a bid price between {BID_MIN} and {BID_MAX:g}."
                return _error(400, "invalid_args", message)
            if bid < min_bid:
                message = f"Bid price {bid:g} is below the minimum bid {min_bid:g} for this offer."
                return _error(400, "invalid_price", message)
        storage_hour = round(disk * ask.storage_cost / HOURS_PER_MONTH, 6)
        compute = bid if bid is not None else market.vast_ask_price(ask)
        runtype = str(body.get("runtype") or "ssh")
        market.rented_asks.add(ask_id)
        instance = market.launch(
            "vast", gpu_name=ask.gpu_name, gpu_count=ask.num_gpus, vram_gb=ask.gpu_ram_mb / 1024,
            price_hour=round(compute + storage_hour, 6), storage_price_hour=storage_hour,
            label=str(body.get("label") or ""), image=image.strip(), disk_gb=int(disk),
            location=ask.geolocation, bid_price=bid, ports=ports, env=env,
            extra={"ask_id": ask_id, "machine_id": ask.machine_id, "host_id": ask.host_id,
                   "gpu_ram_mb": ask.gpu_ram_mb, "cpu_ram_mb": ask.cpu_ram_mb,
                   "cpu_cores_effective": ask.cpu_cores_effective, "storage_cost": ask.storage_cost,
                   "direct": ask.direct_port_count > 0, "runtype": runtype, "min_bid": min_bid,
                   "onstart": str(body.get("onstart") or "")},
        )
        key = _digest(f"instance-key:{instance.instance_id}", 16)
        return httpx.Response(200, json={"success": True, "new_contract": int(instance.instance_id),
                                         "instance_api_key": key})

    def _instance(self, method: str, instance_id: str, request: httpx.Request) -> httpx.Response:
        if method == "GET":
            instance = self.market.get("vast", instance_id)
            return httpx.Response(200, json={"instances": self.instance_json(instance)})
        if method == "DELETE":
            instance = self.market.destroy("vast", instance_id)
            ask_id = instance.extra.get("ask_id")
            if isinstance(ask_id, int):
                self.market.rented_asks.discard(ask_id)  # the machine goes back on the market
            reply = {"success": True, "msg": f"destroying instance {instance_id}."}
            return httpx.Response(200, json=reply)
        if method != "PUT":
            return _error(405, "invalid_request", f"{method} is not allowed here")
        body = _json_body(request)
        instance = self.market.get("vast", instance_id)
        if "label" in body:
            instance.label = str(body["label"] or "")
        state = body.get("state")
        if state is None and "label" not in body:
            return _error(400, "invalid_args", "expected 'state' or 'label'")
        if state is not None:
            return self._set_state(instance, state)
        return httpx.Response(200, json={"success": True})

    def _set_state(self, instance: SimInstance, state: Any) -> httpx.Response:
        status = self.market.view(instance).status
        if state == "running":
            if instance.intended != "running" or status == "exited":
                self.market.start("vast", instance.instance_id)
        elif state == "stopped":
            if status != "stopped":
                self.market.stop("vast", instance.instance_id)
        else:
            message = f"state must be 'running' or 'stopped', not {state!r}"
            return _error(400, "invalid_args", message)
        return httpx.Response(200, json={"success": True})

    def instance_json(self, instance: SimInstance) -> Row:
        """One instance as ``GET /instances/`` returns it, at the market's current time."""
        market = self.market
        now = market.clock.now()
        view = market.view(instance, now)
        extra = instance.extra
        running = view.status == "running"
        readings = view.gpus
        count = max(1, instance.gpu_count)
        gpu_ram_mb = int(_extra_number(extra, "gpu_ram_mb", instance.vram_gb * 1024))
        mem_limit_gb = round(_extra_number(extra, "cpu_ram_mb", 32_000.0 * count) / 1000, 1)
        runtype = str(extra.get("runtype") or _seeded_runtype(market.seed, instance))
        seeded_direct = noise(market.seed, "vast-direct", instance.instance_id) > 0.35
        direct = bool(extra.get("direct", seeded_direct))
        storage_hour = instance.storage_price_hour
        compute = round(instance.price_hour - storage_hour, 6)
        breakdown = {"gpuCostPerHour": compute, "diskHour": storage_hour,
                     "totalHour": instance.price_hour}
        storage_cost = round(storage_hour * HOURS_PER_MONTH / max(1, instance.disk_gb), 4)
        return {
            "id": int(instance.instance_id),
            "machine_id": extra.get("machine_id", 40_000 + int(instance.instance_id) % 9973),
            "host_id": extra.get("host_id", 1_000 + int(instance.instance_id) % 3989),
            "actual_status": _actual_status(view.status),
            "intended_status": "stopped" if instance.intended == "stopped" else "running",
            "cur_state": "running" if view.status in ("running", "loading") else "stopped",
            "next_state": "stopped" if instance.intended == "stopped" else "running",
            "status_msg": _status_msg(view.status, view.status_message, instance, runtype),
            "label": instance.label or None,
            "image_uuid": instance.image, "image_args": [], "image_runtype": runtype,
            "extra_env": [[key, value] for key, value in instance.env.items()],
            "onstart": extra.get("onstart", ""),
            "num_gpus": instance.gpu_count, "gpu_name": instance.gpu_name, "gpu_arch": "nvidia",
            "gpu_ram": gpu_ram_mb, "gpu_totalram": gpu_ram_mb * instance.gpu_count, "gpu_frac": 1.0,
            "gpu_util": _mean([r.util for r in readings], 1),
            "gpu_temp": max(r.temp_c for r in readings) if readings else None,
            "vmem_usage": _mean([r.vram_used_gb for r in readings], 3),
            "cpu_util": view.cpu_pct if running else None,
            "mem_usage": round(mem_limit_gb * view.ram_pct / 100, 3) if running else None,
            "mem_limit": mem_limit_gb,
            "cpu_cores_effective": extra.get("cpu_cores_effective", 8.0 * count),
            "cpu_ram": int(mem_limit_gb * 1000),
            "disk_space": float(instance.disk_gb), "disk_usage": round(instance.disk_gb * 0.31, 1),
            "public_ipaddr": instance.public_ip,
            "ssh_host": instance.ssh_host, "ssh_port": instance.ssh_port,
            "ssh_idx": instance.ssh_host.removeprefix("ssh").split(".")[0],
            "direct_port_count": 100 if direct else 0,
            "ports": _ports_json(instance, direct) if running else None,
            "start_date": instance.created_at, "end_date": instance.created_at + 30 * 86400,
            "uptime_mins": round(view.seconds_running / 60, 1) if running else None,
            "duration": now - instance.created_at,
            "dph_base": compute, "dph_total": instance.price_hour,
            "is_bid": instance.bid_price is not None, "min_bid": extra.get("min_bid"),
            "storage_cost": extra.get("storage_cost", storage_cost),
            "storage_total_cost": storage_hour,
            "search": breakdown, "instance": dict(breakdown),
            "geolocation": instance.location, "verification": "verified", "rentable": False,
        }

    # -- logs and account -------------------------------------------------------------------

    def _request_logs(self, instance_id: str, request: httpx.Request) -> httpx.Response:
        try:
            instance = self.market.get("vast", instance_id)
        except SimError:
            return _error(404, "invalid_id", f"Instance {instance_id} not found.")
        body = _json_body(request)
        try:
            tail = int(str(body.get("tail", "1000")))
        except ValueError:
            return _error(400, "invalid_args", "tail must be a number")
        self._log_requests += 1
        token = _digest(f"{instance_id}:{self._log_requests}", 12)
        self.log_files[token] = ["\n".join(self.market.logs(instance, max(1, tail))) + "\n", 0]
        while len(self.log_files) > KEPT_LOG_FILES:
            del self.log_files[next(iter(self.log_files))]
        return httpx.Response(200, json={
            "success": True,
            "result_url": f"https://{LOG_HOST}/instance_logs/{token}.log",
            "msg": "Pulling logs from instance; they will be available at result_url shortly.",
        })

    def _log_file(self, request: httpx.Request) -> httpx.Response:
        match = _LOG_FILE.match(request.url.path)
        entry = self.log_files.get(match.group(1)) if match and request.method == "GET" else None
        if entry is None or entry[1] == 0:
            if entry is not None:
                entry[1] += 1  # the upload "lands" after the first look, like S3 in real life
            return httpx.Response(404, headers={"content-type": "application/xml"},
                                  text=_NO_SUCH_KEY)
        entry[1] += 1
        return httpx.Response(200, headers={"content-type": "text/plain"}, text=str(entry[0]))


def _offer_row(ask: VastAsk, *, compute: float, min_bid: float, rentable: bool, rented: bool,
               now: float, storage_gb: float, is_bid: bool) -> Row:
    disk_hour = round(ask.storage_cost * storage_gb / HOURS_PER_MONTH, 6)
    gpu_hour = min_bid if is_bid else compute
    total = round(gpu_hour + disk_hour, 6)
    breakdown = {"gpuCostPerHour": gpu_hour, "diskHour": disk_hour, "totalHour": total,
                 "discountTotalHour": 0.0, "discountedTotalPerHour": total}
    return {
        "id": ask.ask_id, "ask_contract_id": ask.ask_id, "bundle_id": None, "bundled_results": 0,
        "machine_id": ask.machine_id, "host_id": ask.host_id,
        "num_gpus": ask.num_gpus, "gpu_name": ask.gpu_name, "gpu_arch": "nvidia",
        "gpu_ram": ask.gpu_ram_mb, "gpu_total_ram": ask.gpu_ram_mb * ask.num_gpus, "gpu_frac": 1.0,
        "gpu_mem_bw": 900.0, "gpu_max_power": 350.0, "gpu_max_temp": 85.0,
        "gpu_display_active": False,
        "compute_cap": ask.compute_cap, "cuda_max_good": ask.cuda_max_good,
        "driver_version": ask.driver_version,
        "cpu_name": "AMD EPYC 7B13", "cpu_arch": "amd64", "has_avx": 1,
        "cpu_cores": ask.cpu_cores, "cpu_cores_effective": ask.cpu_cores_effective,
        "cpu_ram": ask.cpu_ram_mb, "cpu_ghz": 3.1,
        "disk_space": ask.disk_space_gb, "disk_bw": 2400.0, "disk_name": "nvme",
        "inet_down": ask.inet_down, "inet_up": ask.inet_up,
        "inet_down_cost": ask.inet_down_cost, "inet_up_cost": ask.inet_up_cost,
        "direct_port_count": ask.direct_port_count,
        "pci_gen": 4.0, "pcie_bw": 24.5, "bw_nvlink": 0.0,
        "os_version": "22.04",
        "dph_base": compute, "dph_total": total, "min_bid": min_bid, "is_bid": is_bid,
        "storage_cost": ask.storage_cost, "storage_total_cost": disk_hour,
        "search": breakdown, "instance": dict(breakdown),
        "dlperf": ask.dlperf, "dlperf_per_dphtotal": round(ask.dlperf / total, 2) if total else 0.0,
        "total_flops": ask.total_flops,
        "flops_per_dphtotal": round(ask.total_flops / total, 2) if total else 0.0,
        "score": round(ask.dlperf * ask.reliability / max(total, 0.01), 3),
        "reliability": ask.reliability, "reliability2": ask.reliability,
        "rentable": rentable, "rented": rented,
        "verification": "verified" if ask.verified else "unverified",
        "vericode": 1 if ask.verified else 0,
        "hosting_type": ask.hosting_type, "external": False, "static_ip": ask.hosting_type >= 1,
        "geolocation": ask.geolocation, "geolocode": int(noise("geo", ask.geolocation) * 1e6),
        "public_ipaddr": None, "resource_type": "gpu",
        "start_date": None, "end_date": now + 30 * 86400, "duration": 30 * 86400.0,
    }


_SAMPLE_ASK = VastAsk(1, 1, 1, "RTX 4090", 1, 24564, 8, 8.0, 32000, 100.0, 0.3, 0.1, 0.99,
                      "Oslo, NO", 12.4, "550.127.05", 100.0, 100.0, 0.0, 0.0, True, 0, 100, 80.0,
                      70.0, 890)
OFFER_COLUMNS: frozenset[str] = frozenset(
    _offer_row(_SAMPLE_ASK, compute=0.3, min_bid=0.2, rentable=True, rented=False, now=0.0,
               storage_gb=8.0, is_bid=False)
)
"""Every column an offer row carries; filtering or ordering by anything else is a 400."""


_NO_SUCH_KEY = (
    "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
)
_DEMO_USER: Row = {
    "id": 424242, "username": "demo", "email": "demo@computehub.invalid", "fullname": "Demo User",
    "balance": 0.0, "credit": 42.5, "can_pay": True, "has_billing": True, "ssh_key": "",
    "email_verified": True, "billaddress_country": "US",
}


def _json_body(request: httpx.Request) -> dict[str, Any]:
    if not request.content:
        return {}
    try:
        body = json.loads(request.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadQuery("malformed JSON body") from error
    if not isinstance(body, dict):
        raise BadQuery("the body must be a JSON object")
    return body


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise BadQuery(f"{name} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise BadQuery(f"{name} must be a number") from error


def _pricing_is_bid(value: Any) -> bool:
    if value not in _PRICING_TYPES:
        raise BadQuery(f"unknown type {value!r}; expected on-demand, bid or reserved")
    return _PRICING_TYPES[value]


def _predicate(column: str, spec: Any) -> Predicate:
    """One column filter ``{"gte": 16000, "lte": 48000}`` as a row check."""
    if not isinstance(spec, dict) or not spec:
        raise BadQuery(f"filter for {column!r} must be an object like {{\"gte\": 1}}")
    scale = 1.0
    if column in _GB_ALIASES:
        column, scale = _GB_ALIASES[column], 1000.0
    column = _ALIASES.get(column, column)
    getter = _VIRTUAL.get(column) or _column_getter(column)
    checks: list[tuple[Callable[[Any, Any], bool], Any]] = []
    for op, value in spec.items():
        if op not in _OPERATORS:
            raise BadQuery(f"unknown operator {op!r} for {column!r}")
        if op in ("in", "notin"):
            if not isinstance(value, list):
                raise BadQuery(f"{op!r} for {column!r} takes a list")
            if all(not isinstance(item, (list, dict)) for item in value):
                value = frozenset(value)
        elif scale != 1.0 and isinstance(value, (int, float)):
            value = value * scale
        checks.append((_OPERATORS[op], value))

    def check(row: Row) -> bool:
        actual = getter(row)
        if actual is None:
            return False
        try:
            return all(compare(actual, value) for compare, value in checks)
        except TypeError:
            return False

    return check


def _column_getter(column: str) -> Callable[[Row], Any]:
    if column not in OFFER_COLUMNS:
        raise BadQuery(f"unknown search column {column!r}")
    return lambda row: row.get(column)


def _order(spec: Any) -> list[tuple[str, bool]]:
    if not isinstance(spec, list):
        raise BadQuery("order must be a list of [column, 'asc'|'desc'] pairs")
    order: list[tuple[str, bool]] = []
    for item in spec:
        if not isinstance(item, list) or len(item) != 2 or item[1] not in ("asc", "desc"):
            raise BadQuery(f"bad order entry {item!r}")
        column = _ALIASES.get(str(item[0]), str(item[0]))
        if column not in OFFER_COLUMNS:
            raise BadQuery(f"unknown order column {column!r}")
        order.append((column, item[1] == "desc"))
    return order


def _sort_key(column: str, descending: bool) -> Callable[[Row], tuple[bool, Any]]:
    """Nulls sort last in either direction."""
    if descending:
        return lambda row: (row.get(column) is not None, row.get(column))
    return lambda row: (row.get(column) is None, row.get(column))


def _split_env(raw: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """The CLI's env object (or the docker-flag string form) as env vars and exposed ports."""
    if isinstance(raw, str):
        pairs = _docker_flag_pairs(raw)
    elif isinstance(raw, dict):
        pairs = [(str(key), str(value)) for key, value in raw.items()]
    elif raw is None:
        pairs = []
    else:
        raise BadQuery("env must be an object or a docker flag string")
    env: dict[str, str] = {}
    ports: list[str] = ["22/tcp"]
    for key, value in pairs:
        match = _PORT_FLAG.match(key.strip())
        if match:
            ports.append(f"{match.group(2)}/{match.group(3) or 'tcp'}")
        else:
            env[key] = value
    return env, tuple(dict.fromkeys(ports))


def _docker_flag_pairs(flags: str) -> list[tuple[str, str]]:
    """``"-e A=1 -p 8080:8080"`` as object-form pairs ``("A", "1")``, ``("-p 8080:8080", "1")``."""
    tokens = shlex.split(flags)
    pairs: list[tuple[str, str]] = []
    for flag, value in itertools.pairwise(tokens):
        if flag == "-p":
            pairs.append((f"-p {value}", "1"))
        elif flag == "-e":
            name, _, setting = value.partition("=")
            pairs.append((name, setting))
    return pairs


def _mean(values: list[float], digits: int) -> float | None:
    return round(sum(values) / len(values), digits) if values else None


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def _extra_number(extra: dict[str, object], key: str, default: float) -> float:
    value = extra.get(key)
    return float(value) if isinstance(value, (int, float)) else default


def _actual_status(sim_status: str) -> str | None:
    return None if sim_status == "provisioning" else sim_status


def _status_msg(status: str, message: str, instance: SimInstance, runtype: str) -> str:
    if status == "running":
        mode = "jupyter" if "jupyter" in runtype else "ssh"
        return f"success, running {instance.image or 'container'}/{mode}"
    return message


def _seeded_runtype(seed: int, instance: SimInstance) -> str:
    if noise(seed, "vast-jupyter", instance.instance_id) < 0.3:
        return "jupyter jupyter_direc ssh_direc ssh_proxy"
    return "ssh ssh_direc ssh_proxy"


def _ports_json(instance: SimInstance, direct: bool) -> dict[str, list[dict[str, str]]]:
    if not direct:
        return {}
    first = 20_000 + int(instance.instance_id) % 40_000
    return {
        port: [{"HostIp": "0.0.0.0", "HostPort": str(first + index)}]
        for index, port in enumerate(dict.fromkeys(("22/tcp", *instance.ports)))
    }


def _sim_error_response(error: SimError) -> httpx.Response:
    if error.code == "not_found":
        return _error(404, "not_found", error.message)
    return _error(400, "invalid_args", error.message)


def _error(status: int, code: str, message: str, **fields: Any) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "error": code, "msg": message, **fields})
