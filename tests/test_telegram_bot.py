"""The inbound Telegram bot on a real Hub and store against the loopback fake Bot API (manual clock, no sleeps)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from fakes.telegram_api import FakeTelegram
from rules_support import POLL_S, Machines, Session, rule, rules, session
from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.automation.settings import AutomationSettings
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.engine.telegram_bot import CONFIRM_TTL_S, MIN_POLL_GAP_S, OFFSET_FLAG, STANDBY_S, TelegramBot
from computehub_tui.notify.telegram import TelegramChannel
from computehub_tui.store import Store

TOKEN = "4242:AAE-bot-test-token-0123456789abcd"
OWNER = 555
STRANGER = 666
WARN_STOP = rule("warned-stop", 'IF status == "running" THEN WARN 5m stop')


class RecordingAlerts:
    """Stands in for hub.alerts (helper A's service): records acknowledgements."""

    def __init__(self) -> None:
        self.acknowledged: list[tuple[str, str]] = []

    async def acknowledge(self, key: str, by: str) -> bool:
        self.acknowledged.append((key, by))
        return True


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


def two_machines() -> Machines:
    machines = Machines()
    machines.add("1", price=2.0, util=1.0, label="idle-box")
    machines.add("2", price=0.5, util=90.0, label="busy-box")
    return machines


@asynccontextmanager
async def bot_on(tmp_path: Path, fake: FakeTelegram, machines: Machines, *rule_list: object,
                 alerts: RecordingAlerts | None = None) -> AsyncIterator[tuple[TelegramBot, Session]]:
    async with session(tmp_path / "db", machines, rules(*rule_list)) as s:  # type: ignore[arg-type]
        await s.poll()
        channel = TelegramChannel(Secret(TOKEN), str(OWNER), fake.base_url, timeout_s=5.0)
        try:
            yield TelegramBot(s.hub, channel, alerts=alerts), s
        finally:
            await channel.aclose()


@asynccontextmanager
async def bot_hub(db: Path, fake: FakeTelegram, machines: Machines, role: str = "app") -> AsyncIterator[Hub]:
    """A Hub (not started) on ``machines`` and a real store at ``db`` whose engine runs the bot against ``fake``."""
    store = await Store.open(db)
    channel = TelegramChannel(Secret(TOKEN), str(OWNER), fake.base_url, timeout_s=5.0)
    hub = Hub({"vast": machines}, store, machines.clock,  # type: ignore[dict-item]
              HubSettings(poll=PollSettings(POLL_S * 10, POLL_S), automation=AutomationSettings(role=role)),
              telegram=lambda: channel)
    try:
        yield hub
    finally:
        await hub.stop()
        await store.close()


def sleeping_until(clock: ManualClock, due: float) -> bool:
    """True while something sleeps on ``clock`` until exactly ``due`` (the bot's own wait, not a poll loop's)."""
    return any(at == due and not waiting.done() for at, waiting in clock._sleepers)


def replies(fake: FakeTelegram) -> list[str]:
    return [message.text for message in fake.sent]


async def test_status_from_the_configured_chat_is_answered(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (bot, _):
        fake.user_message(OWNER, "/status")
        assert await bot.poll_once() == 1
    [reply] = replies(fake)
    assert "Running: 2 (vast 2); stopped: 0" in reply
    assert "Burn rate: $2.500/h" in reply
    assert "Spend today: $" in reply and "Automation: on" in reply
    assert fake.sent[0].chat_id == str(OWNER) and fake.sent[0].parse_mode is None


async def test_idle_lists_only_idle_gpus_with_their_price(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (bot, _):
        fake.user_message(OWNER, "/idle@computehub_test_bot")
        await bot.poll_once()
    [reply] = replies(fake)
    assert reply.startswith("Idle: 1 instance(s), $2.000/h")
    assert "vast:1 (idle-box): RTX 4090, 1 GPU idle" in reply
    assert "vast:2" not in reply


async def test_pause_and_resume_switch_automation(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (bot, s):
        fake.user_message(OWNER, "/pause maintenance")
        await bot.poll_once()
        assert s.hub.rules.paused and "maintenance" in s.hub.rules.pause_reason
        fake.user_message(OWNER, "/resume")
        await bot.poll_once()
        assert not s.hub.rules.paused
    assert replies(fake)[0].startswith("Automation paused") and replies(fake)[1] == "Automation resumed."


async def test_commands_and_buttons_from_another_chat_are_ignored_and_logged(
        tmp_path: Path, fake: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="computehub_tui.engine.telegram_bot")
    alerts = RecordingAlerts()
    async with bot_on(tmp_path, fake, two_machines(), WARN_STOP, alerts=alerts) as (bot, s):
        warning = s.hub.rules.pending_warnings()[0]
        fake.user_message(STRANGER, "/pause")
        fake.user_message(-100999, "/stop vast:1", title="A group")
        fake.callback_query(STRANGER, f"cancel:{warning.warning_id}")
        fake.callback_query(STRANGER, "ack:instance-down:vast:1")
        await bot.poll_once()
        assert not s.hub.rules.paused
        assert warning.warning_id in [w.warning_id for w in s.hub.rules.pending_warnings()]
    assert fake.sent == [] and fake.answered == [] and fake.edited == [] and alerts.acknowledged == []
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 4 and all(r.levelno == logging.INFO for r in caplog.records if "ignored" in r.getMessage())
    assert any(str(STRANGER) in line for line in ignored) and any("-100999" in line for line in ignored)


async def test_buttons_call_snooze_cancel_and_acknowledge(tmp_path: Path, fake: FakeTelegram) -> None:
    alerts = RecordingAlerts()
    async with bot_on(tmp_path, fake, two_machines(), WARN_STOP, alerts=alerts) as (bot, s):
        first, second = s.hub.rules.pending_warnings()
        due = first.due_at
        fake.callback_query(OWNER, f"snooze:{first.warning_id}", message_id=11)
        fake.callback_query(OWNER, f"cancel:{second.warning_id}", message_id=12)
        fake.callback_query(OWNER, "ack:instance-down:vast:2", message_id=13)
        await bot.poll_once()
        [snoozed] = s.hub.rules.pending_warnings()  # the cancelled one is gone
        assert snoozed.warning_id == first.warning_id and snoozed.due_at == due + 3600.0
    assert alerts.acknowledged == [("instance-down:vast:2", "telegram")]
    assert [a["text"] for a in fake.answered] == ["snoozed for 1 h", "cancelled", "acknowledged"]
    assert [e["message_id"] for e in fake.edited] == ["11", "12", "13"]  # buttons taken off once chosen


async def test_stop_asks_to_confirm_and_only_the_configured_chat_confirms(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    async with bot_on(tmp_path, fake, machines) as (bot, s):
        fake.user_message(OWNER, "/stop vast:1")
        await bot.poll_once()
        [question] = fake.sent
        assert question.text.startswith("Stop 1 instance:") and "vast:1 (idle-box)" in question.text
        [(label, data)] = question.buttons
        assert label == "Confirm" and data.startswith("confirm:")
        assert s.calls("stop") == []  # nothing before the confirmation

        fake.callback_query(STRANGER, data)  # someone else's press does nothing, not even use up the token
        await bot.poll_once()
        assert s.calls("stop") == []

        fake.callback_query(OWNER, data, message_id=question.message_id)
        await bot.poll_once()
        assert s.calls("stop") == ["1"]
        assert "vast:1: done" in fake.sent[-1].text
        [entry] = await s.hub.audit_log(actor="telegram")
        assert (entry.action, entry.target) == ("stop", "vast:1")

        fake.callback_query(OWNER, data)  # one time only
        await bot.poll_once()
        assert s.calls("stop") == ["1"] and "expired or was used" in fake.sent[-1].text


async def test_a_confirmation_expires_after_five_minutes(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    async with bot_on(tmp_path, fake, machines) as (bot, s):
        fake.user_message(OWNER, "/stopidle")
        await bot.poll_once()
        [(_, data)] = fake.sent[0].buttons
        assert "vast:1" in fake.sent[0].text and "vast:2" not in fake.sent[0].text  # only the idle one
        await s.clock.advance(CONFIRM_TTL_S + 1)
        fake.callback_query(OWNER, data)
        await bot.poll_once()
        assert s.calls("stop") == [] and "expired" in fake.sent[-1].text


async def test_stopidle_stops_only_idle_machines_after_confirm(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    async with bot_on(tmp_path, fake, machines) as (bot, s):
        fake.user_message(OWNER, "/stopidle")
        await bot.poll_once()
        [(_, data)] = fake.sent[0].buttons
        fake.callback_query(OWNER, data)
        await bot.poll_once()
        assert s.calls("stop") == ["1"]


async def test_stop_of_an_unknown_or_stopped_instance_asks_nothing(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    machines.add("3", status=InstanceStatus.STOPPED, label="parked")
    async with bot_on(tmp_path, fake, machines) as (bot, _):
        fake.user_message(OWNER, "/stop vast:404")
        fake.user_message(OWNER, "/stop parked")
        await bot.poll_once()
    assert "no instance called vast:404" in fake.sent[0].text
    assert fake.sent[1].text.startswith("Nothing to do.") and "already stopped" in fake.sent[1].text
    assert all(message.buttons == [] for message in fake.sent)


async def test_a_restart_does_not_handle_an_update_again(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (bot, s):
        fake.user_message(OWNER, "/pause")
        await bot.poll_once()
        await s.hub.rules.resume()
        stored = await s.hub.store.flag(OFFSET_FLAG)
        assert stored is not None
        assert fake.pending_updates == 1  # Telegram would hand it out again to a reader that forgot the offset

        restarted = TelegramBot(s.hub, bot._link)  # a new process: the same store, nothing in memory
        assert await restarted.poll_once() == 0
        assert not s.hub.rules.paused
        assert fake.fields(fake.calls("getUpdates")[-1])["offset"] == stored
    assert len(fake.sent) == 1


async def test_stopping_the_engine_cancels_the_long_poll_at_once(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_hub(tmp_path / "db", fake, two_machines()) as hub:
        await hub.start()
        await until(lambda: len(fake.calls("getUpdates")) == 1)
        assert fake.fields(fake.calls("getUpdates")[0])["timeout"] == "25"  # a long poll is in flight
        started = time.monotonic()
        await asyncio.wait_for(hub.stop(), 5)
        assert time.monotonic() - started < 1.0
        assert hub.supervisor.running() == [] and hub.telegram_bot is None


async def test_another_process_handling_updates_meanwhile_is_not_repeated(tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (app_bot, s):
        daemon_bot = TelegramBot(s.hub, app_bot._link)  # the daemon beside the app, on the same database
        fake.user_message(OWNER, "/status")
        await app_bot.poll_once()
        fake.user_message(OWNER, "/pause")
        await daemon_bot.poll_once()  # the daemon got this poll (the app lost it to a 409)
        await s.hub.rules.resume()
        assert await app_bot.poll_once() == 0  # the app's next poll starts after what the daemon handled
        assert not s.hub.rules.paused
    assert len(fake.sent) == 2


async def test_hostile_provider_text_is_shown_plain(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = Machines()
    machines.add("1", util=1.0, label="[@click=app.quit]q[/] \x1b]52;c;Zm9v\x07box\u202e", gpu="<b>H100</b>")
    async with bot_on(tmp_path, fake, machines) as (bot, _):
        fake.user_message(OWNER, "/idle")
        await bot.poll_once()
    [reply] = replies(fake)
    assert "vast:1 ([@click=app.quit]q[/] box): <b>H100</b>" in reply  # markup stays text (no parse_mode)
    assert "\x1b" not in reply and "\u202e" not in reply and "\x07" not in reply
    assert fake.sent[0].parse_mode is None


async def test_a_confirmation_acts_on_what_the_engine_sees_then(tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    async with bot_on(tmp_path, fake, machines) as (bot, s):
        fake.user_message(OWNER, "/stop vast:1")
        await bot.poll_once()
        [(_, data)] = fake.sent[0].buttons
        machines.set("1", InstanceStatus.STOPPED)  # stopped by hand before the owner pressed Confirm
        await s.poll()
        fake.callback_query(OWNER, data)
        await bot.poll_once()
        assert s.calls("stop") == []
        assert "vast:1 (idle-box): already stopped" in fake.sent[-1].text


async def test_a_chat_configured_by_its_public_name_is_answered_and_a_look_alike_is_not(
        tmp_path: Path, fake: FakeTelegram) -> None:
    async with session(tmp_path / "db", two_machines(), rules()) as s:  # type: ignore[arg-type]
        await s.poll()
        channel = TelegramChannel(Secret(TOKEN), "@GPU_Team", fake.base_url, timeout_s=5.0)
        try:
            bot = TelegramBot(s.hub, channel)
            fake.user_message(-100777, "/pause", title="GPU team", chat_username="gpu_team")
            fake.user_message(-100888, "/resume", title="Look-alike", chat_username="gpu_team_x")
            fake.user_message(-100999, "/resume", title="No public name")
            assert await bot.poll_once() == 3
            assert s.hub.rules.paused  # only the group named @gpu_team was obeyed
            [reply] = fake.sent  # the look-alike and the unnamed group got no answer
            assert reply.chat_id == "@GPU_Team"
        finally:
            await channel.aclose()


async def test_the_app_and_a_daemon_on_one_database_take_turns_answering_the_bot(
        tmp_path: Path, fake: FakeTelegram) -> None:
    machines = two_machines()
    async with AsyncExitStack() as stack:
        hubs = [await stack.enter_async_context(bot_hub(tmp_path / "db", fake, machines, role))
                for role in ("app", "daemon")]
        for hub in hubs:
            await hub.start()
        await until(lambda: len(fake.calls("getUpdates")) >= 1)
        fake.user_message(OWNER, "/status")
        await until(lambda: len(fake.sent) == 1)
        [first, second] = [hub.telegram_bot for hub in hubs]
        assert first is not None and second is not None
        assert first._lease is not None and second._lease is not None
        assert first._lease.held != second._lease.held  # exactly one of them polls
        holder, standby = (0, 1) if first._lease.held else (1, 0)
        await until(lambda: [first, second][standby]._standing_by)  # in its wait before asking again
        assert fake.conflicts == 0  # while both run, only the holder reads the bot

        await hubs[holder].stop()  # the holder quits: it gives the lease up
        polls = len(fake.calls("getUpdates"))
        await machines.clock.advance(STANDBY_S)  # the other one's next look at the lease
        await until(lambda: len(fake.calls("getUpdates")) > polls)
        fake.user_message(OWNER, "/pause")
        await until(lambda: len(fake.sent) == 2)
        assert hubs[standby].rules.paused
        # The quitter's long poll, cancelled on its side, may still wait on the server's: as on Telegram, the new
        # reader's poll ends that abandoned one with 409 (counted), and the new reader itself is answered.
        assert fake.conflicts <= 1
        assert all(not message.text.startswith("Unknown") for message in fake.sent)


async def test_a_reply_refused_with_429_is_sent_again_after_the_servers_retry_after(
        tmp_path: Path, fake: FakeTelegram) -> None:
    async with bot_on(tmp_path, fake, two_machines()) as (bot, s):
        fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
        fake.user_message(OWNER, "/status")
        polling = asyncio.ensure_future(bot.poll_once())
        await until(lambda: sleeping_until(s.clock, s.clock.now() + 7))  # Telegram's retry_after
        assert len(fake.calls("sendMessage")) == 1
        await s.clock.advance(6.9)
        assert not polling.done() and fake.sent == []  # not before Telegram said
        await s.clock.advance(0.2)
        assert await asyncio.wait_for(polling, 5) == 1
        [reply] = replies(fake)
        assert reply.startswith("Running: 2")


async def test_a_bot_api_that_answers_long_polls_at_once_is_not_asked_in_a_tight_loop(
        tmp_path: Path, fake: FakeTelegram) -> None:
    fake.holds_long_polls = False
    machines = two_machines()
    clock = machines.clock
    async with bot_hub(tmp_path / "db", fake, machines) as hub:
        await hub.start()
        # The empty answer came at once: the bot waits out the rest of a second before it asks again.
        await until(lambda: sleeping_until(clock, clock.now() + MIN_POLL_GAP_S))
        assert len(fake.calls("getUpdates")) == 1
        await clock.advance(MIN_POLL_GAP_S)
        await until(lambda: len(fake.calls("getUpdates")) == 2)
