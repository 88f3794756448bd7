"""Ready-made rules the Rules pane offers to insert, each one a rule that parses clean."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    title: str
    description: str
    text: str
    """Rule text to insert, named after the recipe."""


RECIPES: tuple[Recipe, ...] = (
    Recipe("idle-stop", "Idle stop",
           "Stop a running instance whose GPUs stayed under 5 % for 30 minutes, with a 5-minute warning.",
           'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running"\n'
           "    THEN WARN 5m stop; notify toast \"{label} idle, stopping\""),
    Recipe("crash-restart", "Crash restart",
           "Restart an on-demand instance whose container exited.",
           'rule "crash-restart": IF status == "exited" AND pricing == "on-demand" THEN restart; notify toast'),
    Recipe("daily-cap", "Daily spend cap",
           "Stop everything once today's spend passes $50.",
           'rule "daily-cap": IF spend_today > $50 THEN stop_all; notify email "daily cap hit: {spend_today}"'),
    Recipe("stuck-provisioning", "Stuck provisioning",
           "Relaunch on another host when an instance has been provisioning for 20 minutes.",
           'rule "stuck-provisioning": IF status == "provisioning" FOR 20m THEN relaunch; notify toast'),
    Recipe("spot-refill", "Spot refill",
           "Relaunch an interruptible instance the provider took back.",
           'rule "spot-refill": IF status in ["exited", "stopped"] AND pricing == "interruptible" THEN relaunch'),
    Recipe("price-rise-migration", "Price-rise migration",
           "Move an A100 to RunPod when this GPU's price on its provider rose more than 20 % in a day.",
           'rule "price-rise-migration": IF price_change_24h > 20% AND gpu ~ "*A100*"\n'
           '    THEN migrate(provider="runpod", max_price=$1.8); notify webhook "{label} moved: {cost_per_hour}"'),
)
"""In the order the Rules pane lists them."""
