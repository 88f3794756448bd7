"""Keys as engine calls: bind / replace / remove / test on one connection to the real database,
attaching and detaching providers in a real session; the UI and CLI only call these."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fakes.cli import base_environment, run_cli
from fakes.tensordock import FakeTensordock
from fakes.vast import FakeVast
from waiting import polling

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.keys import DATABASE_NAME, KeyService
from computehub_tui.providers.base import AuthError, Provider
from computehub_tui.store import Store, StoreError
from computehub_tui.vault import PassphraseRequired
from computehub_tui.wiring import open_session

VAST_KEY = "vast-keys-test-4c1f9a27d83b56e0"
TENSORDOCK_KEY = "td-keys-test-6a4f2c8e0b1d"


class StubProvider:
    """Enough of a provider for key tests: ``check_auth`` accepts one key."""

    def __init__(self, name: str, secret: Secret, valid: str) -> None:
        self.name = name
        self.secret = secret
        self.valid = valid

    async def check_auth(self) -> None:
        if self.secret.reveal() != self.valid:
            raise AuthError(self.name, "invalid key")


class RecordingSlots:
    """Stands in for the Hub: records what a key service attaches and detaches."""

    def __init__(self) -> None:
        self.attached: dict[str, Provider] = {}
        self.calls: list[tuple[str, str]] = []

    def set_provider(self, name: str, provider: Provider) -> None:
        self.attached[name] = provider
        self.calls.append(("set", name))

    def remove_provider(self, name: str) -> None:
        self.attached.pop(name, None)
        self.calls.append(("remove", name))


def stub_factory(valid: str = VAST_KEY) -> Any:
    return lambda name, secret: StubProvider(name, secret, valid)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Store]]:
    """Every ``Store.open`` from now on, as (file name, store)."""
    real_open = Store.open.__func__  # type: ignore[attr-defined]
    log: list[tuple[str, Store]] = []

    async def counting_open(cls: type[Store], path: str | Path, **kwargs: Any) -> Store:
        store = await real_open(cls, path, **kwargs)
        log.append((Path(path).name, store))
        return store

    monkeypatch.setattr(Store, "open", classmethod(counting_open))
    return log


def audit_rows(data_dir: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(data_dir / DATABASE_NAME) as db:
        return list(db.execute("SELECT actor, action, target, detail FROM audit_log ORDER BY id"))


async def is_closed(store: Store) -> bool:
    try:
        await store.list_secrets()
    except StoreError as error:
        return error.kind == "closed"
    return False


# -- the service on its own ------------------------------------------------------------------------


async def test_bind_stores_tests_and_attaches_the_provider(tmp_path: Path) -> None:
    slots = RecordingSlots()
    async with KeyService(tmp_path, ManualClock(), stub_factory(), environ={}) as keys:
        keys.attach_to(slots)
        result = await keys.bind("vast", f"  {VAST_KEY}\n")
        assert result.verdict == "ok" and result.attached
        assert result.binding.source == "vault" and result.binding.masked == Secret(VAST_KEY).masked
        assert slots.calls == [("set", "vast")]
        assert cast(StubProvider, slots.attached["vast"]).secret == Secret(VAST_KEY)
        assert await keys.stored_key("vast") == Secret(VAST_KEY)

        rejected = await keys.bind("vast", "not-the-key")
        assert rejected.verdict == "invalid key" and rejected.attached  # polled, so health shows why it fails
    assert audit_rows(tmp_path) == [("user", "bind-key", "vast", Secret(VAST_KEY).masked),
                                    ("user", "replace-key", "vast", Secret("not-the-key").masked)]


async def test_replace_needs_a_stored_key_to_replace(tmp_path: Path) -> None:
    slots = RecordingSlots()
    async with KeyService(tmp_path, ManualClock(), stub_factory(), environ={}) as keys:
        keys.attach_to(slots)
        with pytest.raises(ValueError, match="no stored vast key"):
            await keys.replace("vast", VAST_KEY)
        assert slots.calls == [] and await keys.stored_key("vast") is None
        await keys.bind("vast", "first-key-000")
        result = await keys.replace("vast", VAST_KEY)
        assert result.verdict == "ok" and await keys.stored_key("vast") == Secret(VAST_KEY)
    assert [row[1] for row in audit_rows(tmp_path)] == ["bind-key", "replace-key"]


async def test_remove_deletes_the_key_and_detaches_the_provider(tmp_path: Path) -> None:
    slots = RecordingSlots()
    async with KeyService(tmp_path, ManualClock(), stub_factory(), environ={}) as keys:
        keys.attach_to(slots)
        await keys.bind("vast", VAST_KEY)
        assert await keys.remove("vast") is True
        assert slots.calls == [("set", "vast"), ("remove", "vast")] and slots.attached == {}
        assert await keys.stored_key("vast") is None
        assert await keys.remove("vast") is False
        assert slots.calls[-1] == ("remove", "vast") and len(slots.calls) == 2
        assert await keys.test("vast") == "no key bound"
    assert [row[1] for row in audit_rows(tmp_path)] == ["bind-key", "remove-key"]


async def test_an_environment_key_keeps_winning_over_bind_and_remove(tmp_path: Path) -> None:
    slots = RecordingSlots()
    environ = {"VAST_API_KEY": VAST_KEY}
    async with KeyService(tmp_path, ManualClock(), stub_factory(), environ=environ) as keys:
        keys.attach_to(slots)
        result = await keys.bind("vast", "stored-but-shadowed-1")
        assert result.verdict == "invalid key"  # the key typed in is the one tested
        assert not result.attached and slots.calls == []  # polling goes on with the environment's key
        assert await keys.remove("vast") is True
        assert slots.calls == []  # the environment still binds it
        assert await keys.test("vast") == "ok"


async def test_a_service_without_a_session_attaches_nothing(tmp_path: Path) -> None:
    async with KeyService(tmp_path, ManualClock(), environ={}) as keys:
        result = await keys.bind("vast", VAST_KEY)
        assert result.verdict is None and not result.attached  # no adapters here: nothing to test with
        assert await keys.remove("vast") is True


async def test_the_service_opens_the_real_database_once(tmp_path: Path, opened: list[tuple[str, Store]]) -> None:
    keys = KeyService(tmp_path, ManualClock(), stub_factory(), environ={})
    keys.attach_to(RecordingSlots())
    await asyncio.gather(keys.bindings(), keys.resolve(), keys.stored_key("vast"))
    await keys.bind("vast", VAST_KEY)
    await keys.replace("vast", VAST_KEY)
    await keys.test("vast")
    await keys.bindings()
    await keys.set_passphrase(None)
    await keys.remove("vast")
    assert [name for name, _ in opened] == [DATABASE_NAME]
    await keys.aclose()
    await keys.aclose()
    assert await is_closed(opened[0][1])


# -- in a session ----------------------------------------------------------------------------------


@pytest.fixture
def fakes() -> Iterator[tuple[FakeVast, FakeTensordock]]:
    with FakeVast(VAST_KEY) as vast, FakeTensordock(TENSORDOCK_KEY) as tensordock:
        yield vast, tensordock


def config_for(fakes: tuple[FakeVast, FakeTensordock]) -> Config:
    vast, tensordock = fakes
    return Config.model_validate({"providers": {"vast": {"url": vast.url},
                                               "tensordock": {"url": f"{tensordock.url}/api/v2"}}})


async def advance_until(clock: ManualClock, condition: Any, timeout: float = 10.0) -> None:
    """Move the clock in small steps (adapters pace their requests on it) and let loopback HTTP and
    aiosqlite threads work, until ``condition`` holds; fail after ``timeout`` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await clock.advance(0.25)
        await asyncio.sleep(0.01)


