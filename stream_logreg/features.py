"""Features: one record (a mapping, maybe nested) to the model's features and its label,
the same for every source (records, files, Kafka, the service).

- numbers are features as they are; booleans are 0/1; a null, an empty string or a missing
  field leaves the feature out;
- strings become one-hot features "field=value": in the fields listed as categorical, or
  in any field with ``categorical="auto"`` (there a string that reads as a number, as every
  CSV cell does, is that number);
- nested objects are flattened with dots ("device.os=ios"), lists of strings are multi-hot
  ("tags=sale"), lists of numbers become "field[0]", "field[1]", ...; nesting deeper than
  ``max_depth`` or a list longer than ``max_list_length`` is an error naming the field;
- with ``hash_bits=B`` every feature then goes to one of 2**B buckets, bucket and sign
  those of ``river.preprocessing.FeatureHasher(n_features=2**B, seed=hash_seed,
  alternate_sign=...)`` (signed 32-bit MurmurHash3 of "name" or "name=value", in C).

>>> features = Features("clicked", categorical="auto")
>>> record = {"country": "DE", "device": {"os": "ios", "version": "17.2"},
...           "tags": ["sale", "new"], "price": 1999.0, "coupon": None, "new_user": True, "clicked": 1}
>>> features.decode(record)  # doctest: +NORMALIZE_WHITESPACE
({'country=DE': 1.0, 'device.os=ios': 1.0, 'device.version': 17.2, 'tags=sale': 1.0, 'tags=new': 1.0,
  'price': 1999.0, 'new_user': 1.0}, True)
>>> Features("clicked", categorical="auto", hash_bits=4).decode(record)[0]
{0: 1.0, 12: -1.0, 2: -17.2, 1: 1.0, 11: -1.0, 5: 1999.0, 10: -1.0}
>>> Features("clicked").decode({"country": "DE", "clicked": 0})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream_logreg.exceptions.SchemaError: field 'country' has the non-numeric value 'DE'; declare it categorical ...
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream_logreg import _hashing
from stream_logreg.exceptions import SchemaError

__all__ = ["Example", "Features", "hash_seed_of", "parse_label", "parse_number"]

Example = tuple[dict[Hashable, float], bool]
MAX_HASH_BITS = 30


def hash_seed_of(seed: int) -> int:
    """The 32-bit MurmurHash3 seed river's FeatureHasher(seed=seed) hashes with.

    >>> hash_seed_of(42)
    1608637542
    """
    return int(np.random.RandomState(seed).randint(0, 2**32, dtype=np.uint32))


@dataclass(frozen=True, init=False)
class Features:
    """How a record's fields become features and a label.

    Parameters
    ----------
    target
        The field holding the label: false/true, 0/1 (also as strings "0", "1", "true",
        "false").
    features
        Keep only these (top-level) fields as features (default: every field but the target).
    drop
        Top-level fields to ignore.
    categorical
        The fields whose values become one-hot features "field=value" (a field listed
        covers the fields nested in it), or "auto": any string that does not read as a
        number. A string that is not a number in any other field is an error.
    max_abs_value
        A feature whose absolute value is larger is an error (one absurd record, 1e300,
        would ruin the model); inf or None: no limit.
    hash_bits
        Hash every feature into 2**hash_bits buckets (None: keep the names).
    hash_seed
        The seed, as river's FeatureHasher takes it.
    alternate_sign
        Negate the features whose signed hash is negative, as river's FeatureHasher does.
    max_depth
        The deepest nesting of objects and lists taken (1: a flat record).
    max_list_length
        The longest list taken.
    """

    target: str
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] | str = ()
    max_abs_value: float = math.inf
    hash_bits: int | None = None
    hash_seed: int = 0
    alternate_sign: bool = True
    max_depth: int = 4
    max_list_length: int = 100

    def __init__(
        self,
        target: str,
        features: Iterable[str] | None = None,
        drop: Iterable[str] = (),
        categorical: Iterable[str] | str = (),
        max_abs_value: float | None = math.inf,
        hash_bits: int | None = None,
        hash_seed: int = 0,
        alternate_sign: bool = True,
        max_depth: int = 4,
        max_list_length: int = 100,
    ) -> None:
        max_abs_value = math.inf if max_abs_value is None else max_abs_value
        if not max_abs_value > 0:
            raise ValueError(f"max_abs_value must be > 0, got {max_abs_value!r}; pass inf for no limit")
        if hash_bits is not None and not (isinstance(hash_bits, int) and 1 <= hash_bits <= MAX_HASH_BITS):
            raise ValueError(f"hash_bits must be an integer from 1 to {MAX_HASH_BITS}, got {hash_bits!r}")
        if not (isinstance(hash_seed, int) and 0 <= hash_seed < 2**32):
            raise ValueError(f"hash_seed must be an integer from 0 to 2**32 - 1, got {hash_seed!r}")
        for name, bound in (("max_depth", max_depth), ("max_list_length", max_list_length)):
            if not (isinstance(bound, int) and bound >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {bound!r}")
        if isinstance(categorical, str) and categorical != "auto":
            raise ValueError(
                f"categorical must be 'auto' or a list of fields, got {categorical!r}; write [{categorical!r}] for one"
            )
        set_ = object.__setattr__
        set_(self, "target", target)
        set_(self, "features", None if features is None else tuple(features))
        set_(self, "drop", tuple(drop))
        set_(self, "categorical", categorical if isinstance(categorical, str) else tuple(categorical))
        set_(self, "max_abs_value", float(max_abs_value))
        set_(self, "hash_bits", hash_bits)
        set_(self, "hash_seed", hash_seed)
        set_(self, "alternate_sign", bool(alternate_sign))
        set_(self, "max_depth", max_depth)
        set_(self, "max_list_length", max_list_length)
        set_(self, "_murmur_seed", hash_seed_of(hash_seed))
        set_(self, "_categories", frozenset(() if isinstance(categorical, str) else categorical))

    def settings(self) -> dict[str, Any]:
        """The settings as plain JSON values (``Features(**settings)`` gives the same)."""
        return {
            "target": self.target,
            "features": None if self.features is None else list(self.features),
            "drop": list(self.drop),
            "categorical": self.categorical if isinstance(self.categorical, str) else list(self.categorical),
            "max_abs_value": self.max_abs_value if self.max_abs_value < math.inf else None,
            "hash_bits": self.hash_bits,
            "hash_seed": self.hash_seed,
            "alternate_sign": self.alternate_sign,
            "max_depth": self.max_depth,
            "max_list_length": self.max_list_length,
        }

    def plain_columns(self, names: list[str]) -> tuple[list[Hashable], np.ndarray | None] | None:
        """How columns of plain numbers (one per field in ``names``) become features: their
        names (hashed: their buckets, and the signs to multiply them by), or None when two of
        them share a bucket (their values must then be added: the record-by-record path).

        >>> Features("y", hash_bits=4).plain_columns(["a", "b"])
        ([14, 13], array([ 1., -1.]))
        """
        if self.hash_bits is None:
            return list(names), None
        hashed = [self.hash({name: 1.0}).popitem() for name in names]
        if len({bucket for bucket, _ in hashed}) < len(hashed):
            return None
        return [bucket for bucket, _ in hashed], np.array([sign for _, sign in hashed])

    def decode(self, record: Mapping[str, Any]) -> Example:
        """Return (x, y) from one record, or raise SchemaError naming the field at fault."""
        y = self._label(record)
        return self.hash(self._named(record, None)), y

    def named(self, record: Mapping[str, Any]) -> tuple[dict[Hashable, float], bool, list[str]]:
        """(x before hashing, y, the names of x's numeric features: not the one-hot ones),
        for a :class:`~stream_logreg.scaling.Scaler` to scale before :meth:`hash`."""
        y, numeric = self._label(record), list[str]()
        return self._named(record, numeric), y, numeric

    def unlabelled(self, record: Mapping[str, Any]) -> dict[Hashable, float]:
        """The features of a record that carries no label (an event whose label comes later);
        SchemaError as :meth:`decode` raises it."""
        return self.hash(self._unlabelled_named(record))

    def names_in(self, record: Mapping[str, Any]) -> list[str]:
        """The names of a record's features before hashing (no label needed); SchemaError
        as :meth:`decode` raises it."""
        return list(self._unlabelled_named(record))

    def _unlabelled_named(self, record: Mapping[str, Any]) -> dict[Any, Any]:
        return self._named({**record, self.target: 0}, None)  # a stand-in label, dropped as the label is

    def buckets(self, names: Iterable[str]) -> dict[Hashable, list[str]]:
        """The names that fall in each bucket: a hashed model's weights named again, where
        the names are known.

        >>> Features("y", hash_bits=4).buckets(["a", "b", "a"])
        {14: ['a'], 13: ['b']}
        """
        found: dict[Hashable, list[str]] = {}
        for name in dict.fromkeys(names):
            ((bucket, _),) = self.hash({name: 1.0}).items()
            found.setdefault(bucket, []).append(name)
        return found

    def _label(self, record: Mapping[str, Any]) -> bool:
        if self.target not in record:
            raise SchemaError(f"the label field {self.target!r} is missing; every record needs one")
        return parse_label(self.target, record[self.target])

    def hash(self, x: dict[Any, Any]) -> dict[Hashable, float]:
        """Named features to hashed ones (x itself without hashing)."""
        if self.hash_bits is None:
            return x
        seed: int = self._murmur_seed  # type: ignore[attr-defined]
        return _hashing.hash_features(x, 1 << self.hash_bits, seed, self.alternate_sign)

    def _named(self, record: Mapping[str, Any], numeric: list[str] | None) -> dict[Any, Any]:
        """The named features; ``numeric`` (if a list) gets the names of the numeric ones."""
        if self.features is None and not self.drop and not self._categories:  # type: ignore[attr-defined]
            # The common case, fast: every feature already a float, all finite (a finite sum
            # proves it; an overflowing one just takes the careful path below). Not with
            # fields listed categorical: their numbers are codes, one-hot encoded.
            plain = dict(record)
            del plain[self.target]
            values = plain.values()
            if (
                set(map(type, values)) <= {float}
                and math.isfinite(sum(values))
                and (not plain or max(map(abs, values)) <= self.max_abs_value)
            ):
                if numeric is not None:
                    numeric.extend(plain)
                return plain
        names = self.features if self.features is not None else record.keys()
        x: dict[str, float] = {}
        for name in names:
            if name != self.target and name not in self.drop and name in record:
                self._add(x, name, name, record[name], 1, numeric)
        return x

    def _add(
        self, x: dict[str, float], field: str, name: str, value: Any, depth: int, numeric: list[str] | None
    ) -> None:
        """Add the features of ``value`` under ``name`` (``field``: the top-level field)."""
        kind = type(value)
        listed: frozenset[str] = self._categories  # type: ignore[attr-defined]
        if (kind is float or kind is int) and not (listed and (field in listed or name in listed)):
            number = float(value)  # the common case, fast; an error takes the careful path below
            if math.isfinite(number) and abs(number) <= self.max_abs_value:
                if numeric is not None and name not in x:
                    numeric.append(name)
                x[name] = number
                return
        if value is None or value == "":
            return
        if kind is str or isinstance(value, str):
            if self.categorical == "auto":
                first = value[0]
                if first.isalpha() and first not in "iInN":  # no number starts so: skip float()'s exception
                    x[f"{name}={value}"] = 1.0
                    return
                try:
                    float(value)
                except ValueError:
                    x[f"{name}={value}"] = 1.0
                    return
                self._number(x, name, value, numeric)
            elif field in listed or name in listed:
                x[f"{name}={value}"] = 1.0
            else:
                self._number(x, name, value, numeric)
            return
        if kind is dict or kind is list or isinstance(value, (Mapping, list, tuple)):
            if depth >= self.max_depth:
                raise SchemaError(
                    f"field {name!r} nests deeper than --max-depth {self.max_depth}; flatten it in the producer, "
                    "drop the field, or raise the limit",
                    f"field {name!r} nests deeper than --max-depth",
                )
            if kind is dict or isinstance(value, Mapping):
                for key, inner in value.items():
                    self._add(x, field, f"{name}.{key}", inner, depth + 1, numeric)
                return
            if len(value) > self.max_list_length:
                raise SchemaError(
                    f"field {name!r} holds a list of {len(value):,} items, beyond --max-list-length "
                    f"{self.max_list_length:,}; drop the field, or raise the limit",
                    f"field {name!r} holds lists beyond --max-list-length",
                )
            for i, item in enumerate(value):
                if isinstance(item, str):
                    if item != "":
                        x[f"{name}={item}"] = 1.0
                else:
                    self._add(x, field, f"{name}[{i}]", item, depth + 1, numeric)
            return
        if field in listed or name in listed:
            x[f"{name}={value}"] = 1.0  # a number in a field named categorical: a code (a zip code, say)
            return
        self._number(x, name, value, numeric)

    def _number(self, x: dict[str, float], name: str, value: Any, numeric: list[str] | None) -> None:
        number = parse_number(name, value)
        if abs(number) > self.max_abs_value:
            raise SchemaError(
                f"field {name!r} has the value {value!r}, beyond the limit {self.max_abs_value:g} "
                "(--max-abs-value); scale the field, or raise the limit",
                f"field {name!r} holds values beyond the limit (--max-abs-value)",
            )
        if numeric is not None and name not in x:
            numeric.append(name)
        x[name] = number


def parse_number(name: str, value: Any) -> float:
    """A finite float from a number or a numeric string; SchemaError otherwise."""
    if type(value) is float or type(value) is int or isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise SchemaError(
                f"field {name!r} has the non-numeric value {value!r}; declare it categorical "
                "to one-hot encode it, or fix the producer",
                f"field {name!r} holds non-numeric strings; declare it categorical (--categorical {name})",
            ) from None
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
