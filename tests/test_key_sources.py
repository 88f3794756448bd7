"""API keys by indirection: ``api_key_file`` / ``api_key_command`` in [providers.*], their refusals as
one-line config errors naming the setting, and the precedence environment > file / command > vault."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from fakes.cli import base_environment, run_cli, run_main
from fakes.vast import FakeVast
from loopback import refused_port
from textual.widgets import Static
from tui import SIZE, wait_for

from computehub_tui.cli import entry
from computehub_tui.cli.session import Options
from computehub_tui.clock import ManualClock
from computehub_tui.config import Config, ConfigError, load_config
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.key_sources import KeyIndirection, indirections_of, read_indirect_key
from computehub_tui.engine.keys import KeyService
from computehub_tui.ui import app as app_module
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.settings import SettingsScreen
from computehub_tui.wiring import open_session

KEY = "vast-indirect-key-7d41c09e2b"
STORED_KEY = "vast-stored-key-a94be1c3d0"
ENV_KEY = "vast-env-key-55f0e2ab19c7"


def python_command(code: str) -> str:
    """A command line running ``code`` in this interpreter (no shell involved)."""
    return shlex.join([sys.executable, "-c", code])


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "vast.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def file_source(path: Path | str) -> KeyIndirection:
    return KeyIndirection("vast", "file", str(path), "config.toml:3")


def command_source(command: str) -> KeyIndirection:
    return KeyIndirection("vast", "command", command, "config.toml:3")


async def problem_of(indirection: KeyIndirection, timeout_s: float = 10.0) -> str:
    with pytest.raises(ConfigError) as caught:
        await read_indirect_key(indirection, timeout_s)
    message = str(caught.value)
    assert "\n" not in message and KEY not in message
    return message


# -- api_key_file ----------------------------------------------------------------------------------


async def test_a_private_key_file_gives_its_stripped_contents(tmp_path: Path) -> None:
    path = key_file(tmp_path, f"  {KEY}\n\n")
    assert await read_indirect_key(file_source(path)) == Secret(KEY)


async def test_a_key_file_others_can_read_is_refused_with_the_chmod_fix(tmp_path: Path) -> None:
    path = key_file(tmp_path, KEY, 0o640)
    message = await problem_of(file_source(path))
    assert message.startswith("config.toml:3: providers.vast.api_key_file: ")
    assert f"chmod 600 {path}" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("", "is empty"),
    (" \n\t\n", "is empty"),
    (f"{KEY}\nsecond-line\n", "several lines"),
    ("x" * (64 * 1024 + 1), "too large"),
])
async def test_a_key_file_that_is_not_one_key_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    message = await problem_of(file_source(key_file(tmp_path, text)))
    assert "providers.vast.api_key_file" in message and expected in message


async def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"
    message = await problem_of(file_source(missing))
    assert f"cannot read {missing}" in message and "providers.vast.api_key_file" in message


async def test_the_key_file_path_expands_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    key_file(tmp_path, KEY)
    assert await read_indirect_key(file_source("~/vast.key")) == Secret(KEY)


# -- api_key_command -------------------------------------------------------------------------------


async def test_a_command_prints_the_key(tmp_path: Path) -> None:
    assert await read_indirect_key(command_source(python_command(f"print('  {KEY}  ')"))) == Secret(KEY)


async def test_a_failing_command_quotes_only_its_program_and_exit_code() -> None:
    command = python_command(f"import sys; print('{KEY}'); sys.exit(3)")
    message = await problem_of(command_source(command))
    program = Path(sys.executable).name
    assert message == (f"config.toml:3: providers.vast.api_key_command: {program} exited with 3 "
                       "(run it yourself to see why)")


@pytest.mark.parametrize(("code", "expected"), [
    ("pass", "printed nothing"),
    (f"print('{KEY}'); print('more')", "several lines"),
    ("import sys; sys.stdout.write('x' * 70000)", "more than 64 KiB"),
])
async def test_a_command_whose_output_is_not_one_key_is_refused(code: str, expected: str) -> None:
    message = await problem_of(command_source(python_command(code)))
    assert "providers.vast.api_key_command" in message and expected in message


async def test_a_command_that_hangs_is_stopped_at_the_timeout() -> None:
    message = await problem_of(command_source(python_command("import time; time.sleep(30)")), timeout_s=0.2)
    assert message.endswith("did not finish within 0.2 s")


async def test_a_program_that_does_not_exist_is_named(tmp_path: Path) -> None:
    message = await problem_of(command_source(f"{tmp_path}/no-such-program --flag {KEY}"))
    assert "cannot run no-such-program" in message and "--flag" not in message


async def test_the_command_gets_no_stdin() -> None:
    # A command that waited for input would hang until the timeout; with stdin closed it reads EOF at once.
    command = python_command(f"import sys; data = sys.stdin.read(); print('{KEY}' if data == '' else 'bad')")
    assert await read_indirect_key(command_source(command), timeout_s=5) == Secret(KEY)


# -- precedence and the service --------------------------------------------------------------------


async def test_environment_wins_over_file_and_file_over_vault(tmp_path: Path) -> None:
    path = key_file(tmp_path, KEY)
    sources = {"vast": file_source(path)}
    data = tmp_path / "data"
    async with KeyService(data, ManualClock(), environ={}) as keys:
        await keys.bind("vast", STORED_KEY)
        assert (await keys.resolve())["vast"] == (Secret(STORED_KEY), "vault")
    async with KeyService(data, ManualClock(), environ={}, indirections=sources) as keys:
        assert (await keys.resolve())["vast"] == (Secret(KEY), "file")
        binding = next(b for b in await keys.bindings() if b.provider == "vast")
        assert (binding.source, binding.masked) == ("file", Secret(KEY).masked)
    async with KeyService(data, ManualClock(), environ={"VAST_API_KEY": ENV_KEY}, indirections=sources) as keys:
        assert (await keys.resolve())["vast"] == (Secret(ENV_KEY), "environment")


async def test_an_environment_key_means_the_command_is_never_run(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    sources = {"vast": command_source(python_command(f"open({str(ran)!r}, 'w'); print('{KEY}')"))}
    async with KeyService(tmp_path, ManualClock(), environ={"VAST_API_KEY": ENV_KEY}, indirections=sources) as keys:
        assert (await keys.resolve())["vast"][1] == "environment"
        await keys.bindings()
    assert not ran.exists()


async def test_the_command_runs_once_per_service(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    sources = {"vast": command_source(python_command(f"open({str(runs)!r}, 'a').write('x'); print('{KEY}')"))}
    async with KeyService(tmp_path, ManualClock(), environ={}, indirections=sources) as keys:
        assert (await keys.resolve())["vast"] == (Secret(KEY), "command")
        assert next(b for b in await keys.bindings() if b.provider == "vast").source == "command"
    assert runs.read_text() == "x"


class AcceptingProvider:
    async def check_auth(self) -> None:
        return None


class RecordingSlots:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def set_provider(self, name: str, provider: object) -> None:
        self.calls.append(f"set {name}")

    def remove_provider(self, name: str) -> None:
        self.calls.append(f"remove {name}")


async def test_binding_or_removing_a_stored_key_leaves_a_key_from_a_file_in_place(tmp_path: Path) -> None:
    slots = RecordingSlots()
    sources = {"vast": file_source(key_file(tmp_path, KEY))}
    async with KeyService(tmp_path / "data", ManualClock(), lambda name, secret: AcceptingProvider(),  # type: ignore[arg-type,return-value]
                          environ={}, indirections=sources) as keys:
        keys.attach_to(slots)
        result = await keys.bind("vast", STORED_KEY)
        assert result.verdict == "ok" and not result.attached
        assert await keys.remove("vast")
    assert slots.calls == []


# -- the config ------------------------------------------------------------------------------------


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_file_and_command_together_are_a_config_error_at_the_command_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[providers.vast]\napi_key_file = "~/vast.key"\napi_key_command = "pass vast"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3: providers.vast.api_key_command: set api_key_file or api_key_command, not both"]


@pytest.mark.parametrize(("line", "expected"), [
    ('api_key_file = "keys/vast.key"', "api_key_file: must be an absolute path or start with ~/"),
    ("api_key_command = \"pass 'vast\"", "api_key_command: cannot be split into words"),
    ('api_key_command = "   "', "api_key_command: must name a program to run"),
])
def test_a_key_source_that_cannot_work_is_a_config_error(tmp_path: Path, line: str, expected: str) -> None:
    path = write_config(tmp_path, f"[providers.vast]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}:2: providers.vast.{expected}")


def test_config_validate_reports_both_sources_with_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[providers.runpod]\napi_key_command = "pass runpod"\napi_key_file = "/k"\n')
    run = run_main(("config", "validate", str(path)))
    assert run.code == 2, run.describe()
    assert f"{path}:2: providers.runpod.api_key_command: set api_key_file or api_key_command, not both" \
        in run.stderr


def test_indirections_name_where_they_were_set_and_skip_disabled_providers(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[providers.vast]\n\napi_key_file = "~/vast.key"\n'
                                  '[providers.runpod]\nenabled = false\napi_key_command = "pass runpod"\n')
    config = load_config(path, {"COMPUTEHUB_PROVIDERS_LAMBDA_API_KEY_COMMAND": "pass lambda"})
    assert indirections_of(config) == {
        "vast": KeyIndirection("vast", "file", "~/vast.key", f"{path}:3"),
        "lambda": KeyIndirection("lambda", "command", "pass lambda", "COMPUTEHUB_PROVIDERS_LAMBDA_API_KEY_COMMAND"),
    }


# -- end to end ------------------------------------------------------------------------------------


def cli_config(tmp_path: Path, command: str) -> Path:
    # A JSON string is a TOML basic string (the command holds both kinds of quote).
    return write_config(tmp_path, f"[providers.vast]\napi_key_command = {json.dumps(command)}\n")


def test_the_cli_polls_with_a_key_only_a_command_gives(tmp_path: Path) -> None:
    config = cli_config(tmp_path, python_command(f"print('{KEY}')"))
    with FakeVast(KEY) as vast:
        env = base_environment(vast.endpoint_env())
        run = run_cli(("instances", "--json", "--config", str(config), "--data-dir", str(tmp_path / "data")), env)
        assert run.code == 0, run.describe()
        assert run.json() and {i["provider"] for i in run.json()} == {"vast"}
        assert vast.server.requests and {vast.bearer(r) for r in vast.server.requests} == {KEY}
        keys = run_cli(("keys", "list", "--config", str(config), "--data-dir", str(tmp_path / "data")), env)
    assert keys.code == 0, keys.describe()
    vast_row = next(line for line in keys.stdout.splitlines() if line.startswith("vast"))
    assert vast_row.split()[:3] == ["vast", "command", Secret(KEY).masked] and KEY not in keys.stdout


def test_a_failing_key_command_ends_the_cli_with_one_line_and_exit_2(tmp_path: Path) -> None:
    config = cli_config(tmp_path, python_command(f"import sys; print('{KEY}'); sys.exit(1)"))
    with FakeVast(KEY) as vast:
        run = run_cli(("instances", "--config", str(config), "--data-dir", str(tmp_path / "data")),
                      base_environment(vast.endpoint_env()))
        assert vast.server.requests == []
    assert run.code == 2, run.describe()
    assert run.error_lines == [(f"computehub-tui: error: {config}:2: providers.vast.api_key_command: "
                                f"{Path(sys.executable).name} exited with 1 (run it yourself to see why)")]
    assert KEY not in run.stdout + run.stderr and "Traceback" not in run.stderr


def test_a_failing_key_command_ends_the_tui_with_the_same_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class HeadlessApp(app_module.ComputeHubApp):
        CSS_PATH = Path(app_module.__file__).with_name("app.tcss")

        def run(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            super().run(headless=True)

    monkeypatch.setattr(app_module, "ComputeHubApp", HeadlessApp)
    path = cli_config(tmp_path, python_command(f"import sys; print('{KEY}'); sys.exit(4)"))
    code = entry._run_tui(Options(load_config(path, {}), tmp_path / "data"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [(f"computehub-tui: error: {path}:2: providers.vast.api_key_command: "
                                         f"{Path(sys.executable).name} exited with 4 (run it yourself to see why)")]
    assert KEY not in err


def test_a_plain_config_has_no_indirections() -> None:
    assert indirections_of(Config()) == {}


async def test_settings_says_where_a_key_it_cannot_remove_comes_from(tmp_path: Path) -> None:
    command = python_command(f"print('{KEY}')")
    config = Config.model_validate({"providers": {"vast": {"url": f"http://127.0.0.1:{refused_port()}",
                                                           "api_key_command": command}}})
    app = app_module.ComputeHubApp(lambda: open_session(config, tmp_path, clock=ManualClock(), environ={}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and not app.hub.demo)
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        assert isinstance(settings, SettingsScreen)
        await wait_for(pilot, lambda: getattr(settings.bindings_by_provider.get("vast"), "source", "") == "command")
        await pilot.press("x")
        status = str(settings.query_one("#settings-status", Static).render())
        assert "No stored Vast.ai key to remove" in status and "api_key_command in the config file" in status
        assert not isinstance(app.screen, ConfirmScreen)
