"""Local SQLite persistence, one module per concern: instances, costs, offers, prices, metrics, audit, secrets."""

from __future__ import annotations

from computehub_tui.store.costs import CostState, InstanceSpend, Observation, SpendRow
from computehub_tui.store.database import Store
from computehub_tui.store.errors import StoreError

__all__ = ["CostState", "InstanceSpend", "Observation", "SpendRow", "Store", "StoreError"]
