"""``metrics PROVIDER:ID`` on the demo as a user runs it (``fakes.cli``): Lambda over SSH (the demo's stand-in ssh), RunPod from its API,
and one-line failures when no sample can be had."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.cli import run_completed

FAKE_SSH = Path(__file__).parent / "fakes" / "ssh.py"
SAMPLE_KEYS = {"instance", "at", "source", "gpus", "cpu_pct", "ram_pct", "error"}
GPU_KEYS = {"index", "name", "util_pct", "vram_used_gb", "vram_total_gb", "temp_c", "power_w"}


def run(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COMPUTEHUB_DATA_DIR": str(data), **env}
    environ.pop("COMPUTEHUB_CONFIG", None)
    return run_completed([*args, "--demo"], environ)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A demo data dir and the first running instance of each provider in it."""
    data = tmp_path_factory.mktemp("demo")
    listed = run(data, "instances", "--json")
    assert listed.returncode == 0, listed.stderr
    running: dict[str, str] = {}
    for instance in json.loads(listed.stdout):
        if instance["status"] == "running":
            running.setdefault(instance["provider"], instance["id"])
    return data, running


def test_a_lambda_instance_is_sampled_over_ssh(demo: tuple[Path, dict[str, str]]) -> None:
    data, running = demo
    result = run(data, "metrics", running["lambda"], "--json")
    assert result.returncode == 0, result.stderr
    sample = json.loads(result.stdout)
    assert set(sample) == SAMPLE_KEYS and sample["instance"] == running["lambda"]
    assert sample["source"] == "ssh" and sample["error"] is None
    (gpu,) = sample["gpus"]
    assert set(gpu) == GPU_KEYS and gpu["index"] == 0 and gpu["name"] == "NVIDIA A10"
    assert gpu["vram_total_gb"] == 24.0 and 0 <= gpu["vram_used_gb"] <= 24.0  # GiB, as the card is sold
    assert 0 <= gpu["util_pct"] <= 100 and gpu["power_w"] > 0
    assert sample["cpu_pct"] is None and sample["ram_pct"] is None  # nvidia-smi does not say: unknown, not 0


def test_a_runpod_instance_uses_its_providers_sample(demo: tuple[Path, dict[str, str]]) -> None:
    data, running = demo
    result = run(data, "metrics", running["runpod"], "--json")
    assert result.returncode == 0, result.stderr
    sample = json.loads(result.stdout)
    assert sample["source"] == "provider" and sample["gpus"]
    assert all(set(gpu) == GPU_KEYS and gpu["temp_c"] is None for gpu in sample["gpus"])  # RunPod reports none


def test_the_text_form_names_the_source(demo: tuple[Path, dict[str, str]]) -> None:
    data, running = demo
    result = run(data, "metrics", running["tensordock"])
    assert result.returncode == 0, result.stderr
    assert "over SSH (nvidia-smi)" in result.stdout and "VRAM GiB" in result.stdout


def test_with_ssh_off_for_the_provider_it_says_how_to_turn_it_on(demo: tuple[Path, dict[str, str]]) -> None:
    data, running = demo
    result = run(data, "metrics", running["lambda"], COMPUTEHUB_MONITOR_SSH_PROVIDERS="[]")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "Lambda has no metrics API and SSH sampling is off for lambda" in line
    assert "[monitor] ssh_providers" in line


def test_a_failing_driver_is_one_line_and_exit_1(demo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    data, running = demo
    (tmp_path / "mode").write_text("driver", encoding="utf-8")
    ssh = f"{sys.executable} -I {FAKE_SSH} {tmp_path}"  # a configured ssh_command replaces the demo's stand-in
    result = run(data, "metrics", running["lambda"], "--json", COMPUTEHUB_MONITOR_SSH_COMMAND=ssh)
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"computehub-tui: error: {running['lambda']}: nvidia-smi failed: NVIDIA-SMI has failed")
    (argv,) = [json.loads(call) for call in (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert argv[argv.index("-p") + 1] == "22" and argv[-2].startswith("ubuntu@")


def test_a_malformed_id_is_a_usage_error(demo: tuple[Path, dict[str, str]]) -> None:
    data, _ = demo
    result = run(data, "metrics", "lambda:../etc")
    assert result.returncode == 2 and "not a lambda instance ID" in result.stderr
