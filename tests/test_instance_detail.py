"""The Monitor pane's numbers, the instance detail screen (from both panes, windows, port URLs, hostile
text, the status timeline, live refresh), and the logs view's follow mode and search."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import RichLog, Static
from tui import ready, screen_text, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.config.schema import INSTANCES_FLOOR_S
from computehub_tui.domain.models import Instance, InstanceStatus, SshEndpoint
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.engine.crossing import run_on
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.format import money, rate
from computehub_tui.ui.screens.instance_detail import InstanceDetailScreen, port_links
from computehub_tui.ui.screens.logs import LogsScreen
from computehub_tui.ui.widgets.status_timeline import StatusTimeline, timeline_text
from computehub_tui.wiring import Session

HOSTILE = "[bold]x[/] [@click=app.quit]q[/] \x1b]52;c;aGk=\x07"


def machine(**changes: object) -> Instance:
    fields: dict[str, object] = {
        "provider": "vast", "instance_id": "1", "label": "train", "status": InstanceStatus.RUNNING,
        "provider_status": "running", "gpu": "RTX 4090", "gpu_count": 1, "price_hour": 0.5,
        "ssh": SshEndpoint("1.2.3.4", 2222)}
    fields.update(changes)
    return Instance(**fields)  # type: ignore[arg-type]


# -- ports ----------------------------------------------------------------------------------


def test_port_urls_come_only_from_valid_hosts_and_ports() -> None:
    instance = machine(ports={
        "8888/http": "1.2.3.4:40001", "8188/tcp": "1.2.3.4:40002", "8000/tcp": "[2001:db8::1]:40003",
        "7860/tcp": "1.2.3.4:40004", "22/tcp": "1.2.3.4:2222",
        "9000/tcp": "evil.example;rm -rf /:80", "9001/tcp": "1.2.3.4:99999", "x/tcp": "1.2.3.4:1",
        "9002/tcp": "javascript:alert(1)//:80"})
    assert [(link.container_port, link.url, link.service) for link in port_links(instance)] == [
        (8000, "http://[2001:db8::1]:40003", "vLLM"), (8188, "http://1.2.3.4:40002", "ComfyUI"),
        (8888, "http://1.2.3.4:40001", "Jupyter"), (7860, "http://1.2.3.4:40004", "")]


# -- the Monitor pane's numbers on the demo ---------------------------------------------------


async def test_monitor_shows_the_fleet_summary_and_a_line_per_gpu(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(160, 48)) as pilot:
        app = await ready(pilot)
        await pilot.press("3")
        pane = app.monitor_pane
        await wait_for(pilot, lambda: any(card.history for card in pane.cards))
        pane.reload()
        await pilot.pause()
        fleet = pane.fleet
        running = [card for card in pane.cards if card.instance.status is InstanceStatus.RUNNING]
        assert fleet.busy_gpus + fleet.idle_gpus + fleet.unknown_gpus == sum(c.instance.gpu_count for c in running)
        text = screen_text(pilot)
        assert (f"{len(running)} running · GPUs: {fleet.busy_gpus} busy · {fleet.idle_gpus} idle · "
                f"{fleet.unknown_gpus} unknown   idle GPUs cost ${fleet.idle_cost_hour:.3f}/h") in text
        two = next(card for card in pane.cards if card.instance.label == "llama-finetune")
        pane.move_to(pane.cards.index(two))
        await pilot.pause()
        latest = two.history[-1]
        lines = screen_text(pilot).splitlines()
        gpu_lines = [line for line in lines if line.lstrip("│ ").startswith(("GPU0", "GPU1"))]
        assert any(f"{latest.gpu_util[1]:.0f}%" in line and "GPU1" in line for line in gpu_lines)
        assert two.readout.text in screen_text(pilot)


# -- the detail screen ------------------------------------------------------------------------


def note_of(screen: InstanceDetailScreen) -> str:
    return str(screen.query_one("#instance-chart-note", Static).render())


async def test_details_open_from_both_panes_and_switch_windows(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(160, 48)) as pilot:
        app = await ready(pilot)
        await pilot.press("2", "i")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
        screen = app.screen
        assert isinstance(screen, InstanceDetailScreen)
        assert screen.instance.key == app.instances_pane.table.current_row.key  # type: ignore[union-attr]
        await wait_for(pilot, lambda: note_of(screen).startswith("Last 1 h: "))
        await pilot.press("1")
        await wait_for(pilot, lambda: note_of(screen).startswith("Last 15 m: ") and "loading" not in note_of(screen))
        await pilot.press("4")
        await wait_for(pilot, lambda: note_of(screen).startswith("Last 7 d: ") and "loading" not in note_of(screen))
        await pilot.press("escape", "3")
        await wait_for(pilot, lambda: app.screen is not screen and app.monitor_pane.current is not None)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
        assert cast(InstanceDetailScreen, app.screen).instance.key == app.monitor_pane.current.key  # type: ignore[union-attr]


async def test_hostile_label_and_status_show_literally(tmp_path: Path) -> None:
    hostile = machine(label=HOSTILE, status_message=HOSTILE, ports={"8888/http": "1.2.3.4:40001"})
    async with small_app(tmp_path, ManualClock()).run_test(size=(160, 48)) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        app.open_instance_detail(hostile)
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
        await pilot.pause()
        text = screen_text(pilot)
        assert "[bold]x[/] [@click=app.quit]q[/]" in text and "\x1b" not in text
        assert "http://1.2.3.4:40001  Jupyter" in text
        assert app.is_running


# -- the status timeline and live refresh ------------------------------------------------------

P, R, X = InstanceStatus.PROVISIONING, InstanceStatus.RUNNING, InstanceStatus.EXITED
BOOTED_AGO_S = 1800.0
"""The demo's RunPod pods were last seen provisioning this long before the app starts."""


