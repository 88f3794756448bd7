"""Private columnar codec for offer snapshots: compact, exact, and cheap enough to run after every poll.

A payload is a 4-byte header length, a JSON header naming each column, its encoding and its size, then
the columns one after another: numbers as raw little-endian arrays (exact, no text round trip), short
repeated strings as a table of distinct values plus one code per offer, unique strings as a JSON list,
and ``extra`` as one such column per key (see ``_encode_extra``).
The header makes a payload self-describing: a column this code does not know is skipped, and a column
a payload lacks takes the field's default, so adding a field to ``Offer`` keeps old snapshots readable.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from operator import attrgetter, itemgetter
from typing import Any

from computehub_tui.domain.models import Offer, PricingKind

OFFERS_FORMAT = 1
_HEADER_SIZE = struct.Struct("<I")
_NAN = float("nan")
_LITTLE_ENDIAN = sys.byteorder == "little"

# Every Offer field and how it is stored; test_the_codec_stores_every_offer_field fails when one is missing.
OFFER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("provider", "label"),
    ("offer_id", "text"),
    ("gpu", "label"),
    ("gpu_count", "int"),
    ("vram_gb", "float"),
    ("vcpus", "float"),
    ("ram_gb", "float"),
    ("disk_gb", "float"),
    ("price_hour", "float"),
    ("pricing", "pricing"),
    ("location", "label"),
    ("reliability", "float?"),
    ("available", "bool"),
    ("quoted_at", "float"),
    ("country", "label"),
    ("cuda", "float?"),
    ("inet_down_mbps", "float?"),
    ("storage_gb_month", "float?"),
    ("min_bid", "float?"),
    ("raw_gpu_name", "label"),
    ("extra", "extra"),
)
_OFFER_FIELDS = {f.name: f for f in fields(Offer)}
_PRICING_KINDS = tuple(PricingKind)


class OffersDecodeError(ValueError):
    """A stored offers snapshot is not one this code can turn back into offers."""


def encode_offers(offers: Sequence[Offer]) -> bytes:
    """The payload for ``offers`` (all of one provider, or any mix)."""
    layout: list[list[Any]] = []
    sections: list[bytes] = []
    for name, kind in OFFER_COLUMNS:
        section = _ENCODERS[kind](list(map(attrgetter(name), offers)))
        layout.append([name, kind, len(section)])
        sections.append(section)
    header = json.dumps({"format": OFFERS_FORMAT, "count": len(offers), "columns": layout},
                        separators=(",", ":")).encode()
    return b"".join((_HEADER_SIZE.pack(len(header)), header, *sections))


def decode_offers(payload: bytes) -> list[Offer]:
    try:
        count, columns = _read_columns(memoryview(payload))
        values: list[list[Any]] = []
        for name, _ in OFFER_COLUMNS:
            values.append(columns[name] if name in columns else _default_column(name, count))
        return [Offer(*row) for row in zip(*values, strict=True)]
    except OffersDecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, struct.error) as error:
        raise OffersDecodeError(f"unreadable offers snapshot: {error}") from error


def _read_columns(payload: memoryview) -> tuple[int, dict[str, list[Any]]]:
    (header_size,) = _HEADER_SIZE.unpack_from(payload)
    start = _HEADER_SIZE.size + header_size
    header = json.loads(bytes(payload[_HEADER_SIZE.size:start]))
    if header.get("format") != OFFERS_FORMAT:
        raise OffersDecodeError(f"offers snapshot format {header.get('format')!r} is not {OFFERS_FORMAT}")
    count = int(header["count"])
    columns: dict[str, list[Any]] = {}
    known = dict(OFFER_COLUMNS)
    for name, kind, size in header["columns"]:
        section, start = payload[start:start + size], start + size
        if len(section) != size:
            raise OffersDecodeError(f"the {name} column is cut short")
        if known.get(name) != kind:
            continue  # written by a newer version, or a field since re-encoded: its default is used
        column = _DECODERS[kind](section)
        if len(column) != count:
            raise OffersDecodeError(f"the {name} column has {len(column)} values, not {count}")
        columns[name] = column
    if start != len(payload):
        raise OffersDecodeError("the offers snapshot has trailing bytes")
    return count, columns


def _default_column(name: str, count: int) -> list[Any]:
    """The field's default for every offer, for a column an older payload does not have."""
    field = _OFFER_FIELDS[name]
    if field.default is not MISSING:
        return [field.default] * count
    if field.default_factory is not MISSING:
        return [field.default_factory() for _ in range(count)]
    raise OffersDecodeError(f"the snapshot has no {name} column")


