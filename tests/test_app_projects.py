"""Projects and spend in the TUI: set / clear an instance's project, filter by project, the stopped-but-billing
flag, and the cost view whose totals agree with the header."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_app_safety import HOSTILE_LABELS, relabel, select_labelled
from textual.pilot import Pilot
from textual.widgets import Input
from tui import ready, run_palette, screen_lines, screen_text, small_app, wait_for

from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.domain.projects import project_from_label
from computehub_tui.engine.costs import day_start
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.costs import NO_SPEND_TEXT, CostScreen
from computehub_tui.ui.screens.projects import ProjectFilterScreen, ProjectScreen
from computehub_tui.ui.widgets.header import HubHeader
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable, columns_that_fit
from computehub_tui.wiring import Session

SIZE = (160, 48)


pytestmark = pytest.mark.usefixtures("utc")


async def on_row(pilot: Pilot, app: ComputeHubApp, label: str) -> Instance:
    """The Instances pane with the cursor on the instance labelled ``label``."""
    await pilot.press("2")
    table = app.instances_pane.table
    instance = next(i for i in table.rows if i.label == label)
    table.move_to(table.rows.index(instance))
    await pilot.pause()
    return instance


def status_line(pilot: Pilot) -> str:
    """The Instances pane's status line (counts, burn, filter, money leaking)."""
    return next(line for line in screen_lines(pilot) if " instances" in line and " running" in line).strip(" ")


def cell(table: VirtualTable[Instance], column_key: str, instance: Instance) -> tuple[str, object]:
    column = next(c for c in table.columns if c.key == column_key)
    return column.cell(instance)


async def type_project(pilot: Pilot, app: ComputeHubApp, text: str) -> None:
    await pilot.press("p")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen))
    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await pilot.pause()


async def audit_of(app: ComputeHubApp) -> list[tuple[str, str, str, str]]:
    assert app.hub is not None
    return [(e.actor, e.action, e.target, e.detail) for e in reversed(await app.hub.store.audit_log())
            if e.action.startswith("project")]


async def test_setting_a_project_from_the_tui_writes_it_and_the_audit_log_names_the_user(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        instance = await on_row(pilot, app, "llama-finetune")
        assert cell(app.instances_pane.table, "project", instance) == ("llama-finetune", "dim")  # from the label
        await type_project(pilot, app, "  LLM-Train ")
        await wait_for(pilot, lambda: app.hub is not None and app.hub.projects.project_of(instance) == "llm-train")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProjectScreen)
                       and cell(app.instances_pane.table, "project", instance) == ("llm-train", None))
        assert await audit_of(app) == [("user", "project set", instance.key, "llm-train")]
        assert "project llm-train" in screen_text(pilot)  # the detail line


async def test_a_project_set_on_marked_instances_applies_to_each(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        first = await on_row(pilot, app, "llama-finetune")
        await pilot.press("space")
        second = await on_row(pilot, app, "sd-webui")
        await pilot.press("space")
        await type_project(pilot, app, "team-a")
        await wait_for(pilot, lambda: app.hub is not None and dict(app.hub.projects.assigned) == {
            first.key: "team-a", second.key: "team-a"})
        await wait_for(pilot, lambda: not app.instances_pane.marked)


async def test_an_invalid_project_name_shows_the_rule_in_the_dialog_and_changes_nothing(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        instance = await on_row(pilot, app, "llama-finetune")
        await type_project(pilot, app, "[bold]llm train[/]")
        assert isinstance(app.screen, ProjectScreen)
        text = screen_text(pilot)
        assert "a project name is 1-40 characters of a-z" in text and "[bold]llm train[/]" in text  # literally
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProjectScreen))
        assert app.hub.projects.project_of(instance) == "llama-finetune"
        assert dict(app.hub.projects.assigned) == {}
        assert await audit_of(app) == []


