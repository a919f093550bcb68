"""Scaler: online standardization, river's ``preprocessing.StandardScaler()`` to the bit, for
the numeric features of a stream (not the one-hot ones), with its state as plain JSON.

In front of a model it works as river's pipeline does: a record is predicted with the
statistics before it, then the statistics learn it, then the model learns it scaled with
the new ones.

>>> scaler = Scaler()
>>> for x in [{"a": 1.0, "b=x": 1.0}, {"a": 3.0, "b=x": 1.0}]:
...     before, after, _ = scaler.step(x, ["a"])
>>> before, after
({'a': 0.0, 'b=x': 1.0}, {'a': 1.0, 'b=x': 1.0})
>>> Scaler.from_state(scaler.to_state()).to_state() == scaler.to_state()
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Scaler"]


class Scaler:
    """Running mean and variance per feature name (Welford's, in river's order of operations).

    Parameters
    ----------
    names
        Scale only these features (None: every numeric feature).
    """

    def __init__(self, names: Iterable[str] | None = None) -> None:
        self.names = None if names is None else tuple(names)
        self._only = None if names is None else frozenset(self.names or ())
        # name -> [count, mean, variance]; count as a float, exact below 2**53 as river's int.
        self.stats: dict[str, list[float]] = {}

    def step(
        self, x: dict[Any, float], numeric: Iterable[str]
    ) -> tuple[dict[Any, float], dict[Any, float], dict[str, list[float] | None]]:
        """(x to predict, x to learn, undo) for one record whose features ``numeric`` are
        numbers: scaled with the statistics before it, then learn it, then scaled with the
        statistics after. ``undo`` given to :meth:`undo` puts the statistics back."""
        names = [name for name in numeric if self._only is None or name in self._only]
        before = self.transform(x, names)
        stats = self.stats
        undo = {name: (list(stats[name]) if name in stats else None) for name in names}
        for name in names:
            entry = stats.get(name)
            if entry is None:
                entry = stats[name] = [0.0, 0.0, 0.0]
            value = x[name]
            entry[0] += 1.0
            old_mean = entry[1]
            entry[1] += (value - old_mean) / entry[0]
            entry[2] += ((value - old_mean) * (value - entry[1]) - entry[2]) / entry[0]
        return before, self.transform(x, names), undo

    def transform(self, x: dict[Any, float], names: list[str]) -> dict[Any, float]:
        """x with the named features standardized (0.0 while their variance is 0)."""
        if not names:
            return x
        out = dict(x)
        stats = self.stats
        for name in names:
            entry = stats.get(name)
            out[name] = (x[name] - entry[1]) / entry[2] ** 0.5 if entry is not None and entry[2] else 0.0
        return out

    def undo(self, undo: dict[str, list[float] | None]) -> None:
        """Put back the statistics a :meth:`step` changed."""
        for name, entry in undo.items():
            if entry is None:
                del self.stats[name]
            else:
                self.stats[name] = entry

    def to_state(self) -> dict[str, Any]:
        """The settings and statistics as plain JSON values."""
        return {"names": None if self.names is None else list(self.names), "stats": self.stats}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Scaler:
        """The scaler :meth:`to_state` describes; ValueError naming what is wrong."""
        scaler = cls(state["names"])
        stats = state["stats"]
        if not isinstance(stats, dict):
            raise ValueError(f"the scaler's statistics are a {type(stats).__name__}, not a mapping")
        for name, entry in stats.items():
            if not (isinstance(entry, list) and len(entry) == 3 and all(type(v) is float for v in entry)):
                raise ValueError(f"the scaler's statistics of {name!r} are {entry!r}, not [count, mean, variance]")
            if not (entry[0] >= 1 and entry[2] >= 0):
                raise ValueError(f"the scaler's statistics of {name!r} are {entry!r}: count < 1 or variance < 0")
        scaler.stats = {str(name): list(entry) for name, entry in stats.items()}
        return scaler
