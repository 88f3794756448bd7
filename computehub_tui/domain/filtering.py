"""The offer filter language shared by the TUI's `/` filter and `computehub-tui offers "FILTER"`.

Free words match GPU, provider or location; predicates narrow numerically or by list::

    h100 vram>=80 price<2.5 gpus>=2 region:US,CA rel>=0.98 provider:vast,runpod spot:no cuda>=12.4

Filtering runs against an ``OfferIndex``: per-field columns built once per refresh, so a keystroke
over 20,000 offers is a few list scans rather than 20,000 method calls per predicate.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from computehub_tui.domain.models import PROVIDER_NAMES, Offer, PricingKind


class FilterError(ValueError):
    """A malformed filter. ``position`` is the 0-based column of the offending character (the end
    of the text when something is missing); ``incomplete`` marks a filter that is only half typed
    (the live `/` box keeps the last valid result and shows a hint rather than an error)."""

    def __init__(self, message: str, position: int, token: str, *, text: str = "",
                 incomplete: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.token = token
        self.text = text
        self.incomplete = incomplete

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"

    def caret(self) -> str:
        """The filter text with a ``^`` under the offending character, on two lines."""
        return f"{self.text}\n{' ' * self.position}^"


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
    "=": operator.eq, ">": operator.gt, "<": operator.lt,
}

NUMERIC_FIELDS: dict[str, tuple[str, Callable[[Offer], float | None]]] = {
    "price": ("total $/h, all-in", lambda o: o.price_hour),
    "pergpu": ("$ per GPU-hour", lambda o: o.price_per_gpu_hour),
    "vram": ("VRAM per GPU (GB)", lambda o: o.vram_gb),
    "totalvram": ("VRAM of all GPUs (GB)", lambda o: o.total_vram_gb),
    "gpus": ("GPU count", lambda o: o.gpu_count),
    "rel": ("reliability, a fraction 0–1", lambda o: o.reliability),
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
    "gpu": "GPU model, spaces ignored (gpu:h100sxm, gpu:\"rtx 4090\")",
    "spot": "yes = interruptible only, no = on-demand only",
    "avail": "yes = available now only",
}
_LIST_ALIASES = {"p": "provider", "prov": "provider", "loc": "region", "country": "region",
                 "model": "gpu", "interruptible": "spot", "available": "avail"}
FIELD_EXAMPLES: dict[str, str] = {
    "price": "price<2.5", "pergpu": "pergpu<=1", "vram": "vram>=80", "totalvram": "totalvram>=160",
    "gpus": "gpus>=2", "rel": "rel>=0.98", "cuda": "cuda>=12.4", "vcpus": "vcpus>=16", "ram": "ram>=64",
    "disk": "disk>=100", "net": "net>=1000", "provider": "provider:vast,runpod", "region": "region:US,CA",
    "gpu": "gpu:4090", "spot": "spot:no", "avail": "avail:yes",
}
_RANGES: dict[str, tuple[float, float, str]] = {
    "rel": (0.0, 1.0, "is a fraction 0–1"),
    "gpus": (0.0, 64.0, "counts the GPUs of one machine (0–64)"),
    "vram": (0.0, 1024.0, "is the VRAM of one GPU in GB"),
    "cuda": (0.0, 20.0, "is a CUDA version like 12.4"),
}
"""Bounds a sensible value lies in (every other numeric field only has to be >= 0)."""
_LIST_COLUMNS: dict[str, Callable[[Offer], Any]] = {
    "provider": lambda o: o.provider,
    "region": lambda o: (o.country.lower(), o.location.lower()),
    "gpu": lambda o: o.gpu.lower().replace(" ", ""),
    "spot": lambda o: o.pricing is PricingKind.INTERRUPTIBLE,
    "avail": lambda o: o.available,
}
_PROVIDER_ALIASES = {"vastai": "vast", "vast.ai": "vast", "lambdalabs": "lambda", "td": "tensordock"}
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


_LEXEME = re.compile(r'(?P<quoted>"[^"]*"?)|(?P<op>>=|<=|!=|==|=|>|<|!)|(?P<colon>:)|(?P<word>[^\s<>=!:"]+)')
_NUMBER_PREFIX = re.compile(r"\$?[+-]?\d*\.?\d*(e[+-]?\d*)?(g|gb)?")
"""What a number looks like while it is still being typed (``-``, ``1e``, ``$``)."""
_FIELD_NAMES: dict[str, str] = {
    **{name: name for name in (*NUMERIC_FIELDS, *LIST_FIELDS)}, **_NUMERIC_ALIASES, **_LIST_ALIASES}
"""Every name a field answers to, mapped to its canonical name."""
_MIN_BARE_FIELD = 3
"""Shorter aliases (``p``) stay usable as free words; longer field names alone are a predicate in progress."""


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str
    """word | quoted | op | colon"""
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def parse_filter(text: str, *, partial: bool = False) -> OfferFilter:
    """Compile ``text``; raises FilterError with the column of the offending character.

    ``partial`` is for the live `/` box: a predicate still being typed at the end (``price``,
    ``price<``, ``spot:``, ``spot:ye``, a word that may become a field name) raises a FilterError
    marked ``incomplete`` instead of being read as a free word, so the table keeps its last result.
    """
    return _Parser(text, partial).parse()


class _Parser:
    def __init__(self, text: str, partial: bool) -> None:
        self.text = text
        self.partial = partial
        self.lexemes = [_Lexeme(str(m.lastgroup), m.group(), m.start()) for m in _LEXEME.finditer(text)]
        self.next = 0
        self.predicates: list[Predicate] = []
        self.words: list[str] = []

    def parse(self) -> OfferFilter:
        while (lexeme := self._take()) is not None:
            if lexeme.kind == "quoted":
                self.words.append(self._phrase(lexeme))
            elif lexeme.kind == "word":
                self._word(lexeme)
            elif lexeme.kind == "op":
                raise self._error(f"'{lexeme.text}' needs a field before it, e.g. price<2.5", lexeme.start)
            else:
                raise self._error("':' needs a field name right before it, e.g. spot:no", lexeme.start)
        return OfferFilter(self.text, tuple(self.predicates), tuple(self.words))

    # -- lexemes ----------------------------------------------------------------------------

    def _peek(self) -> _Lexeme | None:
        return self.lexemes[self.next] if self.next < len(self.lexemes) else None

    def _take(self) -> _Lexeme | None:
        lexeme = self._peek()
        if lexeme is not None:
            self.next += 1
        return lexeme

    def _is_last(self, lexeme: _Lexeme) -> bool:
        """``lexeme`` is the last thing typed, with the cursor right after it."""
        return self._peek() is None and lexeme.end == len(self.text)

    def _error(self, message: str, position: int, *, incomplete: bool = False) -> FilterError:
        token = next((lex.text for lex in self.lexemes if lex.start <= position < lex.end), "")
        return FilterError(message, position, token, text=self.text, incomplete=incomplete and self.partial)

    # -- words and phrases ------------------------------------------------------------------

    def _phrase(self, lexeme: _Lexeme) -> str:
        if len(lexeme.text) < 2 or not lexeme.text.endswith('"'):
            raise self._error('unclosed quote: end the phrase with "', len(self.text), incomplete=True)
        phrase = lexeme.text[1:-1].lower()
        if not phrase.strip():
            raise self._error("empty quotes: put the words to search for between them", lexeme.start)
        return phrase

    def _word(self, lexeme: _Lexeme) -> None:
        following = self._peek()
        if following is not None and following.kind == "colon" and following.start == lexeme.end:
            self.next += 1
            self.predicates.append(self._listed(lexeme, following))
        elif following is not None and following.kind == "op":
            self.next += 1
            self.predicates.append(self._numeric(lexeme, following))
        else:
            self.words.append(self._free_word(lexeme))

    def _free_word(self, lexeme: _Lexeme) -> str:
        word = lexeme.text.lower()
        field = _FIELD_NAMES.get(word)
        if field is not None and len(word) >= _MIN_BARE_FIELD:
            action = "compare it" if field in NUMERIC_FIELDS else "give it a value"
            raise self._error(f"'{word}' is a field ({_describe(field)}): {action}, e.g. {FIELD_EXAMPLES[field]}; "
                              f'to search for the word, quote it: "{word}"', lexeme.start,
                              incomplete=self._peek() is None)
        if self.partial and self._is_last(lexeme):
            fields = sorted({field for name, field in _FIELD_NAMES.items() if name.startswith(word)})
            if fields:
                raise self._error(f"'{word}' may become a field ({', '.join(fields)}); "
                                  "type a space to search for it as a word", lexeme.start, incomplete=True)
        return word

    # -- numeric predicates -----------------------------------------------------------------

    def _numeric(self, name_lexeme: _Lexeme, op_lexeme: _Lexeme) -> NumericPredicate:
        name = name_lexeme.text.lower()
        field = _FIELD_NAMES.get(name, name)
        if field in LIST_FIELDS:
            raise self._error(f"'{name}' is a list field: write {FIELD_EXAMPLES[field]}", name_lexeme.start)
        if field not in NUMERIC_FIELDS:
            raise self._error(f"unknown field '{name}' (numeric fields: {', '.join(NUMERIC_FIELDS)})",
                              name_lexeme.start)
        op = op_lexeme.text
        if op == "!":
            raise self._error("'!' is only used as '!='", op_lexeme.start, incomplete=self._is_last(op_lexeme))
        value = self._take()
        if value is None:
            raise self._error(f"'{name}{op}' needs a number, e.g. {FIELD_EXAMPLES[field]}", op_lexeme.end,
                              incomplete=True)
        if value.kind != "word":
            raise self._error(f"'{name}{op}' needs a number, got '{value.text}'", value.start)
        number = self._number(name, op, value)
        self._check_range(field, name, op, number, value)
        return NumericPredicate(field, op, number)

    def _number(self, name: str, op: str, lexeme: _Lexeme) -> float:
        raw = lexeme.text.lower()
        try:
            number = float(raw.removeprefix("$").removesuffix("gb"))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            still_typing = self._is_last(lexeme) and _NUMBER_PREFIX.fullmatch(raw) is not None
            raise self._error(f"'{name}{op}' needs a number, got '{lexeme.text}'", lexeme.start,
                              incomplete=still_typing)
        return number

    def _check_range(self, field: str, name: str, op: str, number: float, lexeme: _Lexeme) -> None:
        low, high, meaning = _RANGES.get(field, (0.0, math.inf, "cannot be negative"))
        if low <= number <= high:
            return
        suggestion = ""
        if field == "rel" and 1 < number <= 100:
            suggestion = f"{name}{op}{number / 100:g}"
        elif field == "cuda" and 100 <= number < 1000:
            suggestion = f"{name}{op}{number / 10:g}"
        elif field == "vram" and number > high:
            suggestion = f"totalvram{op}{number:g}"
        hint = f" (did you mean {suggestion}?)" if suggestion else ""
        raise self._error(f"{name} {meaning}{hint}", lexeme.start)

    # -- list predicates --------------------------------------------------------------------

    def _listed(self, name_lexeme: _Lexeme, colon: _Lexeme) -> ListPredicate:
        name = name_lexeme.text.lower()
        field = _FIELD_NAMES.get(name, name)
        if field in NUMERIC_FIELDS:
            raise self._error(f"'{name}' is a number: compare it, e.g. {FIELD_EXAMPLES[field]}", name_lexeme.start)
        if field not in LIST_FIELDS:
            raise self._error(f"unknown field '{name}:' (list fields: {', '.join(LIST_FIELDS)})", name_lexeme.start)
        values = self._list_values()
        if not values:
            raise self._error(f"'{field}:' needs a value, e.g. {FIELD_EXAMPLES[field]}", colon.end,
                              incomplete=self._peek() is None)
        if field == "provider":
            return ListPredicate(field, tuple(self._provider(value, start) for value, start in values))
        if field == "gpu":
            return ListPredicate(field, tuple(value.replace(" ", "") for value, _ in values))
        if field == "region":
            return ListPredicate(field, tuple(value for value, _ in values))
        return ListPredicate(field, (self._flag(field, *values[0]),))

    def _list_values(self) -> list[tuple[str, int]]:
        """The comma-separated values after a colon (a quoted value may hold spaces), with columns."""
        values: list[tuple[str, int]] = []
        previous: _Lexeme | None = None
        while (lexeme := self._peek()) is not None and lexeme.kind in ("word", "quoted") and (
                previous is None or lexeme.start == previous.end):
            self.next += 1
            if lexeme.kind == "quoted":
                values.append((self._phrase(lexeme), lexeme.start + 1))
            else:
                offset = 0
                for part in lexeme.text.split(","):
                    if part:
                        values.append((part.lower(), lexeme.start + offset))
                    offset += len(part) + 1
            previous = lexeme
        return values

    def _still_typing(self, value: str, start: int, candidates: Iterable[str]) -> bool:
        return self.partial and self._peek() is None and start + len(value) == len(self.text) and any(
            candidate.startswith(value) for candidate in candidates)

    def _provider(self, value: str, start: int) -> str:
        provider = _PROVIDER_ALIASES.get(value, value)
        if provider in PROVIDER_NAMES:
            return provider
        raise self._error(f"unknown provider '{value}' (providers: {', '.join(PROVIDER_NAMES)})", start,
                          incomplete=self._still_typing(value, start, (*PROVIDER_NAMES, *_PROVIDER_ALIASES)))

    def _flag(self, field: str, value: str, start: int) -> bool:
        if value in _YES:
            return True
        if value in _NO:
            return False
        raise self._error(f"'{field}:' takes yes or no, got '{value}'", start,
                          incomplete=self._still_typing(value, start, (*_YES, *_NO)))


def _describe(field: str) -> str:
    return NUMERIC_FIELDS[field][0] if field in NUMERIC_FIELDS else LIST_FIELDS[field]


def field_reference() -> list[tuple[str, str, str]]:
    """(names, meaning, example) for every field, for the help screen and documentation."""
    rows = []
    for field in (*NUMERIC_FIELDS, *LIST_FIELDS):
        aliases = sorted(name for name, canonical in _FIELD_NAMES.items() if canonical == field and name != field)
        names = field + (f" ({', '.join(aliases)})" if aliases else "")
        rows.append((names, _describe(field), FIELD_EXAMPLES[field]))
    return rows
