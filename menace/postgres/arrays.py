"""Arrays the stores send often, packed in PostgreSQL's binary array format by one ``struct`` call.

psycopg dumps a Python list element by element in Python (a call and a pack
per element); a batch of 100 runs sends arrays of its ~50 pathways' keys and
ids several times, and that dumping was a quarter of the client's work in
reading a batch's pathways. These helpers build the same bytes at once, as a
``bytes`` subclass whose dumper (:func:`register`, done on every connection
the stores open) sends it as is, typed::

    conn.execute("SELECT %b::int8[]", (int8_array([1, 2, 3]),))

The binary array format: dimensions, a has-nulls flag, the element type's
oid, then per dimension its length and lower bound (1), then each element as
its byte length and its binary value (a ``None`` element: length -1, no value).
"""

from __future__ import annotations

import struct
from typing import Any

# Type oids (pg_type): the element, and the array of it.
_INT4, _INT4_ARRAY = 23, 1007
_INT8, _INT8_ARRAY = 20, 1016
_BYTEA, _BYTEA_ARRAY = 17, 1001
_FLOAT8, _FLOAT8_ARRAY = 701, 1022


class PackedArray(bytes):
    """An array already in PostgreSQL's binary format (the subclasses say of which type)."""

    oid = 0


class Int4Array(PackedArray):
    oid = _INT4_ARRAY


class Int8Array(PackedArray):
    oid = _INT8_ARRAY


class ByteaArray(PackedArray):
    oid = _BYTEA_ARRAY


class Float8Array(PackedArray):
    oid = _FLOAT8_ARRAY


def _empty(element_oid: int) -> bytes:
    return struct.pack(">iiI", 0, 0, element_oid)


def _numbers(values: list, element_oid: int, code: str) -> bytes:
    count = len(values)
    if not count:
        return _empty(element_oid)
    size = struct.calcsize(code)
    if None in values:  # NULL elements: length -1 and no value
        flat: list = []
        for value in values:
            flat += (-1,) if value is None else (size, value)
        layout = "".join("i" if value is None else "i" + code for value in values)
        return struct.pack(f">iiIii{layout}", 1, 1, element_oid, count, 1, *flat)
    flat = [size] * (2 * count)
    flat[1::2] = values
    return struct.pack(f">iiIii{('i' + code) * count}", 1, 0, element_oid, count, 1, *flat)


def _blobs(values: list, element_oid: int) -> bytes:
    count = len(values)
    if not count:
        return _empty(element_oid)
    pack = _LENGTH.pack
    parts = [struct.pack(">iiIii", 1, 1 if None in values else 0, element_oid, count, 1)]
    for value in values:
        if value is None:
            parts.append(_NULL)
        else:
            parts.append(pack(len(value)))
            parts.append(value)
    return b"".join(parts)


_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)


def int4_array(values: list) -> Int4Array:
    """``values`` (each -2**31..2**31-1, or ``None``) as an ``int4[]``; ``struct.error`` when one
    is out of range."""
    return Int4Array(_numbers(values, _INT4, "i"))


def int8_array(values: list) -> Int8Array:
    """``values`` (each a signed 64-bit int, or ``None``) as an ``int8[]``; ``struct.error`` when
    one is out of range."""
    return Int8Array(_numbers(values, _INT8, "q"))


def float8_array(values: list) -> Float8Array:
    """``values`` (each a float, or ``None``) as a ``float8[]``."""
    return Float8Array(_numbers(values, _FLOAT8, "d"))


def bytea_array(values: list) -> ByteaArray:
    """``values`` (bytes, or ``None``) as a ``bytea[]``."""
    return ByteaArray(_blobs(values, _BYTEA))


def register(adapters: Any) -> None:
    """Let ``adapters`` (a connection's) send the packed arrays as they are, in binary."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    for kind in (Int4Array, Int8Array, ByteaArray, Float8Array):
        dumper = type(f"{kind.__name__}Dumper", (Dumper,), {
            "format": Format.BINARY, "oid": kind.oid, "dump": lambda self, obj: obj,
        })
        adapters.register_dumper(kind, dumper)


__all__ = ["ByteaArray", "Float8Array", "Int4Array", "Int8Array", "PackedArray", "bytea_array", "float8_array",
           "int4_array", "int8_array", "register"]
