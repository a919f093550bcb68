"""Records to (x, y): one schema for files and Kafka, and decoders for message bytes.

A :class:`Schema` turns a mapping of field -> value into features and a label, and never
guesses: a numeric field must hold a number (or a string that parses as one), a field
declared categorical becomes a one-hot feature "field=value", and anything else is an
error naming the field, the value and the fix.

>>> schema = Schema(target="label", categorical=["color"])
>>> schema.decode({"a": 1, "b": "2.5", "color": "red", "label": 1})
({'a': 1.0, 'b': 2.5, 'color=red': 1.0}, True)
>>> schema.decode({"a": "abc", "label": 1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream_logreg.exceptions.SchemaError: field 'a' has the non-numeric value 'abc'; declare it categorical ...
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from stream_logreg import _jsonrows
from stream_logreg.exceptions import DecodeError, SchemaError

__all__ = [
    "DecodeError",
    "Example",
    "JsonRows",
    "Rows",
    "Schema",
    "SchemaError",
    "csv_decoder",
    "decode_value",
    "json_decoder",
    "make_decoder",
    "msgpack_decoder",
    "parse_label",
    "parse_number",
]

Example = tuple[dict[str, float], bool]


@dataclass(frozen=True, init=False)
class Schema:
    """How a record's fields become features and a label.

    Parameters
    ----------
    target
        The field holding the label: false/true, 0/1 (also as strings "0", "1", "true",
        "false").
    features
        Keep only these fields as features (default: every field but the target).
    drop
        Fields to ignore.
    categorical
        Fields whose string values become one-hot features named "field=value".
    max_abs_value
        A feature whose absolute value is larger is an error (one absurd record, 1e300,
        would ruin the model); inf: no limit.
    """

    target: str
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    max_abs_value: float = math.inf

    def __init__(
        self,
        target: str,
        features: Iterable[str] | None = None,
        drop: Iterable[str] = (),
        categorical: Iterable[str] = (),
        max_abs_value: float = math.inf,
    ) -> None:
        if not max_abs_value > 0:
            raise ValueError(f"max_abs_value must be > 0, got {max_abs_value!r}; pass inf for no limit")
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "features", None if features is None else tuple(features))
        object.__setattr__(self, "drop", tuple(drop))
        object.__setattr__(self, "categorical", tuple(categorical))
        object.__setattr__(self, "max_abs_value", float(max_abs_value))

    def decode(self, record: Mapping[str, Any]) -> Example:
        """Return (x, y) from one record, or raise SchemaError naming the problem."""
        if self.target not in record:
            raise SchemaError(f"the label field {self.target!r} is missing; every record needs one")
        y = parse_label(self.target, record[self.target])
        if self.features is None and not self.drop and not self.categorical:
            # The common case, fast: every feature already a float, all finite (a finite sum
            # proves it; an overflowing one just takes the careful path below).
            plain = dict(record)
            del plain[self.target]
            values = plain.values()
            if (
                set(map(type, values)) <= {float}
                and math.isfinite(sum(values))
                and (not plain or max(map(abs, values)) <= self.max_abs_value)
            ):
                return plain, y
        names = self.features if self.features is not None else record.keys()
        x: dict[str, float] = {}
        for name in names:
            if name == self.target or name in self.drop:
                continue
            if name not in record:
                raise SchemaError(f"the feature field {name!r} is missing")
            value = record[name]
            if name in self.categorical:
                if value is None or value == "":
                    raise SchemaError(f"the categorical field {name!r} is empty")
                x[f"{name}={value}"] = 1.0
            else:
                x[name] = parse_number(name, value)
                if abs(x[name]) > self.max_abs_value:
                    raise SchemaError(
                        f"field {name!r} has the value {value!r}, beyond the limit {self.max_abs_value:g} "
                        "(--max-abs-value); scale the field, or raise the limit",
                        f"field {name!r} holds values beyond the limit (--max-abs-value)",
                    )
        return x, y


def parse_number(name: str, value: Any) -> float:
    """A finite float from a number or a numeric string; SchemaError otherwise."""
    if type(value) is float or type(value) is int or isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        if value.strip() == "":
            raise SchemaError(f"field {name!r} is empty; every feature needs a value")
        try:
            number = float(value)
        except ValueError:
            raise SchemaError(
                f"field {name!r} has the non-numeric value {value!r}; declare it categorical "
                "to one-hot encode it, or fix the producer",
                f"field {name!r} holds non-numeric strings; declare it categorical (--categorical {name})",
            ) from None
    elif value is None:
        raise SchemaError(f"field {name!r} is empty (null); every feature needs a value")
    else:
        raise SchemaError(
            f"field {name!r} has the value {value!r} of type {type(value).__name__}, not a number",
            f"field {name!r} holds values of type {type(value).__name__}, not numbers",
        )
    if not math.isfinite(number):
        raise SchemaError(
            f"field {name!r} has the value {value!r}, which is not finite", f"field {name!r} holds non-finite values"
        )
    return number


_TRUE = {True, "1", "true", "True", "TRUE", "1.0"}
_FALSE = {False, "0", "false", "False", "FALSE", "0.0"}


def parse_label(name: str, value: Any) -> bool:
    """True or False from a binary label (bool, 0/1, or their usual strings)."""
    if isinstance(value, (bool, int, float, str)):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise SchemaError(
        f"the label {name!r} has the value {value!r}, which is not binary (0/1 or false/true)",
        f"the label {name!r} is not binary (0/1 or false/true)",
    )


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

    features: list[str]
    values: np.ndarray
    labels: np.ndarray
    ok: np.ndarray


class JsonRows:
    """Batches of JSON message values to a float64 matrix: the fast path of the Kafka consumer.

    Plain records (flat objects whose values are all numbers, the target 0 or 1, with the
    same keys in the same order as the batch's first record) are read in C, without the
    GIL, straight into rows, bit for bit what ``schema.decode(orjson.loads(v))`` gives:
    the columns ``schema`` keeps, in its order. The others (``ok`` False) are for the
    caller to decode one by one, the slow way, which accepts or refuses each with its
    reason; so are all records whose layout lacks a field ``schema.features`` names or
    holds a categorical field.

    >>> rows = JsonRows(Schema("label"))
    >>> batch = rows.decode([b'{"a": 1.5, "b": -2, "label": 1}', b'{"a": "x", "label": 1}'])
    >>> batch.features, batch.values[0].tolist(), batch.labels.tolist()[0], batch.ok.tolist()
    (['a', 'b'], [1.5, -2.0], 1.0, [True, False])
    >>> JsonRows(Schema("label", drop=["a"])).decode([b'{"a": 1.5, "b": -2, "label": 1}']).features
    ['b']
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.keys: tuple[str, ...] | None = None
        self._columns: dict[tuple[str, ...], list[int] | None] = {}

    def decode(self, values: list[bytes | None]) -> Rows:
        target = self.schema.target
        first = values[0] if values else None
        keys = _jsonrows.layout(first, target) if isinstance(first, bytes) else None
        self.keys = keys or self.keys  # a first record off the plain form keeps the last layout
        if self.keys is None:
            return Rows([], np.empty((len(values), 0)), np.empty(len(values)), np.zeros(len(values), dtype=np.bool_))
        features = [key for key in self.keys if key != target]
        out, labels = np.empty((len(values), len(features))), np.empty(len(values))
        ok = np.empty(len(values), dtype=np.uint8)
        _jsonrows.rows(values, self.keys, target, out, labels, ok)
        if self.keys not in self._columns:
            self._columns[self.keys] = self._kept(features)
        columns = self._columns[self.keys]
        if columns is None:
            ok[:] = 0
        elif columns != list(range(len(features))):
            out, features = out[:, columns], [features[c] for c in columns]
        if self.schema.max_abs_value < math.inf and out.size:
            ok &= (np.abs(out) <= self.schema.max_abs_value).all(axis=1)  # the others: refused the careful way
        return Rows(features, out, labels, ok.view(np.bool_))

    def _kept(self, features: list[str]) -> list[int] | None:
        """The positions of the schema's features among a layout's, in the schema's order;
        None when the layout cannot be read as plain numbers under this schema."""
        schema = self.schema
        position = {name: i for i, name in enumerate(features)}
        if any(name in position for name in schema.categorical):
            return None
        names = schema.features if schema.features is not None else features
        kept = [name for name in names if name != schema.target and name not in schema.drop]
        if any(name not in position for name in kept):
            return None
        return [position[name] for name in kept]


def decode_value(
    value: bytes | None, decode: Callable[[bytes], Mapping[str, Any]], schema: Schema, max_bytes: int | None = None
) -> Example:
    """(x, y) from one message's value, or SchemaError saying why not: a tombstone, a value
    over ``max_bytes`` (not decoded), bytes ``decode`` refuses, a record the schema refuses.

    >>> decode_value(b'{"a": 2, "label": 1}', make_decoder("json"), Schema("label"))
    ({'a': 2.0}, True)
    >>> decode_value(None, make_decoder("json"), Schema("label"))
    Traceback (most recent call last):
    ...
    stream_logreg.exceptions.SchemaError: the message has no value (a tombstone)
    """
    if value is None:
        raise SchemaError("the message has no value (a tombstone)")
    if max_bytes is not None and len(value) > max_bytes:
        raise SchemaError(
            f"the record is {len(value):,} bytes, beyond --max-record-bytes {max_bytes:,}; it was not decoded"
        )
    return schema.decode(decode(value))


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