def polled(hub: Hub, provider: str) -> bool:
    return any(instance.provider == provider for instance in hub.instances())


async def test_binding_a_key_in_a_real_session_attaches_and_polls_and_removing_detaches(
    tmp_path: Path, fakes: tuple[FakeVast, FakeTensordock], opened: list[tuple[str, Store]]
) -> None:
    _, tensordock = fakes
    clock = ManualClock()
    session = await open_session(config_for(fakes), tmp_path, clock=clock, environ={"VAST_API_KEY": VAST_KEY})
    try:
        hub, keys = session.hub, session.keys
        assert not session.demo and hub.keys is keys
        async with polling(hub):
            await advance_until(clock, lambda: polled(hub, "vast"))
            assert not polled(hub, "tensordock") and tensordock.server.requests == []

            result = await keys.bind("tensordock", TENSORDOCK_KEY)
            assert result.verdict == "ok" and result.attached
            await advance_until(clock, lambda: polled(hub, "tensordock"))
            assert {tensordock.bearer(r) for r in tensordock.server.requests} == {TENSORDOCK_KEY}

            assert await keys.remove("tensordock") is True
            assert not polled(hub, "tensordock")
            requests_before = len(tensordock.server.requests)
            vast_polls = len(fakes[0].calls("GET", "/api/v0/instances/"))
            # Long enough for every loop still running to poll again, twice.
            await advance_until(clock, lambda: len(fakes[0].calls("GET", "/api/v0/instances/")) >= vast_polls + 2)
            assert len(tensordock.server.requests) == requests_before
            assert "tensordock" not in {h.provider for h in hub.health()}
        # The session's store is the key service's connection: the one open of the real database.
        assert [name for name, _ in opened] == [DATABASE_NAME] and opened[0][1] is session.store
        assert [action for _, action, _, _ in audit_rows(tmp_path)] == ["bind-key", "remove-key"]
    finally:
        await session.aclose()
    assert await is_closed(opened[0][1])


