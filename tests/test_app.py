"""The TUI driven with Pilot against the demo market on a manual clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static
from tui import SIZE, ready, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.help import HelpScreen
from computehub_tui.ui.screens.launch import LaunchScreen
from computehub_tui.ui.widgets.header import HubHeader


async def test_first_screen_shows_demo_badge_offers_and_health(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        header = app.query_one(HubHeader)
        assert header.demo is True
        rendered = header.render().plain
        assert "DEMO" in rendered and "vast" in rendered and "burn" in rendered
        assert {o.provider for o in app.offers_pane.table.rows} == {"vast", "runpod", "lambda", "tensordock"}
        prices = [o.price_hour for o in app.offers_pane.table.rows]
        assert prices == sorted(prices)
        assert app.offers_pane.hidden_implausible >= 1


async def test_launch_reaches_running_then_stop_and_destroy(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.offers_pane.apply_filter("rtx 4090 provider:vast spot:no")
        await pilot.pause()
        offer = app.offers_pane.table.current_row
        assert offer is not None and offer.gpu == "RTX 4090" and offer.provider == "vast"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
        launched = [i for i in app.hub.instances() if i.label.startswith("chub-")]
        assert len(launched) == 1
        key = launched[0].key
        await pilot.press("2")
        table = app.instances_pane.table
        await wait_for(pilot, lambda: any(i.key == key for i in table.rows))
        row = next(i for i in table.rows if i.key == key)
        assert row.status in (InstanceStatus.PROVISIONING, InstanceStatus.STARTING)

        await clock.advance(40)
        await app.hub.refresh_instances("vast")
        await wait_for(pilot, lambda: next(i for i in table.rows if i.key == key).status is InstanceStatus.RUNNING)
        await clock.advance(10)
        await app.hub.refresh_instances("vast")
        await wait_for(pilot, lambda: len(app.hub.metric_history(key)) >= 2)
        assert app.instances_pane.util_history(key)  # the inline sparkline has data

        table.move_to(table.index_of(key))
        await pilot.press("x")  # Vast bills storage while stopped: a confirm shows the caveat first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "storage" in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, lambda: next(i for i in table.rows if i.key == key).status is InstanceStatus.STOPPED)

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Destroy" in app.screen.title_text
        await pilot.press("y")
        await wait_for(pilot, lambda: all(i.key != key for i in table.rows))


async def test_destroy_can_be_cancelled(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("2")
        before = [i.key for i in app.instances_pane.table.rows]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert [i.key for i in app.instances_pane.table.rows] == before


async def test_filter_narrows_rejects_bad_input_and_persists_across_panes(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        total = len(pane.table.rows)
        await pilot.press("slash")
        for key in "h100 vram>=80":
            await pilot.press(key if key != " " else "space")
        await pilot.pause()
        rows = pane.table.rows
        assert 0 < len(rows) < total
        assert all("H100" in o.gpu and o.vram_gb >= 80 for o in rows)
        kept = list(rows)
        box = pane.query_one("#offer-filter", Input)
        box.value = "h100 vram>=80 price<cheap"  # as if pasted
        await pilot.pause()
        assert pane.table.rows == kept  # malformed predicate: the last valid result stays
        error = pane.query_one("#offer-filter-error", Static)
        assert error.has_class("visible") and "price" in str(error.render())
        box.value = "h100 vram>=80"
        await pilot.press("enter")
        await pilot.pause()
        assert pane.filter.text.strip() == "h100 vram>=80"
        assert not pane.query_one("#offer-filter-error").has_class("visible")
        await pilot.press("2")
        await pilot.press("1")
        await pilot.pause()
        assert pane.filter.text.strip() == "h100 vram>=80"
        assert len(pane.table.rows) == len(kept)
        assert "h100 vram>=80" in pane.recent_filters
        await pilot.press("escape")
        await pilot.pause()
        assert len(pane.table.rows) == total


async def test_sort_keys_reorder_and_reverse(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        await pilot.press("M")
        await pilot.pause()
        vram = [o.vram_gb for o in pane.table.rows]
        assert vram == sorted(vram, reverse=True)
        await pilot.press("P", "P")
        await pilot.pause()
        prices = [o.price_hour for o in pane.table.rows]
        assert prices == sorted(prices, reverse=True)


async def test_marks_apply_an_action_to_every_marked_instance(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("2")
        table = app.instances_pane.table
        running = [i.key for i in table.rows if i.status is InstanceStatus.RUNNING and i.provider in ("vast", "runpod")]
        assert len(running) >= 2
        for key in running[:2]:
            table.move_to(table.index_of(key))
            await pilot.press("space")
        assert app.instances_pane.marked == set(running[:2])
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert all(key in app.screen.body for key in running[:2])
        await pilot.press("y")
        await wait_for(pilot, lambda: all(
            next(i for i in table.rows if i.key == key).status is InstanceStatus.STOPPED for key in running[:2]))
        others = [i for i in table.rows if i.key in running[2:]]
        assert all(i.status is InstanceStatus.RUNNING for i in others)
        await pilot.press("escape")
        assert app.instances_pane.marked == set()


async def test_lambda_stop_is_refused_before_any_request(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("2")
        table = app.instances_pane.table
        lam = next(i for i in table.rows if i.provider == "lambda")
        table.move_to(table.index_of(lam.key))
        audit_before = len(await app.hub.store.audit_log())
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert len(await app.hub.store.audit_log()) == audit_before
        assert next(i for i in table.rows if i.key == lam.key).status is InstanceStatus.RUNNING


async def test_help_lists_every_pane_key(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        descriptions = {d for _, rows in pilot.app.screen.sections for _, d in rows}
        assert {"Destroy", "Stop", "Mark", "Filter", "Launch", "Quit", "Help"} <= descriptions
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, HelpScreen))


async def test_monitor_shows_a_block_per_running_instance(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("3")
        await pilot.pause()
        running = {i.key for i in app.hub.instances() if i.status is InstanceStatus.RUNNING}
        assert {i.key for i in app.monitor_pane.watched} >= running


@pytest.mark.parametrize("key", ["q"])
async def test_quit_closes_the_session(tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = small_app(tmp_path, ManualClock())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        session = app.session
        assert session is not None
        closed: list[bool] = []
        close = session.aclose

        async def recorded_close() -> None:
            closed.append(True)
            await close()

        monkeypatch.setattr(session, "aclose", recorded_close)
        await pilot.press(key)
        # Checked before run_test's own teardown, which would close the session anyway.
        await wait_for(pilot, lambda: closed == [True] and app.return_code == 0)


async def test_settings_binds_a_key_encrypted_and_tests_it(tmp_path: Path) -> None:
    import httpx

    from computehub_tui.domain.secret import Secret
    from computehub_tui.providers.vastai import VastProvider
    from computehub_tui.ui.screens.settings import KeyInputScreen, SettingsScreen

    seen_auth: list[str] = []

    def rejecting(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers.get("authorization", ""))
        return httpx.Response(401, json={"success": False, "error": "auth_error", "msg": "Invalid user key"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(rejecting))
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub.keys is not None
        app.hub.keys.provider_factory = lambda name, secret: VastProvider(client, secret)
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        await wait_for(pilot, lambda: len(settings.bindings_by_provider) == 4)
        assert not settings.bindings_by_provider["vast"].bound
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyInputScreen))
        secret_key = "vk_live_0123456789abcdef0123"
        app.screen.query_one(Input).value = secret_key
        await pilot.press("enter")
        await wait_for(pilot, lambda: settings.verdicts.get("vast") == "invalid key")
        binding = settings.bindings_by_provider["vast"]
        assert binding.source == "vault" and binding.masked.endswith("0123") and secret_key not in binding.masked
        assert seen_auth == [f"Bearer {secret_key}"]
        status = str(settings.query_one("#settings-status", Static).render())
        assert "invalid key" in status and secret_key not in status
        db_bytes = (tmp_path / "computehub.db").read_bytes()
        assert secret_key.encode() not in db_bytes
        await wait_for(pilot, lambda: app.hub is not None)  # the first key bound switches to a real session
        assert Secret(secret_key) == await app.hub.keys.stored_key("vast")
    await client.aclose()


async def test_offer_details_and_market_summary_screens(tmp_path: Path) -> None:
    from computehub_tui.ui.screens.market import MarketScreen
    from computehub_tui.ui.screens.offer_detail import OfferDetailScreen

    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("V", "home")  # sort by value (the cursor keeps its offer), then go to the top
        await pilot.pause()
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDetailScreen))
        explanation = str(app.screen.query_one("#detail-value").render())
        assert "Value rank #1 of" in explanation
        await wait_for(pilot, lambda: "not enough points" in str(app.screen.query_one("#detail-chart-note").render()))
        await pilot.press("escape")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MarketScreen) and app.screen.table.rows)
        rows = app.screen.table.rows
        per_gpu = [row.cheapest.price_per_gpu_hour for row in rows]
        assert per_gpu == sorted(per_gpu) and len({row.gpu for row in rows}) == len(rows)
        chosen = rows[0].gpu
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketScreen))
        await pilot.pause()
        assert app.offers_pane.table.rows and all(o.gpu.startswith(chosen) for o in app.offers_pane.table.rows)


async def test_recent_filters_are_recalled_with_arrow_keys(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        box = pane.query_one("#offer-filter", Input)
        for text in ("h100", "4090 spot:no"):
            await pilot.press("slash")
            box.value = text
            await pilot.press("enter")
        await pilot.press("slash")
        box.value = ""
        await pilot.press("up")
        assert box.value == "4090 spot:no"
        await pilot.press("up")
        assert box.value == "h100"
        await pilot.press("down", "down")
        assert box.value == ""


async def test_launch_refuses_above_the_max_price_guard(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.offers_pane.apply_filter("provider:vast spot:no")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        app.screen.query_one("#launch-max", Input).value = "0.001"
        before = len(app.hub.instances())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, LaunchScreen)
        assert "above your max" in str(app.screen.query_one("#launch-error").render())
        assert len(app.hub.instances()) == before


async def test_enter_hands_the_terminal_to_ssh_and_refreshes_after(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake_terminal(app: object, argv: list[str]) -> None:
        calls.append(list(argv))

    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        app.terminal_runner = fake_terminal  # type: ignore[assignment]
        app.hub.demo = False  # demo machines have no real endpoint; act as if this one did
        await pilot.press("2")
        table = app.instances_pane.table
        target = next(i for i in table.rows if i.provider == "vast" and i.status is InstanceStatus.RUNNING)
        table.move_to(table.index_of(target.key))
        await pilot.press("enter")
        await pilot.pause()
        assert calls == [["ssh", "-o", "ConnectTimeout=15", *target.ssh.argv[1:]]]
        assert calls[0][3] == "-p" and calls[0][5].startswith("root@")
        stopped = next(i for i in table.rows if i.status is InstanceStatus.STOPPED)
        table.move_to(table.index_of(stopped.key))
        await pilot.press("enter")
        await pilot.pause()
        assert len(calls) == 1  # no endpoint, no ssh


def test_terminal_runner_reports_a_missing_program() -> None:
    from computehub_tui.ui.terminal import run_in_terminal

    message = run_in_terminal(None, ["definitely-not-a-real-ssh-binary", "-p", "22", "root@host"])  # type: ignore[arg-type]
    assert message is not None and "not installed" in message


async def test_clicking_a_column_title_sorts_by_it(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        table = app.offers_pane.table
        left = 0
        for column in table.columns:
            if column.key == "cpu":
                break
            left += column.width + 1
        await pilot.click("#offer-table", offset=(left + 1, 0))
        await pilot.pause()
        assert app.offers_pane.sort_name == "cpu"
        vcpus = [o.vcpus for o in table.rows]
        assert vcpus == sorted(vcpus, reverse=True)
        await pilot.click("#offer-table", offset=(left + 1, 0))
        await pilot.pause()
        assert app.offers_pane.sort_reverse
