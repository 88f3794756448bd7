"""Rebindable keys: how ``[ui] keys`` overrides are checked and how a key is shown once rebound."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textual.binding import Binding

from computehub_tui.config.schema import KEY_ACTIONS

KEY_NAMES = {"question_mark": "?", "slash": "/", "comma": ",", "escape": "esc", "enter": "Enter", "up": "↑",
             "down": "↓", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "delete": "Del"}


def key_label(keys: str) -> str:
    """``"question_mark,f1"`` as a person reads it: ``"?, f1"``."""
    return ", ".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(",") if key.strip())


def binding_label(binding: Binding, keymap: Mapping[str, str]) -> str:
    """The key(s) that run ``binding`` now: the keymap's when it rebinds the binding's id (Textual then
    drops the binding's own ``key_display`` too), else the binding's own."""
    if binding.id is not None and binding.id in keymap:
        return key_label(keymap[binding.id])
    return binding.key_display or key_label(binding.key)


def rebindable_ids(bindings: Iterable[Binding]) -> tuple[str, ...]:
    """The ids of ``bindings`` that ``[ui] keys`` may name, in the order the config documents them."""
    present = {binding.id for binding in bindings if binding.id is not None}
    return tuple(action for action in KEY_ACTIONS if action in present)


def split_overrides(keys: Mapping[str, str], known: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``keys`` as the keymap to apply and the ids no binding has (a config written for another version)."""
    known_ids = set(known)
    usable = {binding_id: key for binding_id, key in keys.items() if binding_id in known_ids and key.strip()}
    return usable, [binding_id for binding_id in keys if binding_id not in known_ids]


def clashes(bindings: Mapping[str, Binding], keymap: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(key, rebound id, other id)`` for each rebound key that another of ``bindings`` still has: Textual
    gives the key to the rebound binding without a word (its clash check skips bindings that have an id)."""
    keys_of = {binding_id: set(key_label(keymap.get(binding_id, binding.key)).split(", "))
               for binding_id, binding in bindings.items()}
    return [(key, rebound, other) for rebound in keymap if rebound in keys_of
            for key in sorted(keys_of[rebound]) for other in keys_of
            if other != rebound and other not in keymap and key in keys_of[other]]