async def seen_provisioning(session: Session) -> None:
    """Before the app starts, the store remembers every RunPod pod provisioning half an hour ago."""
    clock = session.hub.clock
    pods = await session.hub.providers["runpod"].list_instances()
    booting = [dataclasses.replace(pod, status=P, running_since=None) for pod in pods]
    await session.store.save_instances("runpod", booting, clock.now() - BOOTED_AGO_S)


def timeline_of(screen: InstanceDetailScreen) -> str:
    timeline = screen.query_one(StatusTimeline)
    return timeline.render().plain


async def open_running_pod(pilot: Pilot) -> tuple[ComputeHubApp, InstanceDetailScreen]:
    app = await ready(pilot)
    assert app.hub is not None
    pod = next(i for i in app.hub.instances() if i.provider == "runpod" and i.status is R)
    app.open_instance_detail(pod)
    await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen) and app.screen.draws > 0)
    return app, cast(InstanceDetailScreen, app.screen)


def test_the_timeline_bar_colours_each_status_and_marks_its_changes() -> None:
    changes = [StatusChange("k", 0, P), StatusChange("k", 500, R, P), StatusChange("k", 750, X, R)]
    text = timeline_text(changes, 0, 1000, 9 + 40)
    bar, axis, last = text.plain.split("\n")
    assert bar == "Timeline " + "█" * 40
    colours = [str(text.get_style_at_offset(Console(), 9 + cell).color.name)  # type: ignore[union-attr]
               for cell in (0, 19, 20, 29, 30, 39)]
    assert colours == ["cyan", "cyan", "green", "green", "red", "red"]
    assert axis.split() == ["00:00", "^00:08", "^00:12", "now"]
    assert axis.index("^00:08") == 9 + 20 and axis.index("^00:12") == 9 + 30
    assert last == "Changes  00:12 running → exited · 00:08 provisioning → running"
    unseen = timeline_text(changes[1:], 0, 1000, 9 + 40).plain.split("\n")[0]
    assert unseen == "Timeline " + "·" * 20 + "█" * 20  # nothing known before the first sight


async def test_the_timeline_shows_what_polls_saw_and_since_when(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock, prepare=seen_provisioning).run_test(size=(160, 48)) as pilot:
        app, screen = await open_running_pod(pilot)
        assert app.hub is not None
        started = app.hub.status_since(screen.instance.key)
        assert started is not None and started == clock.now()  # seen running by the first poll
        timeline = timeline_of(screen)
        at, booted = (datetime.fromtimestamp(moment, tz=UTC).strftime("%H:%M")
                      for moment in (started, started - BOOTED_AGO_S))
        assert f"Changes  {at} provisioning → running" in timeline
        assert f"^{booted}" in timeline.splitlines()[1]  # first seen (provisioning); unknown before
        assert timeline.splitlines()[0].startswith("Timeline " + "·" * 20)
        assert f"Changes  {at} provisioning → running" in screen_text(pilot)


