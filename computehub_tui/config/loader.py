"""Layered settings: defaults < config file < environment < flags, with where each value came from
and every problem reported as ``file:line: dotted.key: message``."""

from __future__ import annotations

import keyword
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from computehub_tui.config.locate import key_lines
from computehub_tui.config.schema import DurationField, Settings, did_you_mean

ENV_PREFIX = "COMPUTEHUB_"
LEGACY_ENDPOINT_ENV: dict[str, str] = {
    "COMPUTEHUB_VAST_URL": "providers.vast.url",
    "COMPUTEHUB_RUNPOD_GRAPHQL_URL": "providers.runpod.graphql_url",
    "COMPUTEHUB_RUNPOD_REST_URL": "providers.runpod.rest_url",
    "COMPUTEHUB_LAMBDA_URL": "providers.lambda.url",
    "COMPUTEHUB_TENSORDOCK_URL": "providers.tensordock.url",
}
"""The endpoint variables of earlier versions keep working (a new-style variable wins)."""
MOVED_KEYS: dict[str, str] = {
    "offers_interval_s": "poll.offers_s",
    "instances_interval_s": "poll.instances_s",
    "default_disk_gb": "offers.disk_gb",
    "min_reliability": "offers.min_reliability",
    "offer_limit": "offers.limit",
    "demo_seed": "demo.seed",
    "demo_vast_offers": "demo.vast_offers",
    "vast": "providers.vast",
    "runpod": "providers.runpod",
    "lambda": "providers.lambda",
    "tensordock": "providers.tensordock",
}
"""Flat keys of the first config format and where they live now."""
SECRET_NAMES = frozenset({"api_key", "key", "token", "password", "secret", "passphrase", "bot_token"})
"""Keys that would hold a secret; the file may only say where to get one (``*_file``, ``*_command``)."""
NOT_SETTINGS = frozenset({
    "COMPUTEHUB_CONFIG", "COMPUTEHUB_DATA_DIR", "COMPUTEHUB_PASSPHRASE_FILE", "COMPUTEHUB_DEBUG",
    "COMPUTEHUB_TELEGRAM_TOKEN", "COMPUTEHUB_SMTP_PASSWORD", "COMPUTEHUB_WEBHOOK_SECRET",
})


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one effective value came from."""

    kind: str
    """default | file | environment | flag"""
    where: str = ""
    """``config.toml:12``, ``COMPUTEHUB_POLL_INSTANCES_S`` or ``--set poll.instances_s=10``."""

    def __str__(self) -> str:
        return self.kind if not self.where else f"{self.kind} {self.where}"


DEFAULT = Origin("default")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the configuration, in the form ``where: key: message``."""

    where: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}" if self.key else f"{self.where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used. ``str()`` is one line (the first problem and how many more);
    ``problems`` has every one."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        self.problems: list[Problem] = (
            [Problem("configuration", "", problems)] if isinstance(problems, str) else list(problems))
        first = str(self.problems[0])
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''}; run `computehub-tui config validate`)" \
            if more else ""
        super().__init__(first + suffix)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One setting: its dotted key, its environment variable and the field that validates it."""

    key: str
    env: str
    field: FieldInfo

    @property
    def is_duration(self) -> bool:
        return any(isinstance(item, DurationField) for item in self.field.metadata)

    @property
    def is_table(self) -> bool:
        return get_origin(self.field.annotation) is dict


def leaves(model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every setting in file order: ``poll.offers_s`` … ``retention.audit``."""
    for name, field in model.model_fields.items():
        key = (*prefix, field.alias or name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaves(annotation, key)
        else:
            yield Leaf(".".join(key), ENV_PREFIX + "_".join(part.upper() for part in key), field)


LEAVES: dict[str, Leaf] = {leaf.key: leaf for leaf in leaves()}
SECTIONS: frozenset[str] = frozenset(
    ".".join(key.split(".")[:depth]) for key in LEAVES for depth in range(1, key.count(".") + 1))
"""Every table name: ``poll``, ``providers``, ``providers.vast`` …"""


@dataclass(frozen=True)
class Layers:
    """What each source said, before validation: raw values and where each was written."""

    raw: dict[str, Any]
    origins: dict[str, Origin]
    problems: list[Problem]


def read_layers(path: Path | None, environ: Mapping[str, str], flags: Sequence[str] = (), *,
                text: str | None = None) -> Layers:
    """Collect file, environment and flag values (later sources win) and every problem found on the way."""
    raw: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    problems: list[Problem] = []
    if path is not None and (text is not None or path.exists()):
        _read_file(path, text, raw, origins, problems)
    _read_environment(environ, raw, origins, problems)
    _read_flags(flags, raw, origins, problems)
    return Layers(raw, origins, problems)


def _read_file(path: Path, text: str | None, raw: dict[str, Any], origins: dict[str, Origin],
               problems: list[Problem]) -> None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(name, "", f"cannot read ({error})"))
        return
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+)", str(error))
        line = found.group(1) if found else None
        message = str(error).split(" (at line")[0]
        problems.append(Problem(f"{name}:{line}" if line else name, "", f"not valid TOML: {message}"))
        return
    lines = key_lines(text)

    def where(key: str) -> str:
        line = lines.get(key)
        return f"{name}:{line}" if line else name

    for key, value in _flatten(document):
        top = key.split(".")[0]
        if top in MOVED_KEYS:
            new = MOVED_KEYS[top] + key[len(top):]
            old = f"[{top}]" if "." in key or isinstance(value, dict) else top
            problems.append(Problem(where(key), key, f"{old} has moved: write it as {_written(new)}"))
            continue
        last = key.rsplit(".", 1)[-1]
        if last in SECRET_NAMES:
            problems.append(Problem(where(key), key, "secrets are never stored in the config file: keep them "
                                                     f"in the vault (`computehub-tui keys set`) or point to them "
                                                     f"with {last}_file / {last}_command"))
            continue
        if key not in LEAVES and not any(key.startswith(table + ".") for table in _tables_of_dicts()):
            problems.append(Problem(where(key), key, _unknown(key)))
            continue
        _put(raw, key, value)
        origins[_leaf_of(key)] = Origin("file", where(key))


