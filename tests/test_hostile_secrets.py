"""Item 5: a server that echoes part of the key, or the key encoded, gets nothing of it printed:
redaction catches runs of 8+ characters and the base64, URL-safe base64, hex and Basic forms."""

from __future__ import annotations

import base64
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeMarketplace
from fakes.cli import Invocation, base_environment, run_all
from fakes.lambda_cloud import FakeLambda
from fakes.runpod import FakeRunpod
from fakes.tensordock import FakeTensordock
from fakes.vast import FakeVast
from hostile import KEYS, Router, build, client_for
from loopback import Reply

from computehub_tui.domain.secret import Secret, redact
from computehub_tui.providers.base import ProviderError

KEY = "sk-echo-7Hq2Vx9Lm4Rt8Wz3Np6Kd1Fs5"
PHRASE = "correct horse echo staple"
KEY_VARIABLES = {"vast": "VAST_API_KEY", "runpod": "RUNPOD_API_KEY", "lambda": "LAMBDA_API_KEY",
                 "tensordock": "TENSORDOCK_API_TOKEN"}


def echoed_forms(key: str) -> dict[str, str]:
    raw = key.encode()
    return {
        "prefix": key[:20],
        "suffix": key[-10:],
        "middle": key[6:14],
        "base64": base64.b64encode(raw).decode(),
        "urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "basic": base64.b64encode(f"admin:{key}".encode()).decode(),
        "basic-empty-password": base64.b64encode(f"{key}:".encode()).decode(),
    }


def leaked(text: str, key: str) -> list[str]:
    """Which echoed form, or which 8-character run of the key, still shows in ``text``."""
    found = [name for name, form in echoed_forms(key).items() if form in text]
    return found + [key[start:start + 8] for start in range(len(key) - 7) if key[start:start + 8] in text]


@pytest.fixture(autouse=True)
def registered() -> None:
    Secret(KEY)
    Secret(PHRASE)


@pytest.mark.parametrize("form", list(echoed_forms(KEY)))
def test_every_echoed_form_of_a_key_is_masked(form: str) -> None:
    text = f"error: key {echoed_forms(KEY)[form]} is not valid"
    shown = redact(text)
    assert leaked(shown, KEY) == [] and "••••" in shown, shown
    assert shown.startswith("error: key ") and shown.endswith(" is not valid")


def test_short_runs_and_unrelated_text_are_left_alone() -> None:
    assert redact(f"prefix {KEY[:7]} only") == f"prefix {KEY[:7]} only"  # 7 characters prove nothing
    assert redact("instance 9104662 is running on ssh1.vast.ai") == "instance 9104662 is running on ssh1.vast.ai"


def test_a_passphrase_is_masked_whole_but_its_words_stay_words() -> None:
    assert redact(f"unlock with {PHRASE}") == "unlock with ••••"
    assert redact("the horse echoes") == "the horse echoes"


def test_redaction_of_a_long_text_stays_fast() -> None:
    import time

    text = ("log line with nothing secret in it; " * 60_000) + KEY[:12]
    started = time.thread_time()  # this thread's CPU: other tests sharing the cores do not count
    shown = redact(text)
    assert time.thread_time() - started < 1.0
    assert leaked(shown, KEY) == []



def echo_reply(name: str, key: str) -> httpx.Response:
    forms = echoed_forms(key)
    text = " ".join(f"{label}={form}" for label, form in forms.items())
    if name == "vast":
        return httpx.Response(401, json={"success": False, "error": "auth_error", "msg": f"Invalid user key {text}"})
    if name == "runpod":
        return httpx.Response(200, json={"errors": [{"message": f"Unauthorized: {text}"}]})
    if name == "lambda":
        return httpx.Response(401, json={"error": {"code": "global/invalid-api-key", "message": text,
                                                   "suggestion": forms["basic"]}})
    return httpx.Response(401, text=text, headers={"content-type": "text/plain"})


@pytest.mark.parametrize("name", list(KEY_VARIABLES))
async def test_adapters_never_repeat_an_echoed_key(name: str, clients: list[httpx.AsyncClient]) -> None:
    client = client_for(Router().on("GET" if name in ("vast", "lambda", "tensordock") else "POST", "/",
                                    lambda _request: echo_reply(name, KEYS[name])))
    clients.append(client)
    provider: Any = build(name, client)
    with pytest.raises(ProviderError) as caught:
        await provider.list_instances()
    assert leaked(str(caught.value), KEYS[name]) == [], str(caught.value)
    assert "••••" in str(caught.value), "the echo never reached the message"


CLI_KEYS = {
    "vast": "vast-cli-echo-4c1f9a27d83b56e0q",
    "runpod": "rpa_CLIECHO7QK2M9X4TB8WN3VZ5",
    "lambda": "secret_cli-echo-lambda_9b7d5e3c1a",
    "tensordock": "td-cli-echo-tok-6a4f2c8e0b1d",
}


def echo_fake(name: str) -> FakeMarketplace:
    fake: FakeMarketplace = {"vast": FakeVast, "runpod": FakeRunpod, "lambda": FakeLambda,
                             "tensordock": FakeTensordock}[name](CLI_KEYS[name])
    response = echo_reply(name, CLI_KEYS[name])
    reply = Reply(response.status_code, response.content, {"Content-Type": response.headers["content-type"]})
    fake.server.enqueue(*(reply for _ in range(8)))
    return fake


def test_the_cli_prints_nothing_of_an_echoed_key(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fakes = {name: stack.enter_context(echo_fake(name)) for name in CLI_KEYS}
        invocations = [
            Invocation(
                ("instances", "--provider", name, "--data-dir", str(tmp_path / name)),
                base_environment({**fakes[name].endpoint_env(), KEY_VARIABLES[name]: CLI_KEYS[name]}),
            )
            for name in CLI_KEYS
        ]
        runs = run_all(invocations)
    for name, run in zip(CLI_KEYS, runs, strict=True):
        assert run.code != 0 and "Traceback" not in run.stderr, run.describe()
        assert "computehub-tui: error:" in run.stderr, run.describe()
        assert leaked(run.stdout + run.stderr, CLI_KEYS[name]) == [], run.describe()
        assert "••••" in run.stderr, f"the echo never reached the output\n{run.describe()}"
