"""Regenerates the README screenshots from the demo market (run: make screenshots).

Drives the real app headless on a manual clock so sparklines and price history have data, saves
SVGs with Textual, and converts them to PNG with rsvg-convert when it is installed
(Debian: librsvg2-bin and fonts-firacode).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config, load_config
from computehub_tui.domain.models import LaunchSpec
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.wiring import open_session

OUT = Path(__file__).resolve().parent
SIZE = (160, 45)
RULES = """\
# Stop GPUs left idle, restart crashed machines, cap the day's spend.
rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN WARN 10m stop; notify toast
rule "crash-restart": IF status == "exited" THEN restart
rule "stuck-provisioning": IF status == "provisioning" FOR 20m THEN relaunch
rule "daily-cap": IF spend_today > $200 THEN stop_all; notify toast "daily cap hit: {spend_today}"
"""


async def capture() -> list[Path]:
    clock = ManualClock(start=1_795_000_000.0)
    data_dir = Path(tempfile.mkdtemp(prefix="chub-shots-"))
    rules = data_dir / "automation.rules"
    rules.write_text(RULES, encoding="utf-8")
    settings_file = data_dir / "config.toml"
    settings_file.write_text('[alerts.webhook]\nurl = "https://hooks.example.com/computehub"\n', encoding="utf-8")
    config = load_config(settings_file, {}).model_copy(update={
        "automation": Config.model_validate({"automation": {"rules_file": str(rules)}}).automation})
    app = ComputeHubApp(lambda: open_session(config, data_dir, demo=True, clock=clock), config=config)
    shots: list[Path] = []

    def shot(name: str) -> None:
        shots.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT))))

    async with app.run_test(size=SIZE) as pilot:
        while not (app.hub and all(h.offers_at for h in app.hub.health()) and app.offers_pane.table.rows):
            await pilot.pause(0.05)
        hub = app.hub
        await clock.advance(4)  # the demo's price-history replay starts after start-up settles
        for _ in range(200):
            if await hub.store.price_history("H100 SXM", 0):
                break
            await pilot.pause(0.1)
        offer = next(o for o in hub.offers() if o.provider == "vast" and o.gpu == "RTX 4090" and o.available
                     and o.pricing.value == "on-demand")
        await hub.launch(offer, LaunchSpec(image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", label="sdxl-train"))
        for step in range(90):  # 7.5 minutes of 5-second polls so the sparklines have history
            await clock.advance(5)
            await asyncio.gather(*(hub.refresh_instances(name) for name in hub.providers))
            if step % 12 == 0:
                await asyncio.gather(*(hub.refresh_offers(name) for name in hub.providers))
        await pilot.pause(0.3)
        await pilot.press("V", "home")
        await pilot.pause(0.2)
        shot("offers")
        app.offers_pane.apply_filter("h100 vram>=80 rel>=0.97 spot:no")
        await pilot.pause(0.2)
        shot("offers-filtered")
        await pilot.press("i")
        await pilot.pause(0.3)
        await pilot.press("w")
        await pilot.pause(0.5)
        shot("offer-detail")
        await pilot.press("escape", "m")
        await pilot.pause(0.5)
        shot("market")
        await pilot.press("escape")
        await pilot.press("enter")
        await pilot.pause(0.5)
        shot("launch")
        await pilot.press("escape")
        app.offers_pane.apply_filter("")
        await pilot.press("2")
        await pilot.pause(0.3)
        shot("instances")
        await pilot.press("3")
        await pilot.pause(0.5)
        shot("monitor")
        await pilot.press("down", "enter", "2")  # a RunPod card, its last hour
        await pilot.pause(1.0)
        shot("instance-detail")
        await pilot.press("escape", "dollar_sign")
        await pilot.pause(1.0)
        shot("spend")
        await pilot.press("escape", "4")
        await pilot.pause(1.0)
        shot("rules")
        await pilot.press("e")
        await pilot.pause(1.0)
        shot("rules-editor")
        await pilot.press("ctrl+t")
        await pilot.pause(2.0)
        shot("rules-replay")
        await pilot.press("escape", "escape")
        await pilot.pause(0.3)
        await pilot.press("comma")
        await pilot.pause(0.5)
        shot("settings")
        await pilot.press("n")
        await pilot.pause(1.0)
        shot("notifications")
    return shots


def to_png(svg: Path) -> Path | None:
    converter = shutil.which("rsvg-convert")
    if converter is None:
        return None
    # Textual's SVG relies on whitespace inside <text>; librsvg collapses it unless told not to.
    fixed = svg.with_suffix(".tmp.svg")
    fixed.write_text(re.sub(r"<svg ", '<svg xml:space="preserve" ', svg.read_text(), count=1))
    png = svg.with_suffix(".png")
    subprocess.run([converter, "-w", "1600", "-o", str(png), str(fixed)], check=True)
    fixed.unlink()
    return png


def main() -> int:
    shots = asyncio.run(capture())
    for svg in shots:
        png = to_png(svg)
        print(f"{svg.name} -> {png.name if png else '(install librsvg2-bin for PNG)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