# -- column encodings --------------------------------------------------------------------------------

def _encode_text(values: list[str]) -> bytes:
    return _json_bytes(values)


def _decode_text(section: memoryview) -> list[str]:
    values = json.loads(bytes(section))
    if not isinstance(values, list) or not all(type(value) is str for value in values):
        raise OffersDecodeError("a text column holds something other than text")
    return values


def _encode_label(values: list[str]) -> bytes:
    """Distinct values as JSON, then one code per value: GPU names and locations repeat a lot."""
    table, codes = _dictionary(values)
    return _parts(_json_bytes(table), _encode_codes(codes))


def _decode_label(section: memoryview) -> list[str]:
    table, codes = _split_parts(section, 2)
    return _lookup(_decode_text(table), _decode_codes(codes))


def _encode_pricing(values: list[PricingKind]) -> bytes:
    # tuple.index compares by identity first; hashing an Enum member runs Python code, so no dict here.
    codes = [_PRICING_KINDS.index(value) for value in values]
    return _parts(_json_bytes([kind.value for kind in _PRICING_KINDS]), _encode_codes(codes))


def _decode_pricing(section: memoryview) -> list[PricingKind]:
    table, codes = _split_parts(section, 2)
    return _lookup([PricingKind(value) for value in _decode_text(table)], _decode_codes(codes))


def _encode_extra(values: list[dict[str, Any]]) -> bytes:
    """Offers grouped by their key set (most of a provider's offers share one); each key of a group is
    then a column of its own, stored the cheapest way its values' types allow."""
    shapes, codes = _dictionary(list(map(tuple, values)))
    groups: list[list[dict[str, Any]]] = [[] for _ in shapes]
    for extra, code in zip(values, codes, strict=True):
        groups[code].append(extra)
    layout: list[list[Any]] = []
    sections: list[bytes] = []
    for shape, group in zip(shapes, groups, strict=True):
        for key in shape:
            kind, section = _encode_value_column(list(map(itemgetter(key), group)))
            layout.append([kind, len(section)])
            sections.append(section)
    header = _json_bytes({"shapes": shapes, "columns": layout})
    return _parts(header, _encode_codes(codes), *sections)


def _decode_extra(section: memoryview) -> list[dict[str, Any]]:
    header_json, codes_section, rest = _split_parts(section, 2, keep_rest=True)
    header = json.loads(bytes(header_json))
    shapes, layout = header["shapes"], header["columns"]
    if not all(isinstance(shape, list) and all(type(key) is str for key in shape) for shape in shapes):
        raise OffersDecodeError("an extra column holds a key that is not text")
    if len(layout) != sum(map(len, shapes)):
        raise OffersDecodeError("the extra column's values do not match its keys")
    codes = _decode_codes(codes_section)
    sizes = Counter(codes)
    columns = iter(_split_parts(rest, len(layout)))
    kinds = iter(layout)
    groups = []
    for code, shape in enumerate(shapes):
        values = [_decode_value_column(next(kinds)[0], next(columns)) for _ in shape]
        rows = zip(*values, strict=True) if shape else iter([()] * sizes[code])
        group = [dict(zip(shape, row, strict=True)) for row in rows]
        if len(group) != sizes[code]:
            raise OffersDecodeError("the extra column's values do not match its keys")
        groups.append(iter(group))
    return [next(groups[code]) for code in codes]


def _encode_value_column(values: list[Any]) -> tuple[str, bytes]:
    """The kind and bytes for values of any JSON type: typed arrays where the types allow, exactly."""
    types = set(map(type, values))
    if types == {float}:
        return "float", _encode_floats(values)
    if types == {float, type(None)}:
        return "float?", _encode_optional_floats(values)
    if types == {int}:
        try:
            return "int", _encode_ints(values)
        except OverflowError:
            pass  # beyond 64 bits: JSON keeps it exactly
    if types == {str}:
        return "label", _encode_label(values)
    return "json", _json_bytes(values)


