"""Settings → Notifications: the alert channels (add, edit, remove, send test) and the delivery log."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from computehub_tui.ui.alerts_source import (
    CHANNEL_KINDS,
    ERROR_LIMIT,
    AlertsSource,
    AlertsUnavailable,
    ChannelInfo,
    Delivery,
    channel_title,
    destination,
    masked_secret,
    one_line_error,
    safe_line,
)
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.notifications_form import ChannelFormScreen
from computehub_tui.ui.widgets.footer import HubFooter
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable, columns_that_fit

DELIVERIES_SHOWN = 500
"""The log reads at most this many of the newest deliveries."""
RELOAD_AFTER_S = 0.5
"""Alerts queued in a burst reload the log once, this long after the first."""
NO_CHANNELS_TEXT = "No channels yet — press a to add Telegram, e-mail or a webhook."
NOTHING_DELIVERED_TEXT = "Nothing delivered yet. Each alert shows up here with its state, attempts and last error."
STATE_STYLES = {"queued": "dim", "sending": "cyan", "sent": "green", "retrying": "yellow", "dead": "bold red"}
KIND_HINTS = {
    "telegram": "a bot token from @BotFather and the chat id",
    "email": "an SMTP server (STARTTLS, TLS or plain), from and to addresses",
    "webhook": "a URL; generic signed JSON, Slack or Discord",
}


RowT = TypeVar("RowT")


def stretched(columns: Sequence[Column[RowT]], width: int, flexible: tuple[str, ...]) -> list[Column[RowT]]:
    """The columns that fit in ``width``, with the room left over shared by the ``flexible`` ones (the text
    that is cut most: titles, destinations, errors)."""
    kept = columns_that_fit(columns, width)
    spare = width - sum(column.width + 1 for column in kept)
    growing = [column for column in kept if column.key in flexible]
    if spare <= 0 or not growing:
        return kept
    share, left = divmod(spare, len(growing))
    widths = {column.key: column.width + share + (left if column is growing[-1] else 0) for column in growing}
    return [replace(column, width=widths[column.key]) if column.key in widths else column for column in kept]


class AlertsChanged(Message):
    """Alerts were queued or changed state: open notification screens reload."""


def _clock(at: float | None, pattern: str = "%m-%d %H:%M:%S") -> str:
    return "" if at is None else time.strftime(pattern, time.localtime(at))


def delivery_columns() -> list[Column[Delivery]]:
    return [
        Column("at", "TIME", 14, lambda row: (_clock(row.created_at), "dim")),
        Column("channel", "CHANNEL", 8, lambda row: (row.channel, "bold")),
        Column("title", "TITLE", 24, lambda row: (row.title, None)),
        Column("state", "STATE", 11, lambda row: (state_text(row), STATE_STYLES.get(row.state, "red"))),
        Column("kind", "KIND", 14, lambda row: (row.kind, None), priority=2),
        Column("next", "NEXT TRY", 8, lambda row: (next_attempt(row), "yellow"), priority=3),
        Column("error", "LAST ERROR", 24, lambda row: (row.last_error, "red"), priority=1),
    ]


def state_text(row: Delivery) -> str:
    """The state with its attempts where they matter: ``retrying ×3``, ``dead ×5``."""
    return f"{row.state} ×{row.attempts}" if row.attempts > 1 or row.state in ("retrying", "dead") else row.state


def next_attempt(row: Delivery) -> str:
    return _clock(row.next_attempt_at, "%H:%M:%S") if row.state in ("queued", "retrying") else ""


class DeliveryLogScreen(ModalScreen[None]):
    """Newest first; r reloads, and so does every alert queued while it is open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    DEFAULT_CSS = """
    DeliveryLogScreen > Vertical { width: 100%; height: 1fr; border: thick $accent; background: $surface; }
    DeliveryLogScreen .title { text-style: bold; padding: 0 1; }
    DeliveryLogScreen #log-detail { height: 4; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, source: AlertsSource) -> None:
        super().__init__()
        self.source = source
        self._reload_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Alert delivery log — newest first · r reload · esc back", classes="title")
            self.table: VirtualTable[Delivery] = VirtualTable(
                delivery_columns(), row_key=lambda row: row.delivery_id, empty_text="loading…", id="log-table")
            yield self.table
            yield PlainStatic("", id="log-detail")
        yield HubFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self.action_reload()

    def on_resize(self) -> None:
        self.table.set_columns(stretched(delivery_columns(), self.table.size.width - 1, ("title", "error")))

    def action_reload(self) -> None:
        self._load()

    def on_alerts_changed(self, _: AlertsChanged) -> None:
        if self._reload_timer is None:
            self._reload_timer = self.set_timer(RELOAD_AFTER_S, self._reload_later)

    def _reload_later(self) -> None:
        self._reload_timer = None
        self._load()

    @work(group="delivery-log", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        try:
            rows = await self.source.deliveries(DELIVERIES_SHOWN)
        except Exception as error:  # noqa: BLE001 - shown in place; the app keeps running
            self.table.empty_text = one_line_error(error)
            self.table.set_rows([])
            return
        self.table.empty_text = NOTHING_DELIVERED_TEXT
        self.table.set_rows(rows[:DELIVERIES_SHOWN])
        self._show_detail(self.table.current_row)

    def on_virtual_table_cursor_moved(self, message: VirtualTable.CursorMoved) -> None:
        row = message.row
        self._show_detail(row if isinstance(row, Delivery) else None)

    def _show_detail(self, row: Delivery | None) -> None:
        """The selected delivery in full, which the columns may cut."""
        if row is None:
            self.query_one("#log-detail", PlainStatic).update("")
            return
        detail = plain(f"{row.channel} · {row.kind} · {state_text(row)}", "bold")
        if row.sent_at is not None:
            detail.append(f" · sent {_clock(row.sent_at)}")
        if next_attempt(row):
            detail.append(f" · next try {next_attempt(row)}")
        detail.append("\n")
        detail.append_text(plain(row.title))
        detail.append("\n")
        detail.append_text(plain(row.last_error, "red", ERROR_LIMIT))
        detail.append("\nkey ", style="dim")
        detail.append_text(plain(row.alert_key, "dim"))
        self.query_one("#log-detail", PlainStatic).update(detail)


class ChannelKindScreen(ModalScreen[str | None]):
    """Which kind of channel to add; a kind that is on already opens its edit form."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    ChannelKindScreen { align: center middle; }
    ChannelKindScreen > Vertical { width: 100%; max-width: 76; height: auto; border: thick $accent;
                                   background: $surface; padding: 0 1; }
    ChannelKindScreen OptionList { height: auto; }
    """

    def __init__(self, channels: list[ChannelInfo]) -> None:
        super().__init__()
        self.on_already = {channel.name for channel in channels if channel.configured}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Add a channel (enter choose, esc cancel)", classes="title")
            yield OptionList(*[Option(self._label(kind), id=kind) for kind in CHANNEL_KINDS], id="kinds")

    def _label(self, kind: str) -> Text:
        label = Text(channel_title(kind), style="bold")
        label.append(f" — {KIND_HINTS[kind]}")
        if kind in self.on_already:
            label.append(" (on: edit it)", style="dim")
        return label

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class NotificationsScreen(ModalScreen[None]):
    """The alert channels, one row per kind. Actions apply to the highlighted channel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Back"),
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("t", "send_test", "Send test"),
        Binding("x,delete", "remove", "Remove"),
        Binding("l", "delivery_log", "Log"),
        Binding("r", "reload", "Reload"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    DEFAULT_CSS = """
    NotificationsScreen > Vertical { width: 100%; height: 1fr; border: thick $accent; background: $surface; }
    NotificationsScreen .title { text-style: bold; padding: 0 1; background: $panel; }
    NotificationsScreen #channels-table { height: 5; }
    NotificationsScreen #channels-help { height: auto; padding: 1 1 0 1; color: $text-muted; }
    NotificationsScreen #channels-status { height: auto; padding: 1 1 0 1; }
    """

    def __init__(self, source: AlertsSource) -> None:
        super().__init__()
        self.source = source
        self.channels: list[ChannelInfo] = []
        self.tests: dict[str, tuple[str, str]] = {}
        """The last send test per channel, as its row shows it."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Settings → Notifications · alert channels", classes="title")
            self.table: VirtualTable[ChannelInfo] = VirtualTable(
                self._columns(), row_key=lambda row: row.name, empty_text="loading…", id="channels-table")
            yield self.table
            yield PlainStatic("", id="channels-help")
            yield PlainStatic("", id="channels-status")
        yield HubFooter()

    def _columns(self) -> list[Column[ChannelInfo]]:
        return [
            Column("channel", "CHANNEL", 9, lambda row: (channel_title(row.name), "bold")),
            Column("state", "STATE", 5, lambda row: ("on", "green") if row.configured else ("off", "dim")),
            Column("destination", "DESTINATION", 24, lambda row: (destination(row) or "-", None)),
            Column("secret", "SECRET", 9, lambda row: (masked_secret(row.secret_masked) or "-", "dim")),
            Column("test", "LAST TEST", 20, self._test_cell, priority=1),
        ]

    def _test_cell(self, row: ChannelInfo) -> tuple[str, str | None]:
        return self.tests.get(row.name, ("", None))

    @property
    def selected(self) -> ChannelInfo | None:
        return self.table.current_row

    def on_mount(self) -> None:
        self.table.focus()
        self.action_reload()

    def on_resize(self) -> None:
        self.table.set_columns(stretched(self._columns(), self.table.size.width - 1, ("destination", "test")))

    # -- loading ----------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load()

    @work(group="channels-load", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        try:
            channels = await self.source.channels()
        except Exception as error:  # noqa: BLE001 - shown in place; the app keeps running
            self.channels = []
            self.table.empty_text = one_line_error(error)
            self.table.set_rows([])
            unavailable = isinstance(error, AlertsUnavailable)
            self._help("Alerts need the alerts service of this build." if unavailable else "r tries again.")
            return
        self.channels = [channel for channel in channels if channel.name in CHANNEL_KINDS]  # each has its form
        self.table.set_rows(self.channels)
        if not any(channel.configured for channel in channels):
            self._help(NO_CHANNELS_TEXT)
        else:
            self._help("enter/e edit · t send test · x remove · a add · l delivery log · ? all keys")

    def _help(self, text: str) -> None:
        self.query_one("#channels-help", PlainStatic).update(text)

    def _status(self, message: str, style: str = "") -> None:
        self.query_one("#channels-status", PlainStatic).update(Text(message, style=style))

    def _configured(self) -> ChannelInfo | None:
        """The highlighted channel if it is on; otherwise says so and returns None."""
        channel = self.selected
        if channel is None or not channel.configured:
            name = channel_title(channel.name) if channel is not None else "This"
            self._status(f"{name} channel is off: press e or a to set it up.", "yellow")
            return None
        return channel

    # -- actions ----------------------------------------------------------------------------

    def action_add(self) -> None:
        if not self.channels:
            return

        def chosen(kind: str | None) -> None:
            if kind is not None:
                self._open_form(kind)

        self.app.push_screen(ChannelKindScreen(self.channels), chosen)

    def action_edit(self) -> None:
        if self.selected is not None:
            self._open_form(self.selected.name)

    def on_virtual_table_activated(self, message: VirtualTable.Activated) -> None:
        self.action_edit()

    def _open_form(self, kind: str) -> None:
        channel = next((c for c in self.channels if c.name == kind), None)

        def saved(done: bool | None) -> None:
            if done:
                self._status(f"{channel_title(kind)} channel saved. Press t to send a test.", "green")
                self.action_reload()

        self.app.push_screen(ChannelFormScreen(self.source, kind, channel), saved)

    def action_remove(self) -> None:
        channel = self._configured()
        if channel is None:
            return
        title = channel_title(channel.name)
        body = Text(f"Alerts stop going to {destination(channel) or 'this channel'}.")
        if channel.secret_masked:
            body.append(f" The stored secret {masked_secret(channel.secret_masked)} is deleted.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._remove(channel.name)

        self.app.push_screen(ConfirmScreen(f"Remove the {title} channel?", body, yes_label="Remove", danger=True),
                             confirmed)

    @work(group="channels-remove", exclusive=True, exit_on_error=False)
    async def _remove(self, name: str) -> None:
        try:
            await self.source.remove_channel(name)
        except Exception as error:  # noqa: BLE001
            self._status(f"✖ could not remove the {channel_title(name)} channel: {one_line_error(error)}",
                         "bold red")
            return
        self.tests.pop(name, None)
        self._status(f"{channel_title(name)} channel removed.", "yellow")
        self.action_reload()

    def action_send_test(self) -> None:
        channel = self._configured()
        if channel is None:
            return
        self._set_test(channel.name, "sending…", "cyan")
        self._status(f"Sending a test to {channel_title(channel.name)}…", "cyan")
        self._send_test(channel.name)

    # One worker group per channel: a slow test of one channel never holds up another's.
    def _send_test(self, name: str) -> None:
        self.run_worker(self._test_worker(name), group=f"channel-test-{name}", exclusive=True, exit_on_error=False)

    async def _test_worker(self, name: str) -> None:
        title = channel_title(name)
        try:
            answer = await self.source.send_test(name)
        except Exception as error:  # noqa: BLE001 - the one-line reason, in the row and a toast
            reason = one_line_error(error)
            self._set_test(name, f"✖ {reason}", "red")
            self._status(f"✖ test to {title} failed: {reason}", "bold red")
            self.notify(reason, title=f"Test to {title} failed", severity="error", markup=False, timeout=10)
            return
        said = safe_line(answer) or "accepted"
        self._set_test(name, f"✔ {said}", "green")
        self._status(f"✔ test to {title}: {said}", "green")
        self.notify(said, title=f"Test to {title} sent", markup=False, timeout=5)

    def _set_test(self, name: str, text: str, style: str) -> None:
        self.tests[name] = (text, style)
        self.table.refresh()

    def action_delivery_log(self) -> None:
        self.app.push_screen(DeliveryLogScreen(self.source))