async def test_charts_and_figures_follow_new_polls_only_while_shown(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=(160, 48)) as pilot:
        app, screen = await open_running_pod(pilot)
        assert app.hub is not None
        key = screen.instance.key
        hub = app.hub

        async def polls_only_when_asked() -> None:
            hub.polling.stop("runpod")  # its own loop would poll too after the hour: one poll is what is counted

        assert hub.home_loop is not None
        await run_on(hub.home_loop, polls_only_when_asked())
        drawn, spent = screen.draws, app.hub.cost_so_far(key)
        await clock.advance(3600)
        await app.hub.refresh_instances("runpod")
        await wait_for(pilot, lambda: screen.draws > drawn)
        assert app.hub.cost_so_far(key) > spent
        await wait_for(pilot, lambda: f"{money(app.hub.cost_so_far(key))} so far" in screen_text(pilot))
        assert screen.draws <= drawn + 2  # one load, and at most one more for the event that arrived during it

        await pilot.press("l")  # the logs cover the detail
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen))
        drawn = screen.draws
        polled = app.hub.health_of("runpod").instances_at
        await clock.advance(5)
        await app.hub.refresh_instances("runpod")
        await wait_for(pilot, lambda: app.hub.health_of("runpod").instances_at != polled and screen._stale)
        assert screen.draws == drawn
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.draws == drawn + 1)
        assert not screen._stale


async def test_a_stopped_runpod_pod_says_what_its_volume_bills(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(160, 48)) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        stopped = next(i for i in app.hub.instances() if i.provider == "runpod" and i.status is InstanceStatus.STOPPED
                       and i.storage_price_hour > 0)
        app.open_instance_detail(stopped)
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
        await pilot.pause()
        assert f"stopped·bills {rate(stopped.storage_price_hour)}/h" in screen_text(pilot)


# -- logs: follow and search ------------------------------------------------------------------


class CountingLogs:
    """Stands in for the Hub: counts log fetches and answers with numbered lines."""

    def __init__(self, lines: list[str]) -> None:
        self.calls = 0
        self.lines = lines

    async def logs(self, key: str, tail: int = 200) -> str:
        self.calls += 1
        return "\n".join([*self.lines, f"fetch {self.calls}"])


class LogsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("under the logs")


def logs_screen(hub: CountingLogs, interval: float = 5.0) -> LogsScreen:
    return LogsScreen(cast(Hub, hub), machine(label=HOSTILE), follow_interval_s=interval)


def log_text(screen: LogsScreen) -> str:
    return "\n".join(strip.text for strip in screen.query_one(RichLog).lines)


async def test_follow_refetches_until_the_logs_close() -> None:
    hub = CountingLogs(["boot"])
    assert logs_screen(hub, interval=0.01).follow_interval_s == INSTANCES_FLOOR_S  # never faster than the floor
    async with LogsApp().run_test() as pilot:
        screen = logs_screen(hub)
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: "fetch 1" in log_text(screen))
        await pilot.press("f")
        await wait_for(pilot, lambda: "fetch 2" in log_text(screen))
        timer = screen.follow_timer
        assert timer is not None and timer._interval == 5.0
        screen.follow_tick()  # what the timer does every interval
        await wait_for(pilot, lambda: "fetch 3" in log_text(screen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is not screen)
        assert screen.follow_timer is None and timer._task is None  # stopped with the screen
        screen.follow_tick()
        await pilot.pause()
        assert hub.calls == 3


async def test_search_finds_literal_text_and_moves_between_matches() -> None:
    hub = CountingLogs(["ok", "ERROR one", "fine", "[red]error[/] two", "error three"])
    async with LogsApp().run_test() as pilot:
        screen = logs_screen(hub)
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: "fetch 1" in log_text(screen))
        await pilot.press("slash", *"error", "enter")
        assert screen.matches == [1, 3, 4] and screen.match_index == 0
        assert "[red]error[/] two" in log_text(screen)  # markup in logs is shown, never applied
        await pilot.press("n", "n")
        assert screen.match_index == 2
        await pilot.press("n")
        assert screen.match_index == 0
        await pilot.press("N")
        assert screen.match_index == 2
        assert "match 3 of 3" in str(screen.query_one("#log-status", Static).render())
        highlighted = screen._highlighted("[red]error[/] two", current=True)
        assert isinstance(highlighted, Text) and highlighted.spans[0].start == 5
