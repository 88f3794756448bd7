"""The Hub does not import the rule runner or the lark parser until ``hub.rules`` is used: one-shot commands and
``--help`` do not pay for them."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = ("lark", "computehub_tui.rules.parser", "computehub_tui.engine.automation.runner",
            "computehub_tui.engine.automation.service")


def loaded_after(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(m for m in {DEFERRED!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.split()


def test_importing_the_hub_or_the_cli_loads_no_automation() -> None:
    assert loaded_after("import computehub_tui.engine.hub, computehub_tui.cli") == []