def _decode_value_column(kind: str, section: memoryview) -> list[Any]:
    if kind == "json":
        values = json.loads(bytes(section))
        if not isinstance(values, list):
            raise OffersDecodeError("an extra column is not a list")
        return values
    if kind not in ("float", "float?", "int", "label"):
        raise OffersDecodeError(f"an extra column has the unknown kind {kind!r}")
    return _DECODERS[kind](section)


def _encode_floats(values: list[float]) -> bytes:
    return _array_bytes(array("d", values))


def _decode_floats(section: memoryview) -> list[float]:
    return _array_of("d", section).tolist()


def _encode_optional_floats(values: list[float | None]) -> bytes:
    """NaN stands for None: unknown stays unknown (an offer never carries a NaN that means anything)."""
    return _array_bytes(array("d", [_NAN if value is None else value for value in values]))


def _decode_optional_floats(section: memoryview) -> list[float | None]:
    return [None if math.isnan(value) else value for value in _array_of("d", section)]


def _encode_ints(values: list[int]) -> bytes:
    return _array_bytes(array("q", values))


def _decode_ints(section: memoryview) -> list[int]:
    return _array_of("q", section).tolist()


def _encode_bools(values: list[bool]) -> bytes:
    return bytes(values)


def _decode_bools(section: memoryview) -> list[bool]:
    if max(section, default=0) > 1:
        raise OffersDecodeError("a yes/no column holds something else")
    return list(map(bool, section))


_ENCODERS: dict[str, Callable[[list[Any]], bytes]] = {
    "text": _encode_text, "label": _encode_label, "pricing": _encode_pricing, "extra": _encode_extra,
    "float": _encode_floats, "float?": _encode_optional_floats, "int": _encode_ints, "bool": _encode_bools,
}
_DECODERS: dict[str, Callable[[memoryview], list[Any]]] = {
    "text": _decode_text, "label": _decode_label, "pricing": _decode_pricing, "extra": _decode_extra,
    "float": _decode_floats, "float?": _decode_optional_floats, "int": _decode_ints, "bool": _decode_bools,
}


# -- building blocks ---------------------------------------------------------------------------------

def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _parts(*chunks: bytes) -> bytes:
    """Chunks, each after its 4-byte length."""
    return b"".join(part for chunk in chunks for part in (_HEADER_SIZE.pack(len(chunk)), chunk))


def _split_parts(section: memoryview, count: int, *, keep_rest: bool = False) -> list[memoryview]:
    """The ``count`` chunks ``_parts`` wrote, plus (with ``keep_rest``) whatever follows them."""
    chunks, at = [], 0
    for _ in range(count):
        (size,) = _HEADER_SIZE.unpack_from(section, at)
        at += _HEADER_SIZE.size
        if at + size > len(section):
            raise OffersDecodeError("a column is cut short")
        chunks.append(section[at:at + size])
        at += size
    if keep_rest:
        chunks.append(section[at:])
    elif at != len(section):
        raise OffersDecodeError("a column has trailing bytes")
    return chunks


def _encode_codes(codes: list[int]) -> bytes:
    """Codes in as few bytes each as the largest needs, after a one-letter array type."""
    largest = max(codes, default=0)
    typecode = "B" if largest < 1 << 8 else "H" if largest < 1 << 16 else "I"
    return typecode.encode() + _array_bytes(array(typecode, codes))


def _decode_codes(section: memoryview) -> array[int]:
    typecode = bytes(section[:1]).decode()
    if typecode not in ("B", "H", "I"):
        raise OffersDecodeError("a coded column has an unknown code width")
    return _array_of(typecode, section[1:])


def _dictionary(values: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct values in first-seen order, and each value's position among them."""
    table = list(dict.fromkeys(values))
    position = {value: index for index, value in enumerate(table)}
    return table, list(map(position.__getitem__, values))


def _lookup(table: list[Any], codes: array[int]) -> list[Any]:
    return list(map(table.__getitem__, codes))


def _array_bytes(values: array[Any]) -> bytes:
    if not _LITTLE_ENDIAN:
        values.byteswap()
    return values.tobytes()


def _array_of(typecode: str, section: memoryview) -> array[Any]:
    values = array(typecode)
    if len(section) % values.itemsize:
        raise OffersDecodeError("a number column is cut short")
    values.frombytes(section)
    if not _LITTLE_ENDIAN:
        values.byteswap()
    return values
