"""An instance's logs in a scrollable view, fetched in a worker with a visible progress state."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog, Static
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import Instance
from computehub_tui.engine import ProviderError
from computehub_tui.engine.hub import Hub


class LogsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close"), Binding("r", "reload", "Reload")]

    DEFAULT_CSS = """
    LogsScreen { align: center middle; }
    LogsScreen > Vertical { width: 95%; height: 90%; border: thick $accent; background: $surface; }
    LogsScreen #logs-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    LogsScreen RichLog { height: 1fr; }
    """

    def __init__(self, hub: Hub, instance: Instance, tail: int = 500) -> None:
        super().__init__()
        self.hub = hub
        self.instance = instance
        self.tail = tail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Logs · {self.instance.key} {self.instance.label}   (r reload, esc close)", id="logs-title")
            yield RichLog(highlight=False, markup=False, wrap=False, id="logs")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        log.write("fetching logs…")
        self._fetch()

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _fetch(self) -> str:
        try:
            return await self.hub.logs(self.instance.key, self.tail)
        except ProviderError as error:
            return f"could not fetch logs: {error}"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "logs" or event.state is not WorkerState.SUCCESS:
            return
        log = self.query_one(RichLog)
        log.clear()
        for line in (event.worker.result or "").splitlines() or ["(no log lines yet)"]:
            log.write(line)
