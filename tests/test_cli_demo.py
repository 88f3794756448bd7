"""The command line on the demo market: scriptable output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fakes.cli import run_completed

OFFER_KEYS = {"provider", "offer_id", "gpu", "gpu_count", "vram_gb", "vcpus", "ram_gb", "disk_gb", "price_hour",
              "price_per_gpu_hour", "pricing", "location", "reliability", "available", "quoted_at"}
INSTANCE_KEYS = {"provider", "id", "label", "status", "provider_status", "gpu", "gpu_count", "price_hour", "ssh",
                 "gpu_util", "started_at", "cost_so_far", "uptime_s", "current_price_hour", "project", "billing_while_stopped",
                 "local_label"}


def run(tmp_path: Path, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text("", encoding="utf-8")  # a named config file must exist
    env = {**os.environ, "COMPUTEHUB_DATA_DIR": str(tmp_path / "data"),
           "COMPUTEHUB_CONFIG": str(tmp_path / "config.toml")}
    return run_completed(args, env, process=process)


def test_offers_json_limit(tmp_path: Path) -> None:
    result = run(tmp_path, "offers", "--json", "--limit", "5")
    assert result.returncode == 0, result.stderr
    offers = json.loads(result.stdout)
    assert len(offers) == 5
    assert all(set(offer) == OFFER_KEYS for offer in offers)
    prices = [offer["price_hour"] for offer in offers]
    assert prices == sorted(prices)
    assert "DEMO" in result.stderr  # never mistaken for real quotes


def test_offers_filter_sort_and_csv(tmp_path: Path) -> None:
    result = run(tmp_path, "offers", "h100 vram>=80 spot:no", "--sort", "value", "--limit", "0", "--csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("provider,offer_id,gpu,")
    assert len(lines) > 10
    assert all(",H100" in line and "on-demand" in line for line in lines[1:])


def test_malformed_filter_is_a_one_line_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "offers", "h100 price<cheap")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "price" in result.stderr and "Traceback" not in result.stderr


def test_instances_json(tmp_path: Path) -> None:
    result = run(tmp_path, "instances", "--json")
    assert result.returncode == 0, result.stderr
    instances = json.loads(result.stdout)
    assert {i["provider"] for i in instances} == {"vast", "runpod", "lambda", "tensordock"}
    assert all(set(i) == INSTANCE_KEYS for i in instances)
    running = [i for i in instances if i["status"] == "running" and i["provider"] == "vast"]
    assert running and all(i["ssh"].startswith("ssh -p ") for i in running)
    assert all(i["id"].startswith(f"{i['provider']}:") for i in instances)


def test_usage_errors_and_version(tmp_path: Path) -> None:
    """The first two as real ``python -m computehub_tui`` processes: the entry point and its exit codes."""
    assert run(tmp_path, "--version", process=True).stdout.startswith("computehub-tui ")
    bad_id = run(tmp_path, "stop", "12345", "--demo", process=True)
    assert bad_id.returncode == 2 and "provider:id" in bad_id.stderr and bad_id.stderr.count("\n") == 1
    no_image = run(tmp_path, "launch", "vast", "1")
    assert no_image.returncode == 2 and "--image" in no_image.stderr and no_image.stderr.count("\n") == 1
    missing = run(tmp_path, "destroy", "vast:1", "--demo", "--yes")
    assert missing.returncode == 1 and "vast:1: not found on Vast.ai" in missing.stderr


def test_broken_config_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[poll]\ninstances_s = 'fast'\n")
    result = run(tmp_path, "offers")
    assert result.returncode == 2
    assert "config.toml:2: poll.instances_s: must be a number" in result.stderr
    assert result.stderr.count("\n") == 1


def test_actions_that_bill_interrupt_or_destroy_ask_and_need_yes_without_a_terminal(tmp_path: Path) -> None:
    instances = json.loads(run(tmp_path, "instances", "--json", "--provider", "vast").stdout)
    running = next(i["id"] for i in instances if i["status"] == "running")
    stopped = next(i["id"] for i in instances if i["status"] == "stopped")
    for action, key in (("start", stopped), ("restart", running), ("destroy", running)):
        refused = run(tmp_path, action, key)
        assert refused.returncode == 2, refused.stderr
        assert f"refusing to {action} without confirmation" in refused.stderr and "add --yes" in refused.stderr
        assert refused.stdout == ""
    after = {i["id"]: i["status"] for i in json.loads(run(tmp_path, "instances", "--json").stdout)}
    assert (after[stopped], after[running]) == ("stopped", "running"), "nothing was sent"

    already = run(tmp_path, "stop", stopped)
    assert already.returncode == 0, already.stderr
    assert already.stdout == f"{stopped}: already stopped; nothing sent\n"
    started = run(tmp_path, "start", stopped, "--yes")
    assert started.returncode == 0 and started.stdout == f"start {stopped}: done\n", started.stderr
