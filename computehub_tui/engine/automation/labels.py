"""Labels kept locally by the ``label`` rule action (no provider has a call that renames an instance)."""

from __future__ import annotations

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Instance
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.safe_store import SafeStore

LOCAL_LABEL_FLAG = "label:"
"""Store flag prefix: ``label:<instance key>`` holds that instance's local label."""
LABEL_LIMIT = 120


class LocalLabels:
    """Each instance's local label, kept in the store and read into memory (``load``) for cheap reads."""

    def __init__(self, store: SafeStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._labels: dict[str, str] = {}

    async def load(self) -> None:
        """Read every local label (another process, a daemon, may have set some)."""
        flags = await self._store.call(self._store.store.flags_named(LOCAL_LABEL_FLAG))
        if flags is not None:
            # Made safe again on the way out: the store may hold what an older version wrote.
            self._labels = {name.removeprefix(LOCAL_LABEL_FLAG): clean_text(text, LABEL_LIMIT)
                            for name, text in flags.items()}

    async def set(self, key: str, text: str) -> str:
        """Label ``key`` locally with ``text`` (made one safe, bounded line); returns what was kept."""
        label = clean_text(text, LABEL_LIMIT)
        await self._store.call(self._store.store.set_flag(f"{LOCAL_LABEL_FLAG}{key}", label, self._clock.now()))
        self._labels[key] = label
        return label

    def get(self, key: str) -> str:
        return self._labels.get(key, "")

    def shown(self, instance: Instance) -> str:
        """The label to show for ``instance``: its provider's, then its local one after a dot."""
        local = self._labels.get(instance.key, "")
        if not local:
            return instance.label
        return f"{instance.label} · {local}" if instance.label else local