async def test_an_empty_name_clears_the_project_back_to_the_labels(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        instance = await on_row(pilot, app, "sd-webui")
        await app.hub.projects.set(instance.key, "scratch", actor="user")
        app.instances_pane.reload()
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen))
        box = app.screen.query_one(Input)
        assert box.value == "scratch"  # the set project, to edit
        box.value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.hub is not None and instance.key not in app.hub.projects.assigned)
        assert app.hub.projects.project_of(instance) == project_from_label("sd-webui") == "sd-webui"
        await wait_for(pilot, lambda: cell(app.instances_pane.table, "project", instance) == ("sd-webui", "dim"))
        assert (await audit_of(app))[-1] == ("user", "project clear", instance.key, "")


async def test_the_project_filter_shows_only_that_projects_instances_and_esc_clears_it(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        pane = app.instances_pane
        everyone = {i.key for i in pane.table.rows}
        chosen = [i for i in pane.table.rows if i.label in ("llama-finetune", "bert-serve")]
        for instance in chosen:
            await app.hub.projects.set(instance.key, "team-a", actor="user")
        pane.reload()
        await on_row(pilot, app, "sd-webui")
        await run_palette(pilot, "Filter instances by project")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectFilterScreen))
        # The projects present, to pick from (waited for: the list paints after the dialog opens).
        await wait_for(pilot, lambda: "team-a  2 instances" in screen_text(pilot))
        app.screen.query_one(Input).value = "team-a"
        await pilot.press("enter")
        await wait_for(pilot, lambda: {i.key for i in pane.table.rows} == {i.key for i in chosen})
        await wait_for(pilot, lambda: status_line(pilot).startswith(
            f"project team-a   2 instances of {len(everyone)}, 2 running"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: {i.key for i in pane.table.rows} == everyone)
        await wait_for(pilot, lambda: status_line(pilot).startswith(f"{len(everyone)} instances, "))


async def test_the_project_filter_picks_from_the_projects_present_and_hides_marked_rows(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.instances_pane
        marked = await on_row(pilot, app, "bert-serve")
        await pilot.press("space")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectFilterScreen))
        await pilot.press("enter")  # the first project present, in name order
        await wait_for(pilot, lambda: not isinstance(app.screen, ProjectFilterScreen))
        assert [i.label for i in pane.table.rows] == ["bert-serve"]
        assert pane.marked == {marked.key}
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectFilterScreen))
        app.screen.query_one(Input).value = "sd-webui"
        await pilot.press("enter")
        await wait_for(pilot, lambda: [i.label for i in pane.table.rows] == ["sd-webui"])
        assert pane.marked == set()  # a hidden row is never acted on


