"""Private columnar codec for offer snapshots: tens of thousands of offers in a few tens of milliseconds.

A payload is a 4-byte header length, a JSON header naming each column, its encoding and its size, then
the columns one after another: numbers as raw little-endian arrays (exact, no text round trip), short
repeated strings as a table of distinct values plus one code per offer, unique strings as a JSON list.
The header makes a payload self-describing: a column this code does not know is skipped, and a column
a payload lacks takes the field's default, so adding a field to ``Offer`` keeps old snapshots readable.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from itertools import chain
from operator import attrgetter
from typing import Any

from computehub_tui.domain.models import Offer, PricingKind

OFFERS_FORMAT = 1
_HEADER_SIZE = struct.Struct("<I")
_NAN = float("nan")
_LITTLE_ENDIAN = sys.byteorder == "little"

# Every Offer field and how it is stored; a field missing here fails test_offer_columns_cover_every_field.
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
    """Each offer's key set as a code into a table of key sets, then every value in one flat JSON list."""
    shapes, codes = _dictionary(list(map(tuple, values)))
    flat = list(chain.from_iterable(map(dict.values, values)))
    return _parts(_json_bytes(shapes), _encode_codes(codes), _json_bytes(flat))


def _decode_extra(section: memoryview) -> list[dict[str, Any]]:
    table, codes, flat_json = _split_parts(section, 3)
    shapes = json.loads(bytes(table))
    if not isinstance(shapes, list) or not all(
            isinstance(shape, list) and all(type(key) is str for key in shape) for shape in shapes):
        raise OffersDecodeError("an extra column holds a key that is not text")
    flat = json.loads(bytes(flat_json))
    offer_shapes = _lookup(shapes, _decode_codes(codes))
    if not isinstance(flat, list) or sum(map(len, offer_shapes)) != len(flat):
        raise OffersDecodeError("the extra column's values do not match its keys")
    values = iter(flat)
    # zip stops at the end of the shape before it takes a value, so each offer takes only its own.
    return [dict(zip(shape, values)) for shape in offer_shapes]


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


def _split_parts(section: memoryview, count: int) -> list[memoryview]:
    chunks, at = [], 0
    for _ in range(count):
        (size,) = _HEADER_SIZE.unpack_from(section, at)
        at += _HEADER_SIZE.size
        chunks.append(section[at:at + size])
        at += size
    if at != len(section):
        raise OffersDecodeError("a coded column has trailing bytes")
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
