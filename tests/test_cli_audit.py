"""``audit``: who did what, newest first, filtered by actor and age, as a table or JSON; hostile details stay inert."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from fakes.cli import run_completed

from computehub_tui.store import Store

ESCAPES = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J[bold]x[/]"


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text("[demo]\nvast_offers = 100\n", encoding="utf-8")
    env = {**os.environ, "COMPUTEHUB_DATA_DIR": str(tmp_path / "data"), "COMPUTEHUB_CONFIG": str(config)}
    done = run_completed([*args, "--demo"], env)
    return done.returncode, done.stdout, done.stderr


def test_a_cli_stop_is_in_the_audit_log_and_filters_narrow_it(tmp_path: Path) -> None:
    code, listed, _ = run(tmp_path, "instances", "--json", "--provider", "vast")
    running = next(i["id"] for i in json.loads(listed) if i["status"] == "running")
    code, _, err = run(tmp_path, "stop", running, "--yes")
    assert code == 0, err

    code, printed, err = run(tmp_path, "audit", "--json")
    assert code == 0, err
    entries = json.loads(printed)
    assert {"actor": "cli", "action": "stop", "target": running} == {k: entries[0][k] for k in ("actor", "action", "target")}
    assert entries[0]["at"].endswith("+00:00")
    assert json.loads(run(tmp_path, "audit", "--json", "--actor", "rule")[1]) == []
    assert json.loads(run(tmp_path, "audit", "--json", "--actor", "cli", "--limit", "1")[1]) == entries[:1]

    code, table, _ = run(tmp_path, "audit")
    assert code == 0 and table.splitlines()[0].split()[:4] == ["TIME", "ACTOR", "ACTION", "TARGET"]
    assert running in table
    code, empty, err = run(tmp_path, "audit", "--actor", "rule:idle-stop")
    assert code == 0 and empty == "" and "(no audit entries match)" in err


def test_a_hostile_detail_reaches_the_terminal_inert(tmp_path: Path) -> None:
    run(tmp_path, "instances")  # creates the demo database

    async def write() -> None:
        store = await Store.open(tmp_path / "data" / "demo.db")
        try:
            await store.audit(1.0, "rule:x", "notify", "vast:1", ESCAPES)
        finally:
            await store.close()

    asyncio.run(write())
    code, table, _ = run(tmp_path, "audit")
    assert code == 0 and "\x1b" not in table and "\x07" not in table
    assert "[bold]x[/]" in table


def test_a_bad_actor_is_one_usage_line(tmp_path: Path) -> None:
    code, printed, err = run(tmp_path, "audit", "--actor", "robot")
    assert code == 2 and printed == "" and err.count("\n") == 1 and "user, cli, rule or rule:NAME" in err
