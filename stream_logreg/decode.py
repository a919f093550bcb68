"""Message bytes to records (JSON, CSV lines, MessagePack), and the C reader of plain JSON
batches; what a record's fields mean is :class:`stream_logreg.features.Features`' job.

>>> decode_value(b'{"a": 1, "b": "2.5", "label": 1}', make_decoder("json"), Features("label"))
({'a': 1.0, 'b': 2.5}, True)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import orjson

from stream_logreg import _jsonrows
from stream_logreg.exceptions import DecodeError, SchemaError
from stream_logreg.features import Example, Features

__all__ = [
    "DecodeError",
    "JsonRows",
    "Rows",
    "SchemaError",
    "csv_decoder",
    "decode_value",
    "json_decoder",
    "make_decoder",
    "msgpack_decoder",
    "read_value",
]


def json_decoder() -> Callable[[bytes], Mapping[str, Any]]:
    """Bytes holding one JSON object -> mapping (orjson; NaN and Infinity are invalid)."""

    def decode(raw: bytes) -> Mapping[str, Any]:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise SchemaError(f"invalid JSON ({e})") from None
        if not isinstance(record, dict):
            raise SchemaError(f"the JSON is a {type(record).__name__}, not an object")
        return record

    return decode


class Rows(NamedTuple):
    """A batch decoded by :class:`JsonRows`: row i of ``values`` (features in the order of
    ``features``) and ``labels[i]`` hold record i where ``ok[i]``, and mean nothing elsewhere."""

    features: list[Hashable]
    values: np.ndarray
    labels: np.ndarray
    ok: np.ndarray


class JsonRows:
    """Batches of JSON message values to a float64 matrix: the fast path of the Kafka consumer.

    Plain records (flat objects whose values are all numbers, the target 0 or 1, with the
    same keys in the same order as the batch's first record) are read in C, without the
    GIL, straight into rows, bit for bit what ``features.decode(orjson.loads(v))`` gives:
    the columns ``features`` keeps, in its order (hashed: their buckets, with their signs).
    The others (``ok`` False) are for the caller to decode one by one, the slow way, which
    accepts or refuses each with its reason; so are all records whose layout holds a
    categorical field or, hashed, two fields of one bucket.

    >>> rows = JsonRows(Features("label"))
    >>> batch = rows.decode([b'{"a": 1.5, "b": -2, "label": 1}', b'{"a": "x", "label": 1}'])
    >>> batch.features, batch.values[0].tolist(), batch.labels.tolist()[0], batch.ok.tolist()
    (['a', 'b'], [1.5, -2.0], 1.0, [True, False])
    >>> JsonRows(Features("label", drop=["a"])).decode([b'{"a": 1.5, "b": -2, "label": 1}']).features
    ['b']
    >>> JsonRows(Features("label", hash_bits=4)).decode([b'{"a": 1.5, "b": -2, "label": 1}']).features
    [14, 13]
    """

    def __init__(self, features: Features) -> None:
        self.features = features
        self.keys: tuple[str, ...] | None = None
        self._columns: dict[tuple[str, ...], _Columns | None] = {}

    def decode(self, values: list[bytes | None]) -> Rows:
        target = self.features.target
        first = values[0] if values else None
        keys = _jsonrows.layout(first, target) if isinstance(first, bytes) else None
        self.keys = keys or self.keys  # a first record off the plain form keeps the last layout
        if self.keys is None:
            return Rows([], np.empty((len(values), 0)), np.empty(len(values)), np.zeros(len(values), dtype=np.bool_))
        fields = [key for key in self.keys if key != target]
        out, labels = np.empty((len(values), len(fields))), np.empty(len(values))
        ok = np.empty(len(values), dtype=np.uint8)
        _jsonrows.rows(values, self.keys, target, out, labels, ok)
        if self.keys not in self._columns:
            self._columns[self.keys] = self._kept(fields)
        columns = self._columns[self.keys]
        if columns is None:
            return Rows([], out[:, :0], labels, np.zeros(len(values), dtype=np.bool_))
        if columns.positions != list(range(len(fields))):
            out = out[:, columns.positions]
        if self.features.max_abs_value < math.inf and out.size:
            ok &= (np.abs(out) <= self.features.max_abs_value).all(axis=1)  # the others: refused the careful way
        if columns.signs is not None:
            out *= columns.signs
        return Rows(columns.names, out, labels, ok.view(np.bool_))

    def _kept(self, fields: list[str]) -> _Columns | None:
        """The columns ``features`` keeps of a layout's fields; None when the layout cannot
        be read as plain numbers under it."""
        features = self.features
        position = {name: i for i, name in enumerate(fields)}
        if not isinstance(features.categorical, str) and any(name in position for name in features.categorical):
            return None
        names = features.features if features.features is not None else fields
        kept = [name for name in names if name != features.target and name not in features.drop and name in position]
        named = features.plain_columns(kept)
        return None if named is None else _Columns([position[name] for name in kept], *named)


class _Columns(NamedTuple):
    """The columns of a layout kept, their names (hashed: buckets) and signs (hashed only)."""

    positions: list[int]
    names: list[Hashable]
    signs: np.ndarray | None


def decode_value(
    value: bytes | None, decode: Callable[[bytes], Mapping[str, Any]], features: Features, max_bytes: int | None = None
) -> Example:
    """(x, y) from one message's value, or SchemaError saying why not: a tombstone, a value
    over ``max_bytes`` (not decoded), bytes ``decode`` refuses, a record ``features`` refuses.

    >>> decode_value(b'{"a": 2, "label": 1}', make_decoder("json"), Features("label"))
    ({'a': 2.0}, True)
    >>> decode_value(None, make_decoder("json"), Features("label"))
    Traceback (most recent call last):
    ...
    stream_logreg.exceptions.SchemaError: the message has no value (a tombstone)
    """
    return features.decode(read_value(value, decode, max_bytes))


def read_value(
    value: bytes | None, decode: Callable[[bytes], Mapping[str, Any]], max_bytes: int | None = None
) -> Mapping[str, Any]:
    """The record in one message's value (see :func:`decode_value`)."""
    if value is None:
        raise SchemaError("the message has no value (a tombstone)")
    if max_bytes is not None and len(value) > max_bytes:
        raise SchemaError(
            f"the record is {len(value):,} bytes, beyond --max-record-bytes {max_bytes:,}; it was not decoded"
        )
    return decode(value)


def csv_decoder(header: list[str]) -> Callable[[bytes], Mapping[str, Any]]:
    """Bytes holding one CSV line with the given columns -> mapping of strings."""

    def decode(raw: bytes) -> Mapping[str, Any]:
        try:
            rows = list(csv.reader([raw.decode("utf-8").rstrip("\r\n")]))
        except (UnicodeDecodeError, csv.Error) as e:
            raise SchemaError(f"invalid CSV line ({e})") from None
        if len(rows) != 1 or len(rows[0]) != len(header):
            found = len(rows[0]) if rows else 0
            raise SchemaError(f"the CSV line has {found} fields, the header has {len(header)}")
        return dict(zip(header, rows[0], strict=True))

    return decode


def msgpack_decoder() -> Callable[[bytes], Mapping[str, Any]]:
    """Bytes holding one MessagePack map -> mapping."""
    import msgpack

    def decode(raw: bytes) -> Mapping[str, Any]:
        try:
            record = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except (ValueError, msgpack.UnpackException, msgpack.ExtraData) as e:
            raise SchemaError(f"invalid MessagePack ({e})") from None
        if not isinstance(record, dict):
            raise SchemaError(f"the MessagePack value is a {type(record).__name__}, not a map")
        return record

    return decode


def make_decoder(kind: str, header: list[str] | None = None) -> Callable[[bytes], Mapping[str, Any]]:
    """The decoder named ``kind``: "json", "csv" (needs ``header``) or "msgpack"."""
    if kind == "json":
        return json_decoder()
    if kind == "msgpack":
        return msgpack_decoder()
    if kind == "csv":
        if not header:
            raise ValueError("the csv decoder needs header=[column names]; pass the producer's columns")
        return csv_decoder(header)
    raise ValueError(f"unknown decoder {kind!r}; use 'json', 'csv' or 'msgpack'")
