"""[ui] in the running app: theme, start pane and key overrides applied at start (bad ones warned about,
never fatal), and the theme and default pane written back into the user's file without touching the rest."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from tui import SIZE, run_palette, screen_text, small_app, wait_for

from computehub_tui.config import Config, load_config
from computehub_tui.config.schema import KEY_ACTIONS, UiSection
from computehub_tui.ui.app import REBINDABLE_IDS, ComputeHubApp
from computehub_tui.ui.screens.help import HelpScreen

HAND_WRITTEN = """\
# my computehub settings
[poll]
offers_s = 60     # slow is fine

[ui]
# colours: see ctrl+p → Change theme
theme   = "textual-dark"   # the default, written out
default_pane = "offers"

[demo]
seed = 7
"""


def config_file(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ or {})


def warnings(messages: list[Message]) -> list[str]:
    return [f"{m.notification.title}: {m.notification.message}" for m in messages
            if isinstance(m, Notify) and m.notification.severity == "warning"]


async def started(pilot: Pilot) -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    await wait_for(pilot, lambda: app.hub is not None)
    return app


def test_every_id_the_config_accepts_is_a_binding_of_the_app() -> None:
    assert REBINDABLE_IDS == KEY_ACTIONS


async def test_the_configured_theme_and_start_pane_apply_at_start(tmp_path: Path) -> None:
    config = config_file(tmp_path, '[ui]\ntheme = "nord"\ndefault_pane = "instances"\n')
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        assert app.theme == "nord"
        assert app.current_pane == "instances" and app.query_one("#panes").current == "instances"
        assert app.focused is app.instances_pane.table
        assert warnings(messages) == []
    assert (tmp_path / "config.toml").read_text() == '[ui]\ntheme = "nord"\ndefault_pane = "instances"\n'


async def test_an_unknown_theme_keeps_the_default_and_says_where_it_was_set(tmp_path: Path) -> None:
    config = config_file(tmp_path, '[ui]\ntheme = "nordd"\n')
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        assert app.theme == "textual-dark"
        [warning] = warnings(messages)
        assert "ui.theme" in warning and "'nordd'" in warning and "did you mean 'nord'" in warning
        assert f"{tmp_path / 'config.toml'}:2" in warning and "textual-light" in warning
        assert app.is_running


async def test_a_rebound_pane_key_moves_the_pane_and_help_and_footer_show_it(tmp_path: Path) -> None:
    config = config_file(tmp_path, '[ui]\nkeys = { instances = "f2", sort_pergpu = "y" }\n')
    async with small_app(tmp_path, config=config).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await pilot.press("2")
        assert app.current_pane == "offers"  # the old key no longer switches
        await pilot.press("y")
        assert app.offers_pane.sort_name == "pergpu"
        await pilot.press("f2")
        assert app.current_pane == "instances"
        text = screen_text(pilot)
        assert " f2 Instances " in text  # the tabs
        assert text.splitlines()[-1].count("f2") == 1  # the footer
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        sections = dict(app.screen.sections)
        assert ("f2", "Instances") in sections["Everywhere"] and ("2", "Instances") not in sections["Everywhere"]
        assert ("y", "Sort $/GPU") in sections["Offers (1)"] and "Instances (f2)" in sections


async def test_an_unknown_binding_id_is_warned_about_and_the_known_ones_still_apply(tmp_path: Path) -> None:
    # `config validate` rejects unknown ids; a config built in code (or for another version) may still have one.
    ui = UiSection()
    ui.keys.update({"pane.bogus": "f9", "monitor": "f3"})
    config = Config().model_copy(update={"ui": ui})
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        [warning] = warnings(messages)
        assert "ui.keys" in warning and "'pane.bogus'" in warning and ", ".join(KEY_ACTIONS) in warning
        await pilot.press("f3")
        assert app.current_pane == "monitor"


async def test_a_key_taken_from_another_binding_is_named(tmp_path: Path) -> None:
    config = config_file(tmp_path, '[ui]\nkeys = { monitor = "1", sort_pergpu = "P" }\n')
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        await pilot.press("1")
        assert app.current_pane == "monitor"
        assert warnings(messages) == [
            ("Config: ui.keys: monitor = '1' takes the key of offers, which no longer answers to it; give offers "
             "another key in [ui] keys."),
            ("Config: ui.keys: sort_pergpu = 'P' takes the key of sort_price, which no longer answers to it; give "
             "sort_price another key in [ui] keys.")]


async def test_changing_the_theme_writes_only_that_value_into_the_file(tmp_path: Path) -> None:
    config = config_file(tmp_path, HAND_WRITTEN)
    path = tmp_path / "config.toml"
    before = path.read_bytes()
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        assert path.read_bytes() == before  # applying the configured theme is not a change
        app.theme = "gruvbox"
        await wait_for(pilot, lambda: path.read_bytes() != before)
        assert path.read_bytes() == before.replace(b'"textual-dark"', b'"gruvbox"')
        assert warnings(messages) == []
        app.theme = "nord"
        await wait_for(pilot, lambda: b'"nord"' in path.read_bytes())
    assert path.read_bytes() == before.replace(b'"textual-dark"', b'"nord"')
    assert load_config(path, {}).ui.theme == "nord"


async def test_an_environment_override_is_written_through_but_named(tmp_path: Path) -> None:
    config = config_file(tmp_path, HAND_WRITTEN, {"COMPUTEHUB_UI_THEME": "nord"})
    path = tmp_path / "config.toml"
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        assert app.theme == "nord"
        app.theme = "gruvbox"
        await wait_for(pilot, lambda: any("COMPUTEHUB_UI_THEME" in text for text in warnings(messages)))
    assert load_config(path, {}).ui.theme == "gruvbox"


async def test_the_palette_makes_the_current_pane_the_default(tmp_path: Path) -> None:
    config = config_file(tmp_path, HAND_WRITTEN)
    path = tmp_path / "config.toml"
    before = path.read_bytes()
    async with small_app(tmp_path, config=config).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await pilot.press("3")
        await run_palette(pilot, "this pane")
        await wait_for(pilot, lambda: path.read_bytes() != before)
        assert path.read_bytes() == before.replace(b'default_pane = "offers"', b'default_pane = "monitor"')
        assert app.current_pane == "monitor"


async def test_the_first_write_back_creates_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    config = load_config(path, {})
    async with small_app(tmp_path, config=config).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        app.theme = "nord"
        await wait_for(pilot, path.exists)
    assert path.read_text() == '[ui]\ntheme = "nord"\n'


async def test_a_file_that_cannot_be_written_or_read_is_a_warning_and_the_app_runs_on(tmp_path: Path) -> None:
    # The tests may run as root, whom a read-only mode does not stop: a file where the directory should be does.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    unwritable = load_config(blocked / "config.toml", {})
    messages: list[Message] = []
    async with small_app(tmp_path, config=unwritable).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        app.theme = "nord"
        await wait_for(pilot, lambda: len(warnings(messages)) == 1)
        assert "ui.theme was not saved" in warnings(messages)[0] and str(blocked) in warnings(messages)[0]
        assert app.is_running and app.theme == "nord"
        await pilot.press("2")
        assert app.current_pane == "instances"


async def test_a_file_broken_while_the_app_runs_is_not_overwritten(tmp_path: Path) -> None:
    config = config_file(tmp_path, HAND_WRITTEN)
    path = tmp_path / "config.toml"
    broken = HAND_WRITTEN.replace("offers_s = 60", "offers_s = 1").encode()
    messages: list[Message] = []
    async with small_app(tmp_path, config=config).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        path.write_bytes(broken)  # edited by hand meanwhile, and now invalid
        app.theme = "nord"
        await wait_for(pilot, lambda: len(warnings(messages)) == 1)
        assert "poll.offers_s: must be ≥ 10" in warnings(messages)[0] and f"{path}:3" in warnings(messages)[0]
        path.write_bytes(b"[ui\n")  # not even TOML
        app.theme = "gruvbox"
        await wait_for(pilot, lambda: len(warnings(messages)) == 2)
        assert "ui.theme was not saved" in warnings(messages)[1]
        assert app.is_running
    assert path.read_bytes() == b"[ui\n"


async def test_a_config_without_a_file_is_never_written(tmp_path: Path, isolated_dirs: Path) -> None:
    messages: list[Message] = []
    async with small_app(tmp_path).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await started(pilot)
        app.theme = "nord"
        await app.run_action("make_default_pane")
        await wait_for(pilot, lambda: any("no config file" in text for text in warnings(messages)))
        await wait_for(pilot, lambda: all(worker.group != "config" for worker in app.workers))
    assert not any(isolated_dirs.rglob("config.toml")) and not any(tmp_path.rglob("config.toml"))
