"""Projects: which project the user put each instance in (instances without a row take one from their label)."""

from __future__ import annotations

from computehub_tui.store.connection import StoreConnection


class ProjectStore(StoreConnection):
    async def set_project(self, instance_key: str, project: str, at: float) -> None:
        async with self._transaction(f"set the project of {instance_key}") as db:
            await db.execute("INSERT OR REPLACE INTO instance_projects (instance_key, project, set_at) VALUES (?, ?, ?)",
                             (instance_key, project, at))

    async def clear_project(self, instance_key: str) -> bool:
        """Forget ``instance_key``'s project; False when it had none set."""
        async with self._transaction(f"clear the project of {instance_key}") as db:
            cursor = await db.execute("DELETE FROM instance_projects WHERE instance_key = ?", (instance_key,))
            return cursor.rowcount > 0

    async def projects(self) -> dict[str, str]:
        """Every instance's project as the user set it."""
        rows = await self._fetch("read projects", "SELECT instance_key, project FROM instance_projects")
        return {key: project for key, project in rows}