async def test_stopped_vast_and_runpod_instances_that_bill_storage_are_flagged(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        assert app.hub is not None
        table = app.instances_pane.table
        billing = await on_row(pilot, app, "old-experiment")
        assert billing.provider == "vast" and billing.status is InstanceStatus.STOPPED
        storage = app.hub.costs.rate_now(billing)
        assert storage is not None and storage > 0
        assert cell(table, "status", billing)[0] == "stopped·bills"
        text = screen_text(pilot)
        assert f"stopped · billing ${storage:.3f}/h for its storage" in text  # the detail line
        volume = next(i for i in table.rows if i.label == "eval-job")  # RunPod bills a stopped pod's volume
        volume_storage = app.hub.costs.rate_now(volume)
        assert volume.provider == "runpod" and volume.status is InstanceStatus.STOPPED
        assert volume_storage is not None and volume_storage > 0
        assert cell(table, "status", volume)[0] == "stopped·bills"
        assert status_line(pilot).endswith(f"2 stopped · billing ${storage + volume_storage:.3f}/h")


async def test_a_stopped_instance_is_not_flagged_where_the_provider_bills_nothing_while_stopped(
        tmp_path: Path) -> None:
    async def no_storage_billing(session: Session) -> None:
        """Vast and RunPod with Lambda's terms: a stopped machine costs nothing."""
        for name in ("vast", "runpod"):
            provider = session.hub.providers[name]
            provider.capabilities = dataclasses.replace(session.hub.capabilities("lambda"), logs=True)

    async with small_app(tmp_path, prepare=no_storage_billing).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        stopped = await on_row(pilot, app, "old-experiment")
        assert stopped.status is InstanceStatus.STOPPED
        assert cell(app.instances_pane.table, "status", stopped)[0] == "stopped"
        assert "billing $" not in screen_text(pilot)


async def test_the_cost_view_totals_agree_with_the_header_and_the_books(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        hub = app.hub
        assert hub is not None
        await pilot.press("dollar_sign")
        await wait_for(pilot, lambda: isinstance(app.screen, CostScreen) and app.screen.summary is not None)
        screen = app.screen
        assert isinstance(screen, CostScreen) and screen.summary is not None
        header = app.query_one(HubHeader)
        total = screen.summary.total
        assert hub.spend_today() > 0
        assert total.today == pytest.approx(header.spend_today) == pytest.approx(hub.spend_today())
        assert total.month == pytest.approx(hub.spend_this_month())
        now = hub.clock.now()
        by_project = await hub.costs.spend_by(["project"], day_start(now, hub.costs.zone))
        expected = {line.keys[0] or "(no project)": line.usd for line in by_project}
        assert {g.name: g.today for g in screen.summary.groups if g.today} == pytest.approx(expected)
        assert f"Today ${hub.spend_today():,.2f}" in screen_text(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert screen.grouping == "provider"
        assert screen.summary.total.today == pytest.approx(hub.spend_today())
        by_provider = await hub.costs.spend_by(["provider"], day_start(now, hub.costs.zone))
        assert {g.name for g in screen.summary.groups if g.today} == {
            {"vast": "Vast.ai", "runpod": "RunPod", "lambda": "Lambda", "tensordock": "TensorDock"}[line.keys[0] or ""]
            for line in by_provider if line.usd}


async def test_the_cost_view_says_so_when_nothing_is_booked(tmp_path: Path) -> None:
    async def no_instances(session: Session) -> None:
        assert session.market is not None
        session.market.instances.clear()

    async with small_app(tmp_path, prepare=no_instances).run_test(size=SIZE) as pilot:
        app = await ready_without_instances(pilot)
        await pilot.press("dollar_sign")
        await wait_for(pilot, lambda: isinstance(app.screen, CostScreen) and app.screen.summary is not None)
        assert NO_SPEND_TEXT in screen_text(pilot)


async def ready_without_instances(pilot: Pilot) -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    await wait_for(pilot, lambda: app.hub is not None and all(h.instances_at for h in app.hub.health()))
    return app


def test_a_narrow_table_drops_the_highest_priorities_first_rightmost_first_and_never_priority_zero() -> None:
    def column(key: str, width: int, priority: int) -> Column[object]:
        return Column(key, key.upper(), width, lambda row: ("", None), priority=priority)

    columns = [column("a", 9, 0), column("b", 9, 1), column("c", 9, 2), column("d", 9, 2), column("e", 9, 0)]
    assert [c.key for c in columns_that_fit(columns, 50)] == ["a", "b", "c", "d", "e"]
    assert [c.key for c in columns_that_fit(columns, 40)] == ["a", "b", "c", "e"]
    assert [c.key for c in columns_that_fit(columns, 30)] == ["a", "b", "e"]
    assert [c.key for c in columns_that_fit(columns, 5)] == ["a", "e"]


async def test_at_80_columns_the_instances_table_fits_with_project_and_money_and_no_sideways_scroll(
        tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=(80, 24)) as pilot:
        app = await ready(pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.instances_pane.table
        assert [c.key for c in table.columns] == ["mark", "label", "status", "project", "gpu", "price", "cost"]
        assert table.total_width <= table.size.width
        await pilot.resize_terminal(160, 48)
        await wait_for(pilot, lambda: "location" in [c.key for c in table.columns])


async def test_hostile_labels_are_shown_literally_in_the_project_dialog_and_imply_no_project(tmp_path: Path) -> None:
    async with small_app(tmp_path, prepare=relabel).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        for label in HOSTILE_LABELS:
            instance = await select_labelled(pilot, app, label)
            assert cell(app.instances_pane.table, "project", instance) == ("-", "dim")
            await pilot.press("p")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen))
            await pilot.pause()
            assert f"Project of {instance.key} ({label})" in screen_text(pilot)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, ProjectScreen))
        assert app.is_running
