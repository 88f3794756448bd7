"""Demo adapters: the real adapters wired to the simulated market through httpx.MockTransport."""

from __future__ import annotations

import httpx

from computehub_tui.clock import Clock
from computehub_tui.providers.base import Provider
from computehub_tui.providers.demo.lambda_api import make_lambda_handler
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.demo.runpod_api import make_runpod_handler
from computehub_tui.providers.demo.tensordock_api import make_tensordock_handler
from computehub_tui.providers.demo.vast_api import make_vast_handler
from computehub_tui.providers.demo.world import DemoWorld
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.lambdalabs import LambdaProvider
from computehub_tui.providers.runpod import RunpodProvider
from computehub_tui.providers.tensordock import TensordockProvider
from computehub_tui.providers.vastai import VastProvider

DEMO_SSH_KEY_NAME = "demo-key"
DEMO_SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoDemoDemoDemoDemoDemoDemoDemoDemo demo@computehub"


def _demo_policy() -> HttpPolicy:
    # The market is in-process: no pacing needed, and a failure is a bug worth seeing at once.
    return HttpPolicy(max_attempts=1, min_interval=0.0, endpoint_intervals={}, breaker_threshold=1000)


def demo_providers(
    market: DemoMarket, clock: Clock, world: DemoWorld | None = None, *,
    lambda_ssh_key_name: str = DEMO_SSH_KEY_NAME,
) -> tuple[dict[str, Provider], list[httpx.AsyncClient]]:
    """One adapter per provider, each talking its real wire format to the simulated market; with a
    ``world``, every request sees (and saves to) the demo world shared by every process.

    ``lambda_ssh_key_name`` is what the user configured: with none, a demo Lambda launch fails
    exactly as a real one does."""
    clients = {
        name: httpx.AsyncClient(transport=httpx.MockTransport(world.guard(handler) if world else handler))
        for name, handler in (
            ("vast", make_vast_handler(market)),
            ("runpod", make_runpod_handler(market)),
            ("lambda", make_lambda_handler(market, lambda_ssh_key_name)),
            ("tensordock", make_tensordock_handler(market)),
        )
    }
    providers: dict[str, Provider] = {
        "vast": VastProvider(clients["vast"], None, clock=clock, policy=_demo_policy()),
        "runpod": RunpodProvider(clients["runpod"], None, clock=clock, policy=_demo_policy()),
        "lambda": LambdaProvider(clients["lambda"], None, clock=clock, policy=_demo_policy(),
                                 ssh_key_name=lambda_ssh_key_name),
        "tensordock": TensordockProvider(clients["tensordock"], None, clock=clock, policy=_demo_policy(),
                                         ssh_public_key=DEMO_SSH_PUBLIC_KEY),
    }
    return providers, list(clients.values())
