"""Shared fixtures: isolated config/data dirs so no test touches the developer's home, and a pinned time zone."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point XDG dirs and provider key variables at nothing the developer owns."""
    home = tmp_path / "home"
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in ("VAST_API_KEY", "RUNPOD_API_KEY", "LAMBDA_API_KEY", "TENSORDOCK_API_TOKEN",
                 "COMPUTEHUB_PASSPHRASE_FILE", "COMPUTEHUB_VAST_URL", "COMPUTEHUB_RUNPOD_GRAPHQL_URL",
                 "COMPUTEHUB_RUNPOD_REST_URL", "COMPUTEHUB_LAMBDA_URL", "COMPUTEHUB_TENSORDOCK_URL",
                 "COMPUTEHUB_TELEGRAM_TOKEN", "COMPUTEHUB_SMTP_PASSWORD", "COMPUTEHUB_WEBHOOK_SECRET",
                 "TMUX"):  # inside tmux the app would open real windows for ssh
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
async def clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    """HTTP clients a test opens for adapters; all closed when it ends."""
    opened: list[httpx.AsyncClient] = []
    yield opened
    for client in opened:
        await client.aclose()


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pin the local zone to UTC: "today" is a day in the user's zone, so the books and the header read the
    same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()

