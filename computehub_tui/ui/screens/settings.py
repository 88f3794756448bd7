"""Settings: bind / replace / remove provider keys, test connections, health and capabilities."""

from __future__ import annotations

from typing import cast

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import PROVIDER_NAMES, PROVIDER_TITLES
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.keys import KeyBinding
from computehub_tui.ui.format import age
from computehub_tui.ui.screens.compact import fit_to_height
from computehub_tui.ui.screens.confirm import ConfirmScreen

VERDICT_STYLE = {"ok": "bold green", "invalid key": "bold red", "rate-limited": "yellow",
                 "unreachable": "red", "TLS error": "red", "no key bound": "dim"}

_WHERE_ELSE = {
    "environment": " (it comes from the environment; unset the variable instead)",
    "file": " (it is read from api_key_file in the config file; change it there)",
    "command": " (it comes from api_key_command in the config file; change it there)",
}
"""Why a key that is not in the vault cannot be removed here, by where it comes from."""


class KeyInputScreen(ModalScreen[str | None]):
    """A masked input for one API key; the key never appears on screen."""

    # The focused Input maps ctrl+c to copy; a priority binding makes the first ctrl+c cancel.
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+c", "cancel", "Cancel", priority=True)]
    DEFAULT_CSS = """
    KeyInputScreen { align: center middle; }
    KeyInputScreen > Vertical { width: 100%; max-width: 70; height: auto; max-height: 100%; border: thick $accent;
                                background: $surface; padding: 1 2; }
    KeyInputScreen #key-hint { color: $text-muted; margin-bottom: 1; }
    KeyInputScreen #key-error { color: $error; }
    """

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"API key for {PROVIDER_TITLES[self.provider]}", classes="title")
            yield Static("Paste the key and press Enter. It is encrypted at rest and shown only as ••••last4.",
                         id="key-hint")
            yield Input(password=True, placeholder="API key", id="key-input")
            yield Static(id="key-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value or any(ch.isspace() for ch in value):
            self.query_one("#key-error", Static).update("✖ paste only the key itself (no spaces)")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SettingsScreen(ModalScreen[None]):
    """Keys and provider health in one place. Actions apply to the highlighted provider."""

    class KeysChanged(Message):
        """A key was bound or removed; ``any_bound`` says whether any provider still has one."""

        def __init__(self, any_bound: bool) -> None:
            super().__init__()
            self.any_bound = any_bound

    class NotificationsRequested(Message):
        """The user asked for Settings → Notifications (alert channels and the delivery log)."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("b", "bind_key", "Bind / replace key"),
        Binding("t", "test_key", "Test connection"),
        Binding("delete,x", "remove_key", "Remove key"),
        Binding("n", "notifications", "Notifications (alerts)"),
    ]
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > Vertical { width: 100%; max-width: 110; height: 100%; max-height: 40;
                                border: thick $accent; background: $surface; }
    SettingsScreen #settings-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    SettingsScreen VerticalScroll { height: 1fr; padding: 0 1; }
    SettingsScreen #settings-status { height: auto; padding: 0 1; color: $accent; }
    SettingsScreen #settings-buttons { height: auto; padding: 0 1; }
    SettingsScreen #settings-buttons Button { margin-right: 1; }
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.selected = 0
        self.bindings_by_provider: dict[str, KeyBinding] = {}
        self.verdicts: dict[str, str] = {}

    @property
    def provider(self) -> str:
        return PROVIDER_NAMES[self.selected]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Settings · providers, API keys and capabilities   (↑↓ choose, b bind, t test, x remove, "
                         "n alerts, esc close)", id="settings-title")
            with VerticalScroll():
                yield Static(id="settings-providers")
                yield Static(id="settings-capabilities")
                yield Static(id="settings-notes")
            yield Static(id="settings-status")
            with Horizontal(id="settings-buttons"):
                yield Button("Bind / replace key (b)", id="bind", variant="primary")
                yield Button("Test connection (t)", id="test")
                yield Button("Remove key (x)", id="remove", variant="error")

    def attach(self, hub: Hub) -> None:
        """Manage ``hub``'s keys: the App opened a new session while this screen was open."""
        self.hub = hub
        self.on_mount()

    def on_resize(self) -> None:
        fit_to_height(self)

    def on_mount(self) -> None:
        self.render_tables()
        if self.hub.keys is None:
            self.query_one("#settings-status", Static).update("Key management is not available in this session.")
        else:
            self._load_bindings()

    # -- rendering --------------------------------------------------------------------------

    def render_tables(self) -> None:
        providers = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
        for column in ("", "PROVIDER", "KEY", "STATUS", "LAST DATA", "TEST", "LAST ERROR"):
            providers.add_column(column, no_wrap=column != "LAST ERROR", overflow="fold")
        health = {h.provider: h for h in self.hub.health()}
        now = self.hub.clock.now()
        for index, name in enumerate(PROVIDER_NAMES):
            binding = self.bindings_by_provider.get(name)
            if binding is not None and binding.bound and self.hub.demo:
                key_text = Text(f"{binding.masked} ({binding.source}) — unused in DEMO", style="yellow")
            elif self.hub.demo and name in health:
                key_text = Text("demo (no key)", style="yellow")
            elif binding is None:
                key_text = Text("…", style="dim")
            elif binding.bound:
                key_text = Text(f"{binding.masked} ({binding.source})")
            else:
                key_text = Text("not bound", style="dim")
            state = health.get(name)
            healthy = state is not None and state.state == "ok"
            status = Text(state.state if state else "not polled", style="green" if healthy else "yellow")
            last = "-"
            if state and state.instances_at:
                last = f"{age(now - state.instances_at)} ago"
            verdict = self.verdicts.get(name, "")
            providers.add_row(
                "▶" if index == self.selected else "", Text(PROVIDER_TITLES[name], style="bold"), key_text, status,
                last, Text(verdict, style=VERDICT_STYLE.get(verdict, "red")), Text(state.last_error if state else "",
                                                                                   style="red"),
            )
        self.query_one("#settings-providers", Static).update(providers)

        matrix = Table(title="What each marketplace can do", title_justify="left", expand=True, box=None,
                       header_style="bold", padding=(0, 1))
        # Short enough for 80 columns; the notes below spell out what each "yes" costs.
        for column in ("", "stop/start", "restart", "bills stopped", "spot", "logs", "GPU metrics"):
            matrix.add_column(column)
        for name in PROVIDER_NAMES:
            caps = self.hub.capabilities(name)
            matrix.add_row(PROVIDER_TITLES[name], _yes_no(caps.can_stop), _yes_no(caps.can_restart),
                           _yes_no(caps.bills_storage_while_stopped, good=False), _yes_no(caps.interruptible),
                           _yes_no(caps.logs), _yes_no(caps.live_metrics))
        self.query_one("#settings-capabilities", Static).update(matrix)
        notes = Text()
        for name in PROVIDER_NAMES:
            for note in self.hub.capabilities(name).notes:
                notes.append(f"{PROVIDER_TITLES[name]}: ", style="bold")
                notes.append(f"{note}\n", style="italic")
        self.query_one("#settings-notes", Static).update(notes)

    def _status(self, message: str, style: str = "") -> None:
        self.query_one("#settings-status", Static).update(Text(message, style=style))

    # -- actions ----------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self.selected = (self.selected + delta) % len(PROVIDER_NAMES)
        self.render_tables()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"bind": self.action_bind_key, "test": self.action_test_key, "remove": self.action_remove_key}[
            str(event.button.id)]()

    def action_bind_key(self) -> None:
        if self.hub.keys is None:
            return
        provider = self.provider

        def entered(key: str | None) -> None:
            if key:
                self._status(f"Saving and testing the {PROVIDER_TITLES[provider]} key…")
                self._bind(provider, key)

        self.app.push_screen(KeyInputScreen(provider), entered)

    def action_test_key(self) -> None:
        if self.hub.keys is None:
            return
        self._status(f"Testing {PROVIDER_TITLES[self.provider]}…")
        self._test(self.provider)

    def action_remove_key(self) -> None:
        if self.hub.keys is None:
            return
        provider = self.provider
        binding = self.bindings_by_provider.get(provider)
        if binding is None or binding.source != "vault":
            hint = _WHERE_ELSE.get(binding.source, "") if binding else ""
            self._status(f"No stored {PROVIDER_TITLES[provider]} key to remove{hint}", "yellow")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._remove(provider)

        title = PROVIDER_TITLES[provider]
        body = f"The stored key {binding.masked} is deleted and {title} stops being polled."
        self.app.push_screen(ConfirmScreen(f"Remove the {title} key?", body, yes_label="Remove", danger=True),
                             confirmed)

    def action_notifications(self) -> None:
        self.post_message(self.NotificationsRequested())

    # -- workers (results come back through on_worker_state_changed) --------------------------

    @work(group="settings-load", exclusive=True, exit_on_error=False)
    async def _load_bindings(self) -> tuple[str, object]:
        assert self.hub.keys is not None
        try:
            return ("bindings", await self.hub.keys.bindings())
        except Exception as error:  # noqa: BLE001 - shown to the user
            return ("error", f"cannot read stored keys: {error}")

    @work(group="settings-test", exclusive=True, exit_on_error=False)
    async def _test(self, provider: str, key: str | None = None) -> tuple[str, object]:
        assert self.hub.keys is not None
        return ("verdict", (provider, await self.hub.keys.test(provider, key)))

    @work(group="settings-bind", exclusive=True, exit_on_error=False)
    async def _bind(self, provider: str, key: str) -> tuple[str, object]:
        assert self.hub.keys is not None
        try:
            result = await self.hub.keys.bind(provider, key)
            return ("bound", (provider, result.verdict, await self.hub.keys.bindings()))
        except Exception as error:  # noqa: BLE001
            return ("error", f"could not save the key: {error}")

    @work(group="settings-remove", exclusive=True, exit_on_error=False)
    async def _remove(self, provider: str) -> tuple[str, object]:
        assert self.hub.keys is not None
        await self.hub.keys.remove(provider)
        return ("removed", (provider, await self.hub.keys.bindings()))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if not str(event.worker.group).startswith("settings-") or event.state is not WorkerState.SUCCESS:
            return
        if event.worker.result is None:
            return
        kind, payload = event.worker.result
        if kind == "error":
            self._status(str(payload), "bold red")
        elif kind == "bindings":
            self.bindings_by_provider = {b.provider: b for b in cast("list[KeyBinding]", payload)}
        elif kind == "verdict":
            provider, verdict = payload  # type: ignore[misc]
            self.verdicts[provider] = verdict
            self._status(f"{PROVIDER_TITLES[provider]}: {verdict}", VERDICT_STYLE.get(verdict, "red"))
        elif kind == "bound":
            provider, verdict, bindings = payload  # type: ignore[misc]
            self.verdicts[provider] = verdict
            self.bindings_by_provider = {b.provider: b for b in bindings}
            after = " Leaving the demo for your accounts…" if self.hub.demo else " Polling it now."
            self._status(f"{PROVIDER_TITLES[provider]} key saved (encrypted); test: {verdict}.{after}",
                         VERDICT_STYLE.get(verdict, "red"))
            self.post_message(self.KeysChanged(any(b.bound for b in bindings)))
        elif kind == "removed":
            provider, bindings = payload  # type: ignore[misc]
            self.bindings_by_provider = {b.provider: b for b in bindings}
            any_bound = any(b.bound for b in bindings)
            after = "" if any_bound or self.hub.demo else " No key is left: back to the DEMO marketplace."
            self._status(f"{PROVIDER_TITLES[provider]} key removed.{after}", "yellow")
            self.post_message(self.KeysChanged(any_bound))
        self.render_tables()


def _yes_no(flag: bool, good: bool = True) -> Text:
    """Green for the answer users want, yellow/red for the one that costs them."""
    if flag:
        return Text("yes", style="green" if good else "yellow")
    return Text("no", style="red" if good else "green")
