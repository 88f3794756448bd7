"""``[automation]`` as the engine uses it: a light module, so the Hub can name it without importing the runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class AutomationSettings:
    """``[automation]`` as the engine uses it (seconds and counts)."""

    enabled: bool = True
    rules_path: Path | None = None
    """The rule file; None: this engine runs no automation (one-shot commands, most tests)."""
    role: str = "app"
    """How this process names itself to others in the lease (``app``, ``daemon``)."""
    cooldown_s: float = 900.0
    destructive_per_hour: int = 10
    fleet_share: float = 0.5
    dry_run: bool = False
    max_retries: int = 3
    retry_first_s: float = 30.0
    lease_ttl_s: float = 30.0
    lease_renew_s: float = 5.0

    def retry_delay(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failure: doubling from ``retry_first_s``, all retries inside the cooldown."""
        return min(self.retry_first_s * 2 ** max(0, attempts - 1), self.cooldown_s / (self.max_retries + 1))
