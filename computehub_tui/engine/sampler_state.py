"""How the SSH sampler is doing for one instance, as the UI shows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SamplerStatus(StrEnum):
    WAITING = "waiting"
    """Due for its first sample (or one is under way)."""
    OK = "ok"
    FAILED = "failed"
    """The last sample failed; ``message`` says why and ``retry_at`` when the next one is tried."""


@dataclass(frozen=True, slots=True)
class SamplerState:
    status: SamplerStatus = SamplerStatus.WAITING
    message: str = ""
    """One safe line: the failure ("host key changed …", "nvidia-smi failed: …"), or a partial sample's error."""
    last_sample_at: float | None = None
    """Wall time of the last good sample."""
    retry_at: float | None = None
    """Wall time of the next attempt after a failure."""
    failures: int = 0
    """Failures in a row (the backoff grows with them)."""
