"""Builds real provider adapters from settings and API keys."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Capabilities
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import Provider
from computehub_tui.providers.lambdalabs import LambdaProvider
from computehub_tui.providers.runpod import RunpodProvider
from computehub_tui.providers.tensordock import TensordockProvider
from computehub_tui.providers.vastai import VastProvider

PROVIDER_CAPABILITIES: dict[str, Capabilities] = {
    "vast": VastProvider.capabilities,
    "runpod": RunpodProvider.capabilities,
    "lambda": LambdaProvider.capabilities,
    "tensordock": TensordockProvider.capabilities,
}
"""What each marketplace can do, known before any key is bound (for the settings screen)."""


def new_http_client() -> httpx.AsyncClient:
    """One pooled client shared by every adapter; timeouts are set per request by ProviderHttp."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        follow_redirects=False,
        trust_env=True,
    )


def build_provider(
    name: str, client: httpx.AsyncClient, api_key: Secret, settings: Mapping[str, str], clock: Clock
) -> Provider:
    """One adapter; ``settings`` holds the provider's config section (URLs, SSH key names)."""
    if name == "vast":
        return VastProvider(client, api_key, base_url=settings["url"], clock=clock)
    if name == "runpod":
        return RunpodProvider(client, api_key, graphql_url=settings["graphql_url"],
                              rest_url=settings["rest_url"], clock=clock)
    if name == "lambda":
        return LambdaProvider(client, api_key, base_url=settings["url"], clock=clock,
                              ssh_key_name=settings.get("ssh_key_name", ""))
    if name == "tensordock":
        return TensordockProvider(client, api_key, base_url=settings["url"], clock=clock,
                                  ssh_public_key=settings.get("ssh_public_key", ""))
    raise ValueError(f"unknown provider {name!r}")
