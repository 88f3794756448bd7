"""The demo's ssh: ``python -m computehub_tui.providers.demo.ssh --world DIR [ssh options] USER@HOST nvidia-smi …``
answers like a host in the saved demo world would, with nvidia-smi CSV from that instance's trace."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from computehub_tui.clock import SystemClock
from computehub_tui.providers.demo.market import DemoMarket, SimInstance
from computehub_tui.providers.demo.world import WORLD_FILE_NAME

SSH_ERROR = 255
HEADER = ("index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu, "
          "power.draw [W]")
_OPTIONS_WITH_VALUE = frozenset({"-o", "-p", "-i", "-l", "-F", "-J", "-E"})


def main(argv: Sequence[str]) -> int:
    world, port, target, command = _parse(list(argv))
    host = target.rpartition("@")[2]
    market = _market(world)
    instance = _find(market, host, port)
    if instance is None or market.view(instance).status != "running":
        sys.stderr.write(f"ssh: connect to host {host} port {port}: Connection refused\n")
        return SSH_ERROR
    if not command.startswith("nvidia-smi"):
        sys.stderr.write("demo hosts only answer nvidia-smi\n")
        return 1
    sys.stdout.write(nvidia_smi_csv(market, instance))
    return 0


def nvidia_smi_csv(market: DemoMarket, instance: SimInstance) -> str:
    """What ``nvidia-smi --query-gpu=… --format=csv`` prints on this simulated machine now."""
    lines = [HEADER]
    total_mib = round(instance.vram_gb * 1024)
    for index, reading in enumerate(market.view(instance).gpus):
        power = 45 + reading.util * 2.6
        lines.append(f"{index}, GPU-{instance.instance_id[:8]}-{index:04d}, NVIDIA {instance.gpu}, "
                     f"{round(reading.util)} %, {round(reading.vram_used_gb * 1024)} MiB, {total_mib} MiB, "
                     f"{round(reading.temp_c)}, {power:.2f} W")
    return "\n".join(lines) + "\n"


def _parse(argv: list[str]) -> tuple[Path, int, str, str]:
    world, port = Path("."), 22
    while argv and argv[0].startswith("-"):
        option = argv.pop(0)
        value = argv.pop(0) if option in _OPTIONS_WITH_VALUE or option == "--world" else ""
        if option == "--world":
            world = Path(value)
        elif option == "-p":
            port = int(value)
    target = argv.pop(0) if argv else ""
    return world, port, target, " ".join(argv)


def _market(world: Path) -> DemoMarket:
    document = json.loads((world / WORLD_FILE_NAME).read_text(encoding="utf-8"))
    # No offers and no seeded machines: only the saved world's instances matter here, and start-up is cheap.
    market = DemoMarket(SystemClock(), seed=int(document["seed"]), vast_offer_count=0, seed_instances=False)
    market.restore(document)
    return market


def _find(market: DemoMarket, host: str, port: int) -> SimInstance | None:
    matches = [i for i in market.instances.values() if i.ssh_host == host and i.ssh_port == port]
    running = [i for i in matches if market.view(i).status == "running"]
    return next(iter(running or matches), None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
