"""The Textual App: owns the engine workers, turns engine events into messages, routes actions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Static

from computehub_tui.config import Config, ConfigError
from computehub_tui.config.editing import set_value
from computehub_tui.config.schema import PANES as CONFIG_PANES
from computehub_tui.config.schema import did_you_mean
from computehub_tui.domain.models import PROVIDER_TITLES, Instance, Offer
from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.events import (
    ActionFinished,
    AlertQueued,
    DeliveryChanged,
    ActionStarted,
    AutomationPaused,
    AutomationResumed,
    EngineEvent,
    InstancesUpdated,
    LeaseChanged,
    MetricsSampled,
    OffersUpdated,
    ProviderHealthChanged,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
    SpendUpdated,
    StoreFailed,
)
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.policy import ActionPlan, plan_action
from computehub_tui.engine.runtime import EngineRuntime
from computehub_tui.rules.model import Mode
from computehub_tui.ui.alerts_source import AlertsSource, alerts_source_for
from computehub_tui.ui.commands import HubCommands
from computehub_tui.ui.keymap import binding_label, clashes, rebindable_ids, split_overrides
from computehub_tui.ui.log_handler import UiLogHandler, route_root_logging
from computehub_tui.ui.messages import EngineEventPosted, HubReady, InstanceDataArrived
from computehub_tui.ui.plain import MESSAGE_LIMIT, plain_lines
from computehub_tui.ui.rules_source import RulesSource, automation_line, rules_source_for
from computehub_tui.ui.screens.confirm import LISTED_TARGETS, ConfirmScreen, plan_confirmation
from computehub_tui.ui.screens.settings import KeyInputScreen, SettingsScreen
from computehub_tui.ui.terminal import (
    copy_with_local_tool,
    inside_tmux,
    open_window,
    run_in_terminal,
    ssh_argv,
    tmux_window_argv,
)
from computehub_tui.ui.widgets.footer import HubFooter
from computehub_tui.ui.widgets.header import HubHeader
from computehub_tui.ui.widgets.instances_pane import InstancesPane
from computehub_tui.ui.widgets.monitor_pane import MonitorPane
from computehub_tui.ui.widgets.offers_pane import FilterInput, OffersPane
from computehub_tui.ui.widgets.rules_pane import RulesPane
from computehub_tui.ui.widgets.virtual_table import VirtualTable

if TYPE_CHECKING:
    from computehub_tui.ui.screens.instance_detail import InstanceDetailScreen

log = logging.getLogger(__name__)


class Session(Protocol):
    """What the App needs from the wiring layer's session (it may not import wiring itself)."""

    hub: Hub

    async def aclose(self) -> None: ...

PANES: tuple[tuple[str, str, str], ...] = (("1", "offers", "Offers"), ("2", "instances", "Instances"),
                                           ("3", "monitor", "Monitor"), ("4", "rules", "Rules"))
PANE_TITLES = {pane: title for _, pane, title in PANES}
APP_BINDINGS: list[BindingType] = [
    # The tabs line shows every pane key; the footer, full at 160 columns, keeps the first three it always had.
    *[Binding(key, f"show_pane('{pane}')", title, id=pane, show=pane != "rules") for key, pane, title in PANES],
    Binding("question_mark", "help", "Help", key_display="?", id="help"),
    Binding("comma", "settings", "Settings", key_display=",", id="settings"),
    Binding("ctrl+r", "refresh", "Refresh", id="refresh"),
    Binding("dollar_sign", "costs", "Spend by day", key_display="$", show=False),
    Binding("exclamation_mark", "toggle_automation", "Pause/resume rules", key_display="!", show=False),
    Binding("q", "quit", "Quit", id="quit"),
]
REBINDABLE: dict[str, Binding] = {binding.id: binding for binding in [*APP_BINDINGS, *OffersPane.BINDINGS]
                                  if isinstance(binding, Binding) and binding.id is not None}
"""The bindings ``[ui] keys`` may rebind, by id (the config's KEY_ACTIONS; a test keeps the two equal)."""
REBINDABLE_IDS = rebindable_ids(REBINDABLE.values())
SUGGESTED_THEMES = ("textual-dark", "textual-light", "nord", "gruvbox", "dracula", "tokyo-night")
COALESCE_S = 0.25
"""A pane repaints for engine events at most once in this window (after the first, at its end)."""
AGE_TICK_S = 10.0
"""How often quote ages repaint on the Offers pane; everything else repaints on engine events."""
CRASH_REPORT_NAME = "crash.log"
CLOSE_TIMEOUT_S = 15.0
"""Quitting never waits longer than this for the engine to stop polling and close the store."""


class ComputeHubApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "computehub"
    COMMANDS = App.COMMANDS | {HubCommands}
    BINDINGS = APP_BINDINGS

    def __init__(self, session_factory: Callable[[], Awaitable[Session]], *, config: Config | None = None) -> None:
        super().__init__()
        self.session_factory = session_factory
        self.config = config if config is not None else Config()
        """The effective settings; ``[ui]`` is applied at start and written back to ``config.path`` (a
        config with no path, as tests build it, is never written)."""
        self.session: Session | None = None
        self.hub: Hub | None = None
        self.startup_error = ""
        self.startup_failure: Exception | None = None
        """What ended the start (the session could not open), for the caller's exit code."""
        self.current_pane: str = self.config.ui.default_pane
        self.key_overrides: dict[str, str] = {}
        """``[ui] keys`` as applied: binding id → key(s)."""
        self._saved_theme = self.theme
        self._config_writes = asyncio.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._session_closed = False
        self._runtime: EngineRuntime | None = None
        self._session_opening: concurrent.futures.Future[Session] | None = None
        self._session_closing: concurrent.futures.Future[None] | None = None
        self.terminal_runner: Callable[[App[Any], Sequence[str]], str | None] = run_in_terminal
        """Hands the terminal to a command (ssh); replaceable in tests, where there is no terminal."""
        self.window_opener: Callable[[Sequence[str]], str | None] = open_window
        """Starts a command that opens its own window (tmux new-window); replaceable in tests."""
        self.environ: Mapping[str, str] = os.environ
        self.local_clipboard: Callable[[str], str] = partial(copy_with_local_tool, environ=os.environ)
        """Copies with this machine's clipboard program; returns the program's name or ""."""
        self.rules_source_for: Callable[[Hub], RulesSource | None] = rules_source_for
        """Where the Rules pane finds automation for a session's Hub; replaceable in tests."""
        self.rules_source: RulesSource | None = None
        self.alerts_source_for: Callable[[Hub], AlertsSource] = alerts_source_for
        """Where Settings → Notifications finds alerting for a session's Hub; replaceable in tests."""
        self._refresh_timers: dict[str, Timer | None] = {}
        """Panes with a repaint coming: at the end of the window (a Timer) or once the queue is read (None)."""
        self._refreshed_at: dict[str, float] = {}
        self._event_handlers = self._engine_event_handlers()
        self._stale_panes: set[str] = set()
        self.log_handler = UiLogHandler(self._show_logged)
        """Warnings logged while the app runs; its ``recent`` list backs the palette's warnings view."""
        self._restore_logging: Callable[[], None] | None = None
        self._crash_output = io.StringIO()
        # Textual prints a crash's traceback (with locals) through this console when the app ends;
        # keep it off the terminal so the CLI can save it redacted and print one line instead.
        self.error_console = Console(file=self._crash_output, markup=False, highlight=False, width=120,
                                     color_system=None)

    def compose(self) -> ComposeResult:
        yield HubHeader(id="header")
        yield Static(self._tabs_text(), id="tabs")
        with ContentSwitcher(initial=self.current_pane, id="panes"):
            yield OffersPane(id="offers")
            yield InstancesPane(id="instances")
            yield MonitorPane(id="monitor")
            yield RulesPane(id="rules")
        yield HubFooter()

    def on_mount(self) -> None:
        self._restore_logging = route_root_logging(self.log_handler)
        self._apply_theme(self.config.ui.theme)
        self._apply_keys(self.config.ui.keys)
        self._focus_pane(self.current_pane)
        self._open_session()
        self.set_interval(AGE_TICK_S, self._tick)

    # -- session and engine -----------------------------------------------------------------
    # The engine runs on its own thread and loop (EngineRuntime): sessions are opened there, so their
    # store and HTTP clients belong to it, and polling goes on while this loop is blocked (ssh).

    def _engine(self) -> EngineRuntime:
        if self._runtime is None:
            self._runtime = EngineRuntime()
            self._runtime.start()
        return self._runtime

    async def _new_session(self) -> Session:
        """Runs on the engine loop: open a session and load what the store remembers."""
        session = await self.session_factory()
        try:
            await session.hub.load_snapshot()
        except BaseException:
            # An open store holds a (non-daemon) aiosqlite thread: the process would never exit.
            await self._close_quietly(session)
            raise
        return session

    async def _opened_session(self) -> Session:
        """Open a session on the engine loop. The opening carries on if this waiter is cancelled (the app
        quitting meanwhile): ``on_unmount`` then closes what it opened, or the store would stay open."""
        self._session_opening = self._engine().submit(self._new_session())
        return await asyncio.shield(asyncio.wrap_future(self._session_opening))

    @work(group="session", exit_on_error=False)
    async def _open_session(self) -> None:
        try:
            session = await self._opened_session()
        except Exception as error:  # noqa: BLE001 - shown to the user, the app then exits cleanly
            self.startup_error = clean_text(str(error) or type(error).__name__, MESSAGE_LIMIT)
            self.startup_failure = error
            self.exit(return_code=1)
            return
        self._adopt_session(session)

    def _adopt_session(self, session: Session) -> None:
        self.session, self.hub = session, session.hub
        self._session_closed = False
        self._unsubscribe = session.hub.bus.subscribe(self._forward_event)
        self.post_message(HubReady())
        # Queued behind HubReady: the panes show what the store remembered before the first poll answers.
        self.call_later(self._run_engine)

    @work(group="session", exclusive=True, exit_on_error=False)
    async def _switch_session(self, expect_real: bool) -> None:
        """Close the session and open a new one through the factory: the demo when no key is
        bound any more, the real accounts once one is."""
        await self._close_session()
        self.session = self.hub = None
        self.notify("Switching session…", timeout=3)
        try:
            session = await self._opened_session()
        except Exception as error:  # noqa: BLE001 - shown to the user; the app keeps running
            self.notify(f"could not open the new session: {error}", title="Session", severity="error", timeout=15)
            return
        self._adopt_session(session)
        if session.hub.demo and expect_real:
            self.notify("This run was started with the demo forced (--demo); restart without it to use your "
                        "accounts.", title="Still the DEMO", severity="warning", timeout=10)

    def on_settings_screen_keys_changed(self, message: SettingsScreen.KeysChanged) -> None:
        """The demo runs exactly while no key is bound; the first bound key or the last removed one
        switches session (adding or removing any other key only changes the Hub's providers)."""
        if self.hub is not None and message.any_bound == self.hub.demo:
            self._switch_session(expect_real=message.any_bound)

    @work(group="engine", exit_on_error=False)
    async def _run_engine(self) -> None:
        assert self.hub is not None
        await self.hub.start()  # returns at once: the supervisor runs the polls on the engine loop

    def _forward_event(self, event: EngineEvent) -> None:
        self.post_message(EngineEventPosted(event))

    def on_hub_ready(self, _: HubReady) -> None:
        if self.hub is None:  # the session closed again before this arrived
            return
        header = self.query_one(HubHeader)
        header.update_state(demo=self.hub.demo, health=self.hub.health(),
                            burn_rate=self.hub.burn_rate(), spend_today=self.hub.spend_today())
        for pane in (self.offers_pane, self.instances_pane, self.monitor_pane):
            pane.attach(self.hub)
        self.rules_source = self.rules_source_for(self.hub)
        self.rules_pane.attach(self.rules_source, self.hub.clock)
        self._show_automation()
        for screen in self.screen_stack:
            if isinstance(screen, SettingsScreen):
                screen.attach(self.hub)
        for problem in self.hub.template_errors:
            self.notify(problem, title="Template skipped", severity="warning", timeout=10)
        if self.hub.demo:
            self.notify("No API keys bound — this is the simulated DEMO marketplace. "
                        "Bind a key in Settings (,) or with: computehub-tui keys set vast", title="DEMO mode",
                        timeout=8)

    def on_engine_event_posted(self, message: EngineEventPosted) -> None:
        if self.hub is None or self.query_one_optional(HubHeader) is None:  # the app is closing
            return
        handler = self._event_handlers.get(type(message.event))
        if handler is not None:
            handler(message.event)

    def _engine_event_handlers(self) -> dict[type, Callable[[Any], None]]:
        """Which method shows each kind of engine event: the one place engine events reach the panes."""
        handlers: dict[type, Callable[[Any], None]] = {
            OffersUpdated: self._offers_updated,
            InstancesUpdated: self._instances_updated,
            MetricsSampled: self._metrics_sampled,
            ProviderHealthChanged: self._health_changed,
            StoreFailed: self._store_failed,
            SpendUpdated: self._spend_updated,
            ActionStarted: self._action_started,
            ActionFinished: self._action_finished,
            RuleFired: self._rule_fired,
            RuleNotify: self._rule_notify,
            RuleWarningPending: self._rule_warning,
            AutomationPaused: self._automation_paused,
            AutomationResumed: self._automation_resumed,
            LeaseChanged: self._lease_changed,
        }
        handlers[AlertQueued] = self._alerts_changed
        handlers[DeliveryChanged] = self._alerts_changed
        return handlers

    def _offers_updated(self, _: OffersUpdated) -> None:
        self._show_health()  # a provider may also have gone
        self._refresh_soon("offers")

    def _instances_updated(self, event: InstancesUpdated) -> None:
        self._show_health()
        self._refresh_instance_panes()
        self._tell_instance_details(event)

    def _metrics_sampled(self, event: MetricsSampled) -> None:
        self._refresh_instance_panes()
        self._tell_instance_details(event)

    def _tell_instance_details(self, event: InstancesUpdated | MetricsSampled) -> None:
        for screen in self.screen_stack[1:]:
            screen.post_message(InstanceDataArrived(event))

    def _refresh_instance_panes(self) -> None:
        self._refresh_soon("instances")
        self._refresh_soon("monitor")
        self._refresh_soon("rules")  # its preview is of the fleet now

    def _health_changed(self, event: ProviderHealthChanged) -> None:
        self._show_health()
        for _, pane, _ in PANES:
            self._refresh_soon(pane)  # an empty pane says why it is empty
        if event.health.state == "auth-error":
            self.notify(event.health.last_error, title="API key rejected", severity="error", timeout=10)

    def _store_failed(self, event: StoreFailed) -> None:
        self.notify(f"{event.message}. The app keeps running; history and costs are not being saved.",
                    title="Database write failed", severity="warning", timeout=10)

    def _spend_updated(self, event: SpendUpdated) -> None:
        self.query_one(HubHeader).update_state(burn_rate=event.burn_rate_hour, spend_today=event.spend_today)

    def _action_started(self, event: ActionStarted) -> None:
        if event.action != "launch":
            self.instances_pane.set_pending([event.target], event.action)

    def _action_finished(self, event: ActionFinished) -> None:
        self.instances_pane.set_pending([event.target], None)
        self.notify(event.message, severity="information" if event.ok else "error", timeout=4 if event.ok else 10)

    # Automation also speaks here through toasts, beside the alert channels (plain text: instance keys
    # and rendered messages carry provider data).
    def _rule_fired(self, event: RuleFired) -> None:
        self._refresh_soon("rules")
        if not event.dry_run:  # a dry run also sends a RuleNotify, shown below
            self.notify(f"{event.rule}: {event.result}", title="Rule fired", markup=False,
                        severity="information" if event.ok else "error", timeout=6 if event.ok else 10)

    def _rule_notify(self, event: RuleNotify) -> None:
        self._refresh_soon("rules")
        self.notify(event.message, title=f"Rule {event.rule}", markup=False,
                    severity="warning" if event.channel == "alert" else "information", timeout=8)

    def _rule_warning(self, event: RuleWarningPending) -> None:
        self._refresh_soon("rules")
        self.notify(f"{event.action} {event.target} is due unless the condition clears", markup=False,
                    title=f"Rule {event.rule} warns", severity="warning", timeout=10)

    def _automation_paused(self, event: AutomationPaused) -> None:
        self._show_automation()
        self._refresh_soon("rules")
        self.notify(event.reason, title="Automation paused", markup=False, severity="warning", timeout=10)

    def _automation_resumed(self, _: AutomationResumed) -> None:
        self._show_automation()
        self._refresh_soon("rules")
        self.notify("Rules act again.", title="Automation resumed", timeout=4)

    def _lease_changed(self, event: LeaseChanged) -> None:
        self._show_automation()
        self._refresh_soon("rules")
        if event.holder is not None and not event.ours:
            self.notify(f"{event.holder} runs automation; this app only shows it", markup=False,
                        title="Automation", timeout=6)

    def _alerts_changed(self, _: object) -> None:
        from computehub_tui.ui.screens.notifications import AlertsChanged

        for screen in self.screen_stack[1:]:
            screen.post_message(AlertsChanged())

    def _show_health(self) -> None:
        assert self.hub is not None
        self.query_one(HubHeader).update_state(health=self.hub.health())

    def _refresh_soon(self, pane: str) -> None:
        """Repaint a pane at once when it has not repainted for a while (so the first offers show
        the moment they arrive), otherwise once at the end of the window: providers answer within
        moments of each other, and a burst costs at most two repaints. Hidden Offers and Monitor
        panes skip the work and catch up when shown; the Instances pane is cheap and always current
        (its counts feed bulk actions)."""
        if pane != "instances" and self.current_pane != pane:
            self._stale_panes.add(pane)
            return
        if pane in self._refresh_timers:
            return
        since = time.monotonic() - self._refreshed_at.get(pane, float("-inf"))
        if since >= COALESCE_S:
            # Behind the messages already queued: the events one poll publishes together (instances,
            # then their metrics) cost one repaint, not one now and another at the end of the window.
            self._refresh_timers[pane] = None
            self.call_later(self._refresh_pane, pane)
        else:
            self._refresh_timers[pane] = self.set_timer(COALESCE_S - since, partial(self._refresh_pane, pane))

    def _refresh_pane(self, pane: str) -> None:
        self._refresh_timers.pop(pane, None)
        self._stale_panes.discard(pane)
        self._refreshed_at[pane] = time.monotonic()
        kinds: dict[str, type[OffersPane | InstancesPane | MonitorPane | RulesPane]] = {
            "offers": OffersPane, "instances": InstancesPane, "monitor": MonitorPane, "rules": RulesPane}
        for widget in self.query(kinds[pane]):  # none once the app is closing and a timer still fires
            widget.reload()

    def _tick(self) -> None:
        if self.current_pane == "offers":
            for widget in self.query(OffersPane):
                widget.tick()
        elif self.current_pane == "rules":
            self._refresh_soon("rules")  # ages, and a daemon that took or left the lease
        if self.hub is not None:
            self._show_automation()

    @staticmethod
    async def _close_quietly(session: Session) -> None:
        try:
            await session.aclose()
        except Exception:
            log.warning("closing the half-open session failed", exc_info=True)

    async def _close_session(self) -> None:
        if not self._session_closed:
            self._session_closed = True
            if self._unsubscribe:
                self._unsubscribe()
            if self.session is not None and self._runtime is not None:
                self._session_closing = self._runtime.submit(self._stop_and_close(self.session))
        await self._session_close_done()

    async def _session_close_done(self) -> None:
        """Wait for the close in progress. It carries on if this waiter is cancelled (a quit during a
        session switch): a store left open would keep the process from exiting."""
        closing = self._session_closing
        if closing is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(closing)), CLOSE_TIMEOUT_S)
        except Exception:  # closing is best effort: the app is going away
            log.warning("the session did not close cleanly", exc_info=True)

    async def _close_unadopted_session(self) -> None:
        """A session that finished opening after the app began to quit was never shown: close it."""
        opening = self._session_opening
        if opening is None or self._runtime is None:
            return
        try:
            session = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(opening)), CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - it did not open (and closed what it had), or will not in time
            return
        if session is not self.session:
            self._session_closing = self._runtime.submit(self._stop_and_close(session))
            await self._session_close_done()

    @staticmethod
    async def _stop_and_close(session: Session) -> None:
        """Runs on the engine loop: polls must have stopped before the store closes under them."""
        try:
            await session.hub.stop()
        finally:
            await session.aclose()

    async def action_quit(self) -> None:
        await self._close_session()
        self.exit()

    async def on_unmount(self) -> None:
        await self._close_session()
        await self._close_unadopted_session()
        if self._runtime is not None:
            self._runtime.stop()
        if self._restore_logging is not None:
            self._restore_logging()

    # -- messages to the user ---------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text: messages quote provider text and provider errors, so
        ``markup`` is ignored and each line is cleaned. Thread-safe, like Textual's."""
        super().notify(plain_lines(message), title=clean_text(title), severity=severity, timeout=timeout,
                       markup=False)

    def _show_logged(self, message: str, title: str, severity: str) -> None:
        self.notify(message, title=title, severity="error" if severity == "error" else "warning", timeout=8)

    def action_recent_warnings(self) -> None:
        from computehub_tui.ui.screens.logs import WarningsScreen  # deferred, like every screen pushed later

        self.push_screen(WarningsScreen(self.log_handler.recent))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # The palette's own Quit also closes the session; one Quit, not two.
        return (command for command in super().get_system_commands(screen) if command.title != "Quit")

    def save_crash_report(self, directory: Path) -> tuple[str, Path | None]:
        """After a crash: the error in one line, and where its redacted traceback was saved (None if
        it could not be written)."""
        report = redact(self._crash_output.getvalue())
        lines = [line.strip() for line in report.splitlines() if line.strip()]
        summary = clean_text(lines[-1] if lines else "unknown error", 300)
        path = directory / CRASH_REPORT_NAME
        try:
            directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(report)
        except OSError:
            return summary, None
        return summary, path

    # -- [ui] settings: applied at start, written back when changed here ---------------------

    def _apply_theme(self, theme: str) -> None:
        """Themes are known only at runtime (the config cannot check them): an unknown one keeps the default."""
        if theme in self.available_themes:
            self._saved_theme = theme
            self.theme = theme
            return
        names = sorted(self.available_themes)
        examples = ", ".join(name for name in SUGGESTED_THEMES if name in self.available_themes)
        self.notify(f"ui.theme: unknown theme {theme!r}{did_you_mean(theme, names)}{self._origin_note('ui.theme')}; "
                    f"keeping {self.theme}. Themes include {examples} (ctrl+p → Change theme lists all "
                    f"{len(names)}).", title="Config", severity="warning", timeout=15)

    def _apply_keys(self, keys: Mapping[str, str]) -> None:
        usable, unknown = split_overrides(keys, REBINDABLE_IDS)
        if unknown:
            self.notify(f"ui.keys: no key has the id {', '.join(map(repr, unknown))}"
                        f"{self._origin_note('ui.keys')}; the ids are: {', '.join(REBINDABLE_IDS)}.",
                        title="Config", severity="warning", timeout=15)
        for key, rebound, other in clashes(REBINDABLE, usable):
            self.notify(f"ui.keys: {rebound} = {key!r} takes the key of {other}, which no longer answers to it; "
                        f"give {other} another key in [ui] keys.", title="Config", severity="warning", timeout=15)
        if usable:
            self.key_overrides = usable
            self.set_keymap(usable)
            self.query_one("#tabs", Static).update(self._tabs_text())

    def _origin_note(self, key: str) -> str:
        origin = self.config.origin(key)
        return f" (from {origin.where})" if origin.where else ""

    def watch_theme(self, theme: str) -> None:
        if theme != self._saved_theme:
            self._saved_theme = theme
            self._save_setting("ui.theme", theme, f"Theme {theme}")

    def action_make_default_pane(self) -> None:
        if self.current_pane not in CONFIG_PANES:
            self.notify(f"The config cannot start on {PANE_TITLES[self.current_pane]} yet; the start pane may be "
                        f"{', '.join(CONFIG_PANES)}.", title="Config", severity="warning")
            return
        if self.config.path is None:
            self.notify("This run has no config file to save the default pane in.", title="Config",
                        severity="warning")
            return
        self._save_setting("ui.default_pane", self.current_pane,
                           f"{PANE_TITLES[self.current_pane]} is now the pane shown at start")

    def _save_setting(self, key: str, value: str, saved: str) -> None:
        """Write ``key = value`` into the config file off the event loop; a config without a path is
        never written (so tests and embedders never touch the user's ~/.config)."""
        if self.config.path is not None:
            self.run_worker(self._write_setting(self.config.path, key, value, saved), group="config",
                            exit_on_error=False)

    async def _write_setting(self, path: Path, key: str, value: str, saved: str) -> None:
        async with self._config_writes:  # in order: the last change is the one the file keeps
            try:
                await asyncio.to_thread(set_value, path, key, value)
            except ConfigError as error:
                self._not_saved(key, str(error))
                return
            except OSError as error:
                self._not_saved(key, f"cannot write {error.filename or path}: {error.strerror or error}")
                return
            except ValueError as error:  # not UTF-8, or TOML that tomlkit cannot read
                self._not_saved(key, f"cannot read {path}: {error}")
                return
        origin = self.config.origin(key)
        if origin.kind in ("environment", "flag"):
            self.notify(f"{saved}: saved as {key} in {path}, but {origin.where} overrides the file, so the "
                        f"next start still uses that while it is set.", title="Config", severity="warning",
                        timeout=10)
        else:
            self.notify(f"{saved} (saved in {path}).", title="Config", timeout=4)

    def _not_saved(self, key: str, reason: str) -> None:
        self.notify(f"{key} was not saved: {reason}. This run keeps the change.", title="Config not saved",
                    severity="warning", timeout=12)

    # -- panes ------------------------------------------------------------------------------

    @property
    def offers_pane(self) -> OffersPane:
        return self.query_one(OffersPane)

    @property
    def instances_pane(self) -> InstancesPane:
        return self.query_one(InstancesPane)

    @property
    def monitor_pane(self) -> MonitorPane:
        return self.query_one(MonitorPane)

    @property
    def rules_pane(self) -> RulesPane:
        return self.query_one(RulesPane)

    def action_show_pane(self, pane: str) -> None:
        self.current_pane = pane
        self.query_one(ContentSwitcher).current = pane
        self.query_one("#tabs", Static).update(self._tabs_text())
        self._focus_pane(pane)
        if pane == "offers":
            if "offers" in self._stale_panes:
                self._refresh_pane("offers")
            else:
                self.offers_pane.tick()
        elif pane in ("monitor", "rules"):
            self._refresh_pane(pane)

    def _focus_pane(self, pane: str) -> None:
        if pane == "offers":
            self.query_one("#offer-table").focus()
        elif pane == "instances":
            self.query_one("#instance-table").focus()
        elif pane == "rules":
            self.query_one("#rules-table").focus()
        else:
            self.monitor_pane.focus()

    def _tabs_text(self) -> Text:
        text = Text(" ")
        for _, pane, title in PANES:
            style = "bold reverse" if pane == self.current_pane else "dim"
            text.append(f" {self.key_shown(pane)} {title} ", style=style)
            text.append(" ")
        return text

    def key_shown(self, binding_id: str) -> str:
        """The key(s) of a rebindable binding as help, tabs and the palette show them."""
        return binding_label(REBINDABLE[binding_id], self.key_overrides)

    def action_refresh(self) -> None:
        if self.hub is None:
            return
        self.notify("Refreshing every provider…", timeout=2)
        self.run_worker(self.hub.refresh_all(), group="refresh", exclusive=True, exit_on_error=False)

    def action_settings(self) -> None:
        if self.hub is not None:
            self.push_screen(SettingsScreen(self.hub))

    def action_notifications(self) -> None:
        from computehub_tui.ui.screens.notifications import NotificationsScreen

        if self.hub is not None:
            self.push_screen(NotificationsScreen(self.alerts_source_for(self.hub)))

    def action_delivery_log(self) -> None:
        from computehub_tui.ui.screens.notifications import DeliveryLogScreen

        if self.hub is not None:
            self.push_screen(DeliveryLogScreen(self.alerts_source_for(self.hub)))

    def on_settings_screen_notifications_requested(self, _: SettingsScreen.NotificationsRequested) -> None:
        self.action_notifications()

    def action_costs(self) -> None:
        from computehub_tui.ui.screens.costs import CostScreen

        if self.hub is not None:
            self.push_screen(CostScreen(self.hub))

    def action_help(self) -> None:
        from computehub_tui.ui.screens.costs import CostScreen
        from computehub_tui.ui.screens.help import HelpScreen, KeySection, describe_bindings
        from computehub_tui.ui.screens.instance_detail import InstanceDetailScreen
        from computehub_tui.ui.screens.launch import LaunchScreen
        from computehub_tui.ui.screens.logs import LogsScreen
        from computehub_tui.ui.screens.market import MarketScreen
        from computehub_tui.ui.screens.notifications import ChannelKindScreen, DeliveryLogScreen, NotificationsScreen
        from computehub_tui.ui.screens.notifications_form import ChannelFormScreen
        from computehub_tui.ui.screens.offer_detail import OfferDetailScreen
        from computehub_tui.ui.screens.rules_audit import AuditScreen
        from computehub_tui.ui.screens.rules_editor import RuleEditorScreen
        from computehub_tui.ui.screens.rules_pending import PendingScreen

        key = self.key_shown
        sections: list[KeySection] = [
            ("Everywhere", describe_bindings(self.BINDINGS, self.key_overrides)
             + [("ctrl+p", "Command palette (every action)")]),
            (f"Offers ({key('offers')})", describe_bindings(OffersPane.BINDINGS, self.key_overrides)),
            (f"Filter box ({key('filter')})", describe_bindings(FilterInput.BINDINGS)),
            (f"Instances ({key('instances')})", describe_bindings(InstancesPane.BINDINGS)),
            (f"Monitor ({key('monitor')})", describe_bindings(MonitorPane.BINDINGS)),
            (f"Rules ({key('rules')})", describe_bindings(RulesPane.BINDINGS)),
            ("Rules editor (e or Enter in Rules)", describe_bindings(RuleEditorScreen.BINDINGS)),
            ("Rules audit log (a in Rules)", describe_bindings(AuditScreen.BINDINGS)),
            ("Pending rule warnings (w in Rules)", describe_bindings(PendingScreen.BINDINGS)),
            ("Tables", describe_bindings(VirtualTable.BINDINGS)),
            (f"Offer details ({key('details')})", describe_bindings(OfferDetailScreen.BINDINGS)),
            (f"Market summary ({key('market')})", describe_bindings(MarketScreen.BINDINGS)),
            ("Launch dialog (Enter on an offer)", describe_bindings(LaunchScreen.BINDINGS)),
            ("Instance details (i in Instances, enter or i in Monitor)",
             describe_bindings(InstanceDetailScreen.BINDINGS)),
            ("Logs (l)", describe_bindings(LogsScreen.BINDINGS)),
            ("Spend by day ($)", describe_bindings(CostScreen.BINDINGS)),
            ("Confirmations", describe_bindings(ConfirmScreen.BINDINGS)),
            (f"Settings ({key('settings')})", describe_bindings(SettingsScreen.BINDINGS)),
            ("API key prompt (b in Settings)", describe_bindings(KeyInputScreen.BINDINGS)),
            ("Notifications (n in Settings)", describe_bindings(NotificationsScreen.BINDINGS)),
            ("Add a channel (a in Notifications)", describe_bindings(ChannelKindScreen.BINDINGS)),
            ("Channel form (a or e in Notifications)", describe_bindings(ChannelFormScreen.BINDINGS)),
            ("Delivery log (l in Notifications)", describe_bindings(DeliveryLogScreen.BINDINGS)),
        ]
        self.push_screen(HelpScreen(sections))

    # -- automation -------------------------------------------------------------------------

    def _show_automation(self) -> None:
        """The header says who runs automation, or that it is paused; nothing in a build without it."""
        source = self.rules_source
        self.query_one(HubHeader).update_state(automation="" if source is None else automation_line(source),
                                               automation_paused=source is not None and source.paused)

    def action_toggle_automation(self) -> None:
        """Pausing is at once, with no question: it only stops rules from acting. Resuming asks, because
        every enabled live rule may then stop, restart or destroy instances."""
        source = self.rules_source
        if source is None:
            self.notify("Automation is not available in this build.", title="Rules", severity="warning")
            return
        if not source.paused:
            self.run_worker(self._set_paused(source, True), group="automation", exit_on_error=False)
            return
        live = [row.name for row in source.rows() if row.enabled and row.mode is Mode.LIVE]

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._set_paused(source, False), group="automation", exit_on_error=False)

        names = ", ".join(clean_text(name, 60) for name in live[:LISTED_TARGETS]) or "none"
        more = " …" if len(live) > LISTED_TARGETS else ""
        rules = f"{len(live)} enabled live rule{'' if len(live) == 1 else 's'}"
        body = f"{rules} may act again at the next poll: {names}{more}."
        self.push_screen(ConfirmScreen("Resume automation?", body, yes_label="Resume"), answered)

    async def _set_paused(self, source: RulesSource, paused: bool) -> None:
        try:
            await (source.pause() if paused else source.resume())
        except Exception as error:  # noqa: BLE001 - shown to the user; the app keeps running
            self.notify(f"could not {'pause' if paused else 'resume'} automation: {error}", title="Rules",
                        severity="error", timeout=10)
            return
        self.notify("Automation paused: no rule acts until you resume (!)." if paused else "Automation resumed.",
                    title="Rules", severity="warning" if paused else "information", timeout=6)
        self._show_automation()
        self._refresh_pane("rules")

    # -- actions ----------------------------------------------------------------------------

    @on(OffersPane.LaunchRequested)
    def _launch_requested(self, message: OffersPane.LaunchRequested) -> None:
        self.open_launch_dialog(message.offer)

    @on(InstancesPane.ActionRequested)
    def _action_requested(self, message: InstancesPane.ActionRequested) -> None:
        self.request_instance_action(message.action, message.instances)

    @on(InstancesPane.SshRequested)
    def _ssh_requested(self, message: InstancesPane.SshRequested) -> None:
        self.open_ssh(message.instance)

    @on(InstancesPane.LogsRequested)
    def _logs_requested(self, message: InstancesPane.LogsRequested) -> None:
        self.open_logs(message.instance)

    @on(InstancesPane.CopyRequested)
    def _copy_requested(self, message: InstancesPane.CopyRequested) -> None:
        self.copy_text(message.text, message.what)

    @on(InstancesPane.DetailsRequested)
    @on(MonitorPane.DetailsRequested)
    def _details_requested(self, message: InstancesPane.DetailsRequested | MonitorPane.DetailsRequested) -> None:
        self.open_instance_detail(message.instance)

    def open_instance_detail(self, instance: Instance) -> None:
        from computehub_tui.ui.screens.instance_detail import InstanceDetailScreen

        if self.hub is not None:
            self.push_screen(InstanceDetailScreen(self.hub, instance))

    def on_instance_detail_screen_copy_requested(self, message: InstanceDetailScreen.CopyRequested) -> None:
        self.copy_text(message.text, message.what)

    def on_instance_detail_screen_logs_requested(self, message: InstanceDetailScreen.LogsRequested) -> None:
        self.open_logs(message.instance)

    def open_launch_dialog(self, offer: Offer) -> None:
        from computehub_tui.ui.screens.launch import LaunchScreen

        if self.hub is None:
            return

        def launched(key: str | None) -> None:
            if key:
                self.notify(f"Launched {key}; it appears in Instances (2) as it boots", title="Launch accepted")

        self.push_screen(LaunchScreen(self.hub, offer), launched)

    def request_instance_action(self, action: str, instances: Sequence[Instance]) -> None:
        """The one route for start / stop / restart / destroy, from a key, the palette or marks:
        the shared policy picks targets and skips; whatever it flags is confirmed first."""
        if self.hub is None:
            return
        plan = plan_action(action, instances, self.hub.capabilities)
        if not plan.targets:
            self.notify(_skipped_lines(plan), title=f"Nothing to {action}", severity="warning", timeout=8)
            return
        if not plan.needs_confirmation:
            self._dispatch(plan)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._dispatch(plan)

        self.push_screen(plan_confirmation(plan), confirmed)

    def _dispatch(self, plan: ActionPlan) -> None:
        assert self.hub is not None
        # The marks did their job; kept, the next key would act on the old set again.
        self.instances_pane.action_clear_marks()
        if plan.skipped:
            self.notify(_skipped_lines(plan), title=f"Skipped {len(plan.skipped)} (nothing sent)",
                        severity="warning", timeout=8)
        self.instances_pane.set_pending(plan.keys, plan.action)
        self.run_worker(self.hub.act_many(plan.action, plan.keys), group="actions", exit_on_error=False)

    def open_ssh(self, instance: Instance) -> None:
        """SSH in a new tmux window when the app runs inside tmux (the cockpit stays on screen), else in
        this terminal while the UI is suspended. The engine polls on its own thread all the while."""
        if instance.ssh is None:
            return
        if self.hub is not None and self.hub.demo:
            self.notify(f"This is a simulated DEMO machine, so nothing answers; on a real one this runs: "
                        f"{instance.ssh.command}", title="SSH", timeout=8)
            return
        argv = ssh_argv(instance.ssh.argv)
        if inside_tmux(self.environ):
            error = self.window_opener(tmux_window_argv(argv, instance.label or instance.key))
        else:
            error = self.terminal_runner(self, argv)
        if error:
            self.notify(error, title="SSH", severity="error", timeout=8)

    def open_logs(self, instance: Instance) -> None:
        if self.hub is None:
            return
        if not self.hub.capabilities(instance.provider).logs:
            self.notify(f"{PROVIDER_TITLES[instance.provider]} offers no log API; use SSH (c copies the command)",
                        severity="warning")
            return
        from computehub_tui.ui.screens.logs import LogsScreen

        self.push_screen(LogsScreen(self.hub, instance))

    def copy_text(self, text: str, what: str) -> None:
        """Send ``text`` to the terminal's clipboard and show it, since no terminal confirms a copy;
        on a local session also try this machine's clipboard program."""
        from computehub_tui.ui.screens.copy import CopyScreen

        self.copy_to_clipboard(text)
        self.push_screen(CopyScreen(text, what, self.local_clipboard))


def _skipped_lines(plan: ActionPlan) -> str:
    lines = [f"{skipped.instance.key}: {skipped.reason}" for skipped in plan.skipped[:LISTED_TARGETS]]
    if len(plan.skipped) > LISTED_TARGETS:
        lines.append(f"… and {len(plan.skipped) - LISTED_TARGETS} more")
    return "\n".join(lines)
