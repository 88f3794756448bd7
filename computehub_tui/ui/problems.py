"""Provider failures in words a user knows, for the panes' empty states and status lines."""

from __future__ import annotations

from computehub_tui.domain.text import clean_text
from computehub_tui.engine.events import ProviderHealth
from computehub_tui.engine.hub import Hub

HEALTHY_STATES = frozenset({"ok", "waiting"})
SETTINGS_HINT = ", opens Settings: check the key, test the connection"
ERROR_LIMIT = 160


def failed(health: ProviderHealth) -> bool:
    return health.state not in HEALTHY_STATES


def failure_lines(hub: Hub, retry_s: float) -> list[str]:
    """One line per failing provider with its last error, then where to fix it; empty when all is well."""
    lines = [f"{clean_text(h.last_error or h.state, ERROR_LIMIT)} — retrying every {retry_s:g} s"
             for h in hub.health() if failed(h)]
    return [*lines, SETTINGS_HINT] if lines else []