def _read_environment(environ: Mapping[str, str], raw: dict[str, Any], origins: dict[str, Origin],
                      problems: list[Problem]) -> None:
    by_env = {leaf.env: leaf for leaf in LEAVES.values()}
    for variable, key in LEGACY_ENDPOINT_ENV.items():
        if environ.get(variable) and not environ.get(LEAVES[key].env):
            _put(raw, key, environ[variable])
            origins[key] = Origin("environment", variable)
    prefixes = tuple(ENV_PREFIX + section.split(".")[0].upper() + "_" for section in SECTIONS)
    for variable in sorted(environ):
        if variable in by_env:
            leaf = by_env[variable]
            value = _typed_text(leaf, environ[variable], variable, problems)
            if value is not None:
                _put(raw, leaf.key, value)
                origins[leaf.key] = Origin("environment", variable)
        elif variable.startswith(prefixes) and variable not in NOT_SETTINGS and variable not in LEGACY_ENDPOINT_ENV:
            hint = did_you_mean(variable, sorted(by_env))
            problems.append(Problem(variable, "", f"no such setting{hint}"))


def _read_flags(flags: Sequence[str], raw: dict[str, Any], origins: dict[str, Origin],
                problems: list[Problem]) -> None:
    for flag in flags:
        where = f"--set {flag}"
        key, sep, text = flag.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem(where, "", "write --set KEY=VALUE, e.g. --set poll.instances_s=10"))
            continue
        if key not in LEAVES:
            problems.append(Problem(where, key, _unknown(key)))
            continue
        value = _typed_text(LEAVES[key], text.strip(), where, problems)
        if value is not None:
            _put(raw, key, value)
            origins[key] = Origin("flag", where)


def _typed_text(leaf: Leaf, text: str, where: str, problems: list[Problem]) -> Any:
    """Text from the environment or a flag: tables are read as ``{a = "b"}`` or ``a=b,c=d``; every
    other type is left to the validator, which reads numbers, booleans and durations from text."""
    if not leaf.is_table:
        return text
    try:
        value = tomllib.loads(f"value = {text}")["value"]
        if isinstance(value, dict):
            return value
    except tomllib.TOMLDecodeError:
        pass
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if all(len(pair) == 2 for pair in pairs):
        return {name.strip(): value.strip() for name, value in pairs}
    problems.append(Problem(where, leaf.key, "write a table such as {sort_pergpu = \"u\"} or sort_pergpu=u"))
    return None


