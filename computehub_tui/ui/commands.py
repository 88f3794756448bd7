"""Command palette: every action in the app, searchable with ctrl+p."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from computehub_tui.ui.widgets.offers_pane import SORT_BINDINGS

if TYPE_CHECKING:
    from computehub_tui.ui.app import ComputeHubApp


class HubCommands(Provider):
    """Each command calls the same action a key would, so billing and destroying actions confirm
    here exactly as they do from their keys. Textual's system commands add theme, keys, screenshot."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("ComputeHubApp", self.app)  # this provider is only registered on ComputeHubApp
        run = app.run_action
        key = app.key_shown  # the key as rebound by [ui] keys
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("Go to Offers", partial(run, "show_pane('offers')"), key("offers")),
            ("Go to Instances", partial(run, "show_pane('instances')"), key("instances")),
            ("Go to Monitor", partial(run, "show_pane('monitor')"), key("monitor")),
            ("Go to Rules (automation)", partial(run, "show_pane('rules')"), key("rules")),
            ("Make this pane the default (shown at start; saved in the config file)",
             partial(run, "make_default_pane"), ""),
            ("Refresh every provider now", partial(run, "refresh"), key("refresh")),
            ("Show keys (help)", partial(run, "help"), key("help")),
            ("Settings: API keys, provider health, capabilities", partial(run, "settings"), key("settings")),
            ("Settings → Notifications: alert channels (Telegram, e-mail, webhook), send test",
             partial(run, "notifications"), ""),
            ("Notifications: alert delivery log (queued, sent, retrying, dead)", partial(run, "delivery_log"), ""),
            ("Filter offers", partial(self._in_offers, "start_filter"), key("filter")),
            ("Clear offer filter", partial(self._in_offers, "clear_filter"), "esc"),
            ("Launch selected offer", partial(self._in_offers, "launch"), "enter"),
            ("Offer details: value rank explained, price history", partial(self._in_offers, "details"),
             key("details")),
            ("Market summary: cheapest offer per GPU model", partial(self._in_offers, "market"), key("market")),
            ("Mark / unmark instance", partial(self._in_instances, "toggle_mark"), "space"),
            ("Mark all instances", partial(self._in_instances, "mark_all"), "ctrl+a"),
            ("Clear marks", partial(self._in_instances, "clear_marks"), "esc"),
            ("Start selected / marked instances", partial(self._in_instances, "instance_action('start')"), "s"),
            ("Stop selected / marked instances", partial(self._in_instances, "instance_action('stop')"), "x"),
            ("Restart selected / marked instances", partial(self._in_instances, "instance_action('restart')"), "r"),
            ("Destroy selected / marked instances", partial(self._in_instances, "instance_action('destroy')"), "d"),
            ("SSH into the selected instance", partial(self._in_instances, "ssh"), "enter"),
            ("Show instance logs", partial(self._in_instances, "logs"), "l"),
            ("Instance details: GPU charts, spend, ports and URLs, logs", partial(self._in_instances, "details"),
             "i"),
            ("Monitor: details of the selected instance", partial(self._in_monitor, "details"), "enter"),
            ("Copy SSH command", partial(self._in_instances, "copy_ssh"), "c"),
            ("Set the project of the selected / marked instances", partial(self._in_instances, "set_project"), "p"),
            ("Filter instances by project…", partial(self._in_instances, "filter_project"), "f"),
            ("Clear the project filter (show every instance)", partial(self._in_instances, "clear_project_filter"),
             "esc"),
            ("Spend by day: chart and totals by project or provider", partial(run, "costs"), "$"),
            ("Pause / resume automation (every rule)", partial(run, "toggle_automation"), "!"),
            ("Rules: edit the rules file", partial(self._in_rules, "edit"), "e"),
            ("Rules: new rule from a recipe (idle stop, crash restart, daily cap, …)",
             partial(self._in_rules, "new_from_recipe"), "n"),
            ("Rules: enable / disable the selected rule", partial(self._in_rules, "toggle_enabled"), "space"),
            ("Rules: toggle dry-run of the selected rule", partial(self._in_rules, "toggle_dry_run"), "t"),
            ("Rules: delete the selected rule", partial(self._in_rules, "delete"), "d"),
            ("Rules: audit log of firings", partial(self._in_rules, "audit"), "a"),
            ("Rules: pending warnings (snooze / cancel)", partial(self._in_rules, "pending"), "w"),
            ("Show recent warnings (logged while the app runs)", partial(run, "recent_warnings"), "-"),
            ("Quit", partial(run, "quit"), key("quit")),
        ]
        for _, name, title in SORT_BINDINGS:
            commands.append((f"Sort offers by {title}", partial(self._in_offers, f"sort('{name}')"),
                             key(f"sort_{name}")))
        return commands

    async def _in_offers(self, action: str) -> None:
        await self._in_pane("offers", action)

    async def _in_instances(self, action: str) -> None:
        await self._in_pane("instances", action)

    async def _in_monitor(self, action: str) -> None:
        await self._in_pane("monitor", action)

    async def _in_rules(self, action: str) -> None:
        await self._in_pane("rules", action)

    async def _in_pane(self, pane: str, action: str) -> None:
        await self.app.run_action(f"show_pane('{pane}')")
        await self.app.run_action(action, self.app.query_one(f"#{pane}"))

    async def discover(self) -> Hits:
        for title, callback, key in self._commands():
            yield DiscoveryHit(title, callback, help=_key_help(key))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, key in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=_key_help(key))


def _key_help(key: str) -> str | None:
    return f"key: {key}" if key else None