async def test_a_demo_session_opens_the_real_database_only_for_keys_and_closes_it(
    tmp_path: Path, opened: list[tuple[str, Store]]
) -> None:
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 100}}), tmp_path, demo=True, clock=ManualClock(), environ={})
    try:
        assert session.demo and [name for name, _ in opened] == ["demo.db"]
        session.keys.provider_factory = stub_factory()  # no real marketplace to test the key against here
        await session.keys.bindings()
        result = await session.keys.bind("vast", VAST_KEY)
        await session.keys.bindings()
        assert result.verdict == "ok" and not result.attached  # the app switches to a real session instead
        assert [name for name, _ in opened] == ["demo.db", DATABASE_NAME]
        assert await session.store.list_secrets() == []  # keys never go to the demo database
        assert [provider for provider, _, _ in await opened[1][1].list_secrets()] == ["vast"]
    finally:
        await session.aclose()
    assert [await is_closed(store) for _, store in opened] == [True, True]


async def test_a_session_that_cannot_open_closes_the_real_database_again(
    tmp_path: Path, opened: list[tuple[str, Store]]
) -> None:
    async with KeyService(tmp_path, ManualClock()) as keys:
        await keys.bind("vast", VAST_KEY)
        await keys.set_passphrase("correct horse battery")
    opened.clear()
    with pytest.raises(PassphraseRequired):  # the CLI then asks for it and opens a new session
        await open_session(Config(), tmp_path, clock=ManualClock(), environ={})
    assert [name for name, _ in opened] == [DATABASE_NAME]
    assert await is_closed(opened[0][1])  # else its thread would keep the process from exiting


def test_keys_set_from_the_cli_is_audited_as_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run = run_cli(("keys", "set", "vast", "--data-dir", str(data_dir)), base_environment({}), VAST_KEY + "\n")
    assert run.code == 0, run.describe()
    assert audit_rows(data_dir) == [("cli", "bind-key", "vast", Secret(VAST_KEY).masked)]


async def test_a_demo_session_builds_the_real_http_client_only_for_a_real_provider(tmp_path: Path) -> None:
    config = Config.model_validate({"demo": {"vast_offers": 100}})
    session = await open_session(config, tmp_path, demo=True, clock=ManualClock(), environ={})
    try:
        assert session.real_client is not None and not session.real_client.built
        assert session.keys.provider_factory is not None
        session.keys.provider_factory("vast", Secret(VAST_KEY))  # what bind and test do first
        assert session.real_client.built
    finally:
        await session.aclose()
    assert not session.real_client.built
