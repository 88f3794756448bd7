"""The offer filter language shared by the TUI's `/` filter and `computehub-tui offers "FILTER"`.

Free words match GPU, provider or location; predicates narrow numerically or by list::

    h100 vram>=80 price<2.5 gpus>=2 region:US,CA rel>=0.98 provider:vast,runpod spot:no cuda>=12.4

Filtering runs against an ``OfferIndex``: per-field columns built once per refresh, so a keystroke
over 20,000 offers is a few list scans rather than 20,000 method calls per predicate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from computehub_tui.domain.models import Offer, PricingKind


class FilterError(ValueError):
    """A malformed filter; ``position`` is the 0-based column of the offending token."""

    def __init__(self, message: str, position: int, token: str) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.token = token

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1}: {self.token!r})"


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
    "=": operator.eq, ">": operator.gt, "<": operator.lt,
}

NUMERIC_FIELDS: dict[str, tuple[str, Callable[[Offer], float | None]]] = {
    "price": ("total $/h", lambda o: o.price_hour),
    "pergpu": ("$/GPU-h", lambda o: o.price_per_gpu_hour),
    "vram": ("VRAM per GPU (GB)", lambda o: o.vram_gb),
    "totalvram": ("VRAM of all GPUs (GB)", lambda o: o.total_vram_gb),
    "gpus": ("GPU count", lambda o: o.gpu_count),
    "rel": ("reliability 0–1", lambda o: o.reliability),
    "cuda": ("max CUDA version", lambda o: o.cuda),
    "vcpus": ("vCPUs", lambda o: o.vcpus),
    "ram": ("RAM (GB)", lambda o: o.ram_gb),
    "disk": ("disk (GB)", lambda o: o.disk_gb),
    "net": ("download Mb/s", lambda o: o.inet_down_mbps),
}
_NUMERIC_ALIASES = {"vram_gb": "vram", "count": "gpus", "gpu_count": "gpus", "reliability": "rel",
                    "price_per_gpu": "pergpu", "dph": "price", "cpu": "vcpus", "cpus": "vcpus"}

LIST_FIELDS: dict[str, str] = {
    "provider": "provider name (vast, runpod, lambda, tensordock)",
    "region": "country code or location text",
    "gpu": "GPU model, spaces ignored (gpu:h100sxm, gpu:4090)",
    "spot": "yes = interruptible only, no = on-demand only",
    "avail": "yes = available now only",
}
_LIST_ALIASES = {"p": "provider", "prov": "provider", "loc": "region", "country": "region",
                 "model": "gpu", "interruptible": "spot", "available": "avail"}
_LIST_COLUMNS: dict[str, Callable[[Offer], Any]] = {
    "provider": lambda o: o.provider,
    "region": lambda o: (o.country.lower(), o.location.lower()),
    "gpu": lambda o: o.gpu.lower().replace(" ", ""),
    "spot": lambda o: o.pricing is PricingKind.INTERRUPTIBLE,
    "avail": lambda o: o.available,
}
_PREDICATE = re.compile(r"^([a-z_]+)(>=|<=|!=|==|=|>|<)(.*)$")
_YES = {"yes", "y", "true", "1", "on"}
_NO = {"no", "n", "false", "0", "off"}


def search_text(offer: Offer) -> str:
    """What free words are matched against: GPU, provider and location."""
    return f"{offer.gpu} {offer.provider} {offer.location} {offer.country}".lower()


class OfferIndex:
    """Offers in a fixed order with lazily built per-field columns for fast filtering."""

    def __init__(self, offers: Sequence[Offer], columns: dict[str, list[Any]] | None = None) -> None:
        self.offers = list(offers)
        self._columns: dict[str, list[Any]] = columns or {}
        self.column("text")  # every free word needs it; build it now, not on the first keystroke

    def reordered(self, order: Sequence[int]) -> OfferIndex:
        """The same offers in ``order`` (a permutation of positions), keeping every built column,
        so a re-sort costs a few list copies instead of rebuilding the columns."""
        return OfferIndex([self.offers[i] for i in order],
                          {name: [column[i] for i in order] for name, column in self._columns.items()
                           if not name.startswith("sort:")})

    def sort_order(self, name: str, key: Callable[[Offer], Any], reverse: bool) -> list[int]:
        """Positions sorted by ``key``; the key values are computed once per index and name."""
        keys = self._columns.get(f"sort:{name}")
        if keys is None:
            keys = self._columns[f"sort:{name}"] = [key(offer) for offer in self.offers]
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=reverse)

    def column(self, name: str) -> list[Any]:
        if name not in self._columns:
            if name == "text":
                getter: Callable[[Offer], Any] = search_text
            elif name in NUMERIC_FIELDS:
                getter = NUMERIC_FIELDS[name][1]
            else:
                getter = _LIST_COLUMNS[name]
            self._columns[name] = [getter(offer) for offer in self.offers]
        return self._columns[name]


@dataclass(frozen=True)
class NumericPredicate:
    field: str
    op: str
    value: float

    def keep(self, actual: float | None) -> bool:
        return actual is not None and _OPERATORS[self.op](actual, self.value)

    def narrow(self, index: OfferIndex, rows: list[int]) -> list[int]:
        column, compare, value = index.column(self.field), _OPERATORS[self.op], self.value
        return [i for i in rows if (v := column[i]) is not None and compare(v, value)]


@dataclass(frozen=True)
class ListPredicate:
    field: str
    values: tuple[Any, ...]

    def keep(self, actual: Any) -> bool:
        if self.field == "region":
            country, location = actual
            return any(v == country or v in location for v in self.values)
        if self.field == "gpu":
            return any(v in actual for v in self.values)
        return actual in self.values

    def narrow(self, index: OfferIndex, rows: list[int]) -> list[int]:
        column = index.column(self.field)
        if self.field in ("provider", "spot", "avail"):
            wanted = set(self.values)
            return [i for i in rows if column[i] in wanted]
        if len(self.values) == 1 and self.field == "gpu":
            value = self.values[0]
            return [i for i in rows if value in column[i]]
        if len(self.values) == 1 and self.field == "region":
            value = self.values[0]
            return [i for i in rows if value == column[i][0] or value in column[i][1]]
        keep = self.keep
        return [i for i in rows if keep(column[i])]


Predicate = NumericPredicate | ListPredicate


@dataclass(frozen=True)
class OfferFilter:
    """A compiled filter. ``text`` is what the user typed."""

    text: str
    predicates: tuple[Predicate, ...]
    words: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return not self.predicates and not self.words

    def matches(self, offer: Offer) -> bool:
        if self.words:
            text = search_text(offer)
            if not all(word in text for word in self.words):
                return False
        for predicate in self.predicates:
            getter = NUMERIC_FIELDS[predicate.field][1] if isinstance(predicate, NumericPredicate) \
                else _LIST_COLUMNS[predicate.field]
            if not predicate.keep(getter(offer)):
                return False
        return True

    def select(self, index: OfferIndex) -> list[Offer]:
        """The matching offers of ``index``, in index order."""
        if self.is_empty:
            return list(index.offers)
        rows = list(range(len(index.offers)))
        if self.words:
            text = index.column("text")
            for word in self.words:
                rows = [i for i in rows if word in text[i]]
        for predicate in self.predicates:
            rows = predicate.narrow(index, rows)
        offers = index.offers
        return [offers[i] for i in rows]

    def apply(self, offers: Sequence[Offer]) -> list[Offer]:
        return self.select(OfferIndex(offers))


def parse_filter(text: str) -> OfferFilter:
    """Compile ``text``; raises FilterError naming the bad token and its column."""
    predicates: list[Predicate] = []
    words: list[str] = []
    for match in re.finditer(r"\S+", text):
        token, position = match.group(0), match.start()
        lowered = token.lower()
        numeric = _PREDICATE.match(lowered)
        if numeric:
            predicates.append(_numeric(*numeric.groups(), token=token, position=position))
        elif ":" in lowered and not lowered.startswith(":"):
            field, _, values = lowered.partition(":")
            predicates.append(_listed(field, values, token=token, position=position))
        elif lowered.startswith((">", "<", "=", "!")) or lowered.endswith((">", "<", "=", ":")):
            raise FilterError("incomplete predicate", position, token)
        else:
            words.append(lowered)
    return OfferFilter(text, tuple(predicates), tuple(words))


def _numeric(field: str, op: str, raw_value: str, *, token: str, position: int) -> NumericPredicate:
    field = _NUMERIC_ALIASES.get(field, field)
    if field not in NUMERIC_FIELDS:
        known = ", ".join(sorted(NUMERIC_FIELDS))
        raise FilterError(f"unknown field '{field}' (numeric fields: {known})", position, token)
    value_text = raw_value.lstrip("$").removesuffix("gb")
    try:
        value = float(value_text)
    except ValueError:
        raise FilterError(f"'{field}{op}' needs a number, got '{raw_value}'", position, token) from None
    return NumericPredicate(field, op, value)


def _listed(field: str, values_text: str, *, token: str, position: int) -> ListPredicate:
    field = _LIST_ALIASES.get(field, field)
    values = [value for value in values_text.split(",") if value]
    if field not in LIST_FIELDS:
        known = ", ".join(sorted(LIST_FIELDS))
        raise FilterError(f"unknown field '{field}:' (list fields: {known})", position, token)
    if not values:
        raise FilterError(f"'{field}:' needs at least one value", position, token)
    if field == "provider":
        return ListPredicate(field, tuple(_provider_alias(v) for v in values))
    if field == "gpu":
        return ListPredicate(field, tuple(v.replace(" ", "") for v in values))
    if field == "region":
        return ListPredicate(field, tuple(values))
    return ListPredicate(field, (_flag(values[0], field, token, position),))


def _flag(value: str, field: str, token: str, position: int) -> bool:
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise FilterError(f"'{field}:' takes yes or no, got '{value}'", position, token)


def _provider_alias(value: str) -> str:
    return {"vastai": "vast", "vast.ai": "vast", "lambdalabs": "lambda", "td": "tensordock"}.get(value, value)
