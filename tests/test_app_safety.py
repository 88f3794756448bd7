"""Provider text is plain text in the TUI: markup in a label is shown literally, never obeyed or fatal;
a render error stays inside its widget."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from tui import SIZE, ready, screen_lines, screen_text, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.plain import PlainStatic
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.logs import WarningsScreen
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable
from computehub_tui.wiring import Session

HOSTILE_LABELS = ["[bold red]x[/] [link=http://x]l[/link]", "exp [/]", "[@click=app.quit]q[/]"]
"""Each of these crashed the TUI (or became a clickable action) while labels were read as markup."""
CLICKABLE = HOSTILE_LABELS[2]
RELABELLED = ("llama-finetune", "sd-webui", "comfyui-prod")
"""Running demo instances, so they show in every pane."""


async def relabel(session: Session) -> None:
    assert session.market is not None
    names = dict(zip(RELABELLED, HOSTILE_LABELS, strict=True))
    for instance in session.market.instances.values():
        instance.label = names.get(instance.label, instance.label)


async def select_labelled(pilot: Pilot, app: ComputeHubApp, label: str) -> Instance:
    await pilot.press("2")
    table = app.instances_pane.table
    await wait_for(pilot, lambda: any(i.label == label for i in table.rows))
    instance = next(i for i in table.rows if i.label == label)
    table.move_to(table.index_of(instance.key))
    await pilot.pause()
    return instance


async def show_in_monitor(pilot: Pilot, app: ComputeHubApp, key: str) -> None:
    """Open the Monitor with ``key``'s card under the cursor (so it is on screen)."""
    await pilot.press("3")
    pane = app.monitor_pane
    await wait_for(pilot, lambda: any(i.key == key for i in pane.watched))
    pane.move_to(next(n for n, i in enumerate(pane.watched) if i.key == key))
    await pilot.pause()


def position_of(pilot: Pilot, text: str, within: Region) -> tuple[int, int]:
    """Screen (x, y) of the first ``text`` drawn inside ``within``."""
    for y, line in enumerate(screen_lines(pilot)):
        x = line.find(text, within.x, within.right)
        if within.y <= y < within.bottom and x >= 0:
            return x, y
    raise AssertionError(f"{text!r} is not drawn in {within}:\n{screen_text(pilot)}")


def card_title(pilot: Pilot, key: str) -> str:
    """The Monitor card title line that ends with ``key``, without its cursor mark."""
    titles = [line.strip().removeprefix("▶ ") for line in screen_lines(pilot) if line.rstrip().endswith(f"  {key}")]
    assert len(titles) == 1, screen_text(pilot)
    return titles[0]


async def test_markup_in_labels_is_shown_literally_in_every_pane_and_dialog(tmp_path: Path) -> None:
    async with small_app(tmp_path, prepare=relabel).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        for label in HOSTILE_LABELS:
            instance = await select_labelled(pilot, app, label)
            assert label in screen_text(pilot)  # the detail line, literally
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.pause()
            assert label in screen_text(pilot)
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            await show_in_monitor(pilot, app, instance.key)
            assert card_title(pilot, instance.key).startswith(f"{label}  ")
        assert app.is_running and app.return_code is None


async def test_clicking_a_click_action_in_a_label_does_nothing(tmp_path: Path) -> None:
    async with small_app(tmp_path, prepare=relabel).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        instance = await select_labelled(pilot, app, CLICKABLE)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        x, y = position_of(pilot, CLICKABLE, app.screen.query_one("#confirm-body").region)
        await pilot.click(offset=(x + CLICKABLE.index("q[/]"), y))
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await show_in_monitor(pilot, app, instance.key)
        x, y = position_of(pilot, f"{CLICKABLE}  {instance.gpu_count}x", app.monitor_pane.region)
        await pilot.click(offset=(x + CLICKABLE.index("q[/]"), y))
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_a_remembered_hostile_instance_at_start_does_not_crash(tmp_path: Path) -> None:
    clock = ManualClock()
    remembered = [Instance("vast", f"77{n}", label, InstanceStatus.RUNNING, "running", "RTX 4090", 1, 0.4,
                           started_at=clock.now() - 600) for n, label in enumerate(HOSTILE_LABELS)]

    async def remember(session: Session) -> None:
        await session.store.save_instances("vast", remembered, clock.now())

        async def engine_not_answering_yet() -> None:
            await asyncio.Event().wait()

        # What a restart shows first: the remembered instances, before any provider has answered.
        session.hub.start = engine_not_answering_yet  # type: ignore[method-assign]

    async with small_app(tmp_path, clock, remember).run_test(size=SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ComputeHubApp)
        table = app.instances_pane.table
        await wait_for(pilot, lambda: len(table.rows) == len(remembered))
        await pilot.press("2")
        for instance in remembered:
            table.move_to(table.index_of(instance.key))
            await pilot.pause()
            assert instance.label in screen_text(pilot)
        for instance in remembered:
            await show_in_monitor(pilot, app, instance.key)
            assert card_title(pilot, instance.key).startswith(f"{instance.label}  ")
        assert app.is_running and app.return_code is None


class _Boom:
    def __str__(self) -> str:
        raise ValueError("boom")


class BrokenStatic(PlainStatic):
    def render(self) -> str:
        raise RuntimeError("cannot paint this")


class RenderErrorApp(App[None]):
    def compose(self) -> ComposeResult:
        columns = [Column("name", "NAME", 12, lambda row: (str(row), None))]
        yield VirtualTable(columns, row_key=id, id="table")
        yield BrokenStatic(id="broken")

    def on_mount(self) -> None:
        self.query_one(VirtualTable).set_rows(["fine", _Boom()])


async def test_a_render_error_shows_in_place_and_the_app_keeps_running() -> None:
    app = RenderErrorApp()
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        text = screen_text(pilot)
        assert "(cannot display: ValueError: boom)" in text
        assert "(cannot display: RuntimeError: cannot paint this)" in text
        await pilot.press("down")  # keeps handling input and repainting
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_table_cells_lose_escape_sequences_and_controls() -> None:
    hostile = "ok\x1b]0;PWNED\x07\x1b[2J\u202e\x00!"
    app = App[None]()
    table: VirtualTable[str] = VirtualTable([Column("name", "NAME", 20, lambda row: (row, None))], row_key=str)
    async with app.run_test(size=(40, 5)) as pilot:
        await app.mount(table)
        table.set_rows([hostile])
        await pilot.pause()
        line = table.render_line(1).text
        assert line.startswith("ok!") and "PWNED" not in line
        assert all(ch.isprintable() for ch in line)


async def test_notifications_are_plain_and_clean(tmp_path: Path) -> None:
    app = small_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        app.clear_notifications()
        app.notify("[@click=app.quit]x[/] exp [/] \x1b]0;PWNED\x07done", title="[b]provider[/b] error")
        await pilot.pause()
        text = screen_text(pilot)
        assert "[@click=app.quit]x[/] exp [/] done" in text and "[b]provider[/b] error" in text
        assert "PWNED" not in text and "\x1b" not in text


async def test_the_text_views_show_control_characters_instead_of_obeying_them() -> None:
    app = App[None]()
    async with app.run_test(size=(80, 10)) as pilot:
        await app.push_screen(WarningsScreen(["epoch 1 \x1b]0;PWNED\x07 [bold]loss[/] \x1b[2J\u202eok"]))
        await pilot.pause()
        text = screen_text(pilot)
        assert "epoch 1 ␛]0;PWNED␇ [bold]loss[/] ␛[2J<U+202E>ok" in text
        assert "\x1b" not in text and "\u202e" not in text