def validate(layers: Layers, source_name: str) -> Settings:
    """The effective settings, or ConfigError with every problem (the layers' and the validator's)."""
    problems = list(layers.problems)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(layers.raw)
    except ValidationError as error:
        for detail in error.errors():
            key = ".".join(str(part) for part in detail["loc"])
            leaf = _leaf_of(key)
            origin = layers.origins.get(leaf)
            where = origin.where if origin and origin.where else source_name
            problems.append(Problem(where, leaf or key, _message(detail)))
    if problems or settings is None:
        raise ConfigError(sorted(problems, key=_reading_order) or [Problem(source_name, "", "invalid configuration")])
    return settings


def _reading_order(problem: Problem) -> tuple[int, str, int]:
    """File problems by line, then the environment's and the flags' (each source in turn)."""
    name, _, line = problem.where.rpartition(":")
    if line.isdigit():
        return (0, name, int(line))
    kind = 1 if problem.where.startswith(ENV_PREFIX) else 2
    return (kind, problem.where, 0)


def _message(detail: Any) -> str:
    """Pydantic's wording as a user would say it (``must be ≥ 2``)."""
    kind, context = detail["type"], detail.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"must be ≥ {_number(context['ge'])}"
    if kind == "greater_than":
        return f"must be > {_number(context['gt'])}"
    if kind == "less_than_equal":
        return f"must be ≤ {_number(context['le'])}"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type",):
        return "must be text (in quotes)"
    if kind == "literal_error":
        return f"must be one of {context.get('expected', '')}"
    if kind in ("dict_type",):
        return "must be a table, e.g. { sort_pergpu = \"u\" }"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    return str(detail["msg"]).removeprefix("Value error, ")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unknown(key: str) -> str:
    parent, _, last = key.rpartition(".")
    siblings = sorted({leaf.rsplit(".", 1)[-1] for leaf in LEAVES if leaf.rpartition(".")[0] == parent}
                      | {table.rsplit(".", 1)[-1] for table in SECTIONS if table.rpartition(".")[0] == parent})
    hint = did_you_mean(last, siblings) if siblings else did_you_mean(key, sorted(LEAVES))
    elsewhere = sorted(leaf.rpartition(".")[0] for leaf in LEAVES if leaf.rsplit(".", 1)[-1] == last)
    if not hint and elsewhere:
        hint = f" (it belongs in [{elsewhere[0]}])"
    where = f"in [{parent}]" if parent else "at the top level"
    return f"unknown key {where}{hint}"


def _written(key: str) -> str:
    table, _, name = key.rpartition(".")
    return f"[{table}] {name}" if table and name in {leaf.rsplit('.', 1)[-1] for leaf in LEAVES} else f"[{key}]"


def _flatten(document: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Leaves of a parsed file; tables that are values (``ui.keys``) stay whole."""
    for name, value in document.items():
        key = (*prefix, name)
        dotted = ".".join(key)
        if isinstance(value, dict) and dotted not in LEAVES:
            if not value:
                yield dotted, value
            yield from _flatten(value, key)
        else:
            yield dotted, value


def _tables_of_dicts() -> tuple[str, ...]:
    return tuple(key for key, leaf in LEAVES.items() if leaf.is_table)


def _leaf_of(key: str) -> str:
    """The setting a key belongs to (``ui.keys.monitor`` → ``ui.keys``)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in LEAVES:
            return candidate
    return key


def _put(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def value_at(settings: BaseModel, key: str) -> Any:
    """The value of dotted ``key`` in ``settings`` (``providers.lambda.url`` reads ``lambda_``, ``alerts.email.from``
    reads ``from_``)."""
    node: Any = settings
    for part in key.split("."):
        node = getattr(node, f"{part}_" if keyword.iskeyword(part) else part)
    return node


def environment_of(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def type_name(leaf: Leaf) -> str:
    """A word for the kind of value, for help and errors."""
    if leaf.is_duration:
        return "duration"
    annotation = leaf.field.annotation
    if get_origin(annotation) is dict:
        return "table"
    if get_args(annotation):
        return "one of " + ", ".join(repr(arg) for arg in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))
