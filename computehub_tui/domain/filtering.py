"""The offer filter language shared by the TUI's `/` filter and `computehub-tui offers "FILTER"`.

Free words match GPU, provider or location; predicates narrow numerically or by list::

    h100 vram>=80 price<2.5 gpus>=2 region:US,CA rel>=0.98 provider:vast,runpod spot:no cuda>=12.4
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
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
_PREDICATE = re.compile(r"^([a-z_]+)(>=|<=|!=|==|=|>|<)(.*)$")
_YES = {"yes", "y", "true", "1", "on"}
_NO = {"no", "n", "false", "0", "off"}

OfferTest = Callable[[Offer], bool]


@dataclass(frozen=True)
class OfferFilter:
    """A compiled filter. ``text`` is what the user typed."""

    text: str
    tests: tuple[OfferTest, ...]
    words: tuple[str, ...]

    def matches(self, offer: Offer) -> bool:
        if self.words:
            haystack = f"{offer.gpu} {offer.provider} {offer.location} {offer.country}".lower()
            if not all(word in haystack for word in self.words):
                return False
        return all(test(offer) for test in self.tests)

    def apply(self, offers: Iterable[Offer]) -> list[Offer]:
        if not self.tests and not self.words:
            return list(offers)
        return [offer for offer in offers if self.matches(offer)]

    @property
    def is_empty(self) -> bool:
        return not self.tests and not self.words


def parse_filter(text: str) -> OfferFilter:
    """Compile ``text``; raises FilterError naming the bad token and its column."""
    tests: list[OfferTest] = []
    words: list[str] = []
    for match in re.finditer(r"\S+", text):
        token, position = match.group(0), match.start()
        lowered = token.lower()
        predicate = _PREDICATE.match(lowered)
        if predicate:
            tests.append(_numeric_test(*predicate.groups(), token=token, position=position))
        elif ":" in lowered and not lowered.startswith(":"):
            field, _, values = lowered.partition(":")
            tests.append(_list_test(field, values, token=token, position=position))
        elif lowered.startswith((">", "<", "=", "!")) or lowered.endswith((">", "<", "=", ":")):
            raise FilterError("incomplete predicate", position, token)
        else:
            words.append(lowered)
    return OfferFilter(text, tuple(tests), tuple(words))


def _numeric_test(field: str, op: str, raw_value: str, *, token: str, position: int) -> OfferTest:
    field = _NUMERIC_ALIASES.get(field, field)
    if field not in NUMERIC_FIELDS:
        known = ", ".join(sorted(NUMERIC_FIELDS))
        raise FilterError(f"unknown field '{field}' (numeric fields: {known})", position, token)
    value_text = raw_value.lstrip("$").rstrip("gb")
    try:
        value = float(value_text)
    except ValueError:
        raise FilterError(f"'{field}{op}' needs a number, got '{raw_value}'", position, token) from None
    compare = _OPERATORS[op]
    getter = NUMERIC_FIELDS[field][1]

    def test(offer: Offer) -> bool:
        actual = getter(offer)
        return actual is not None and compare(actual, value)

    return test


def _list_test(field: str, values_text: str, *, token: str, position: int) -> OfferTest:
    field = _LIST_ALIASES.get(field, field)
    values = [value for value in values_text.split(",") if value]
    if field not in LIST_FIELDS:
        known = ", ".join(sorted(LIST_FIELDS))
        raise FilterError(f"unknown field '{field}:' (list fields: {known})", position, token)
    if not values:
        raise FilterError(f"'{field}:' needs at least one value", position, token)
    if field == "provider":
        wanted = {_provider_alias(v) for v in values}
        return lambda offer: offer.provider in wanted
    if field == "region":
        return lambda offer: any(
            v == offer.country.lower() or v in offer.location.lower() for v in values
        )
    if field == "gpu":
        squeezed = [v.replace(" ", "") for v in values]
        return lambda offer: any(v in offer.gpu.lower().replace(" ", "") for v in squeezed)
    flag = _flag(values[0], field, token, position)
    if field == "spot":
        kind = PricingKind.INTERRUPTIBLE if flag else PricingKind.ON_DEMAND
        return lambda offer: offer.pricing is kind
    return lambda offer: offer.available is flag


def _flag(value: str, field: str, token: str, position: int) -> bool:
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise FilterError(f"'{field}:' takes yes or no, got '{value}'", position, token)


def _provider_alias(value: str) -> str:
    return {"vastai": "vast", "vast.ai": "vast", "lambdalabs": "lambda", "td": "tensordock"}.get(value, value)
