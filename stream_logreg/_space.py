"""FeatureSpace: feature names to the model's columns, growing as names come and rolled back
when a batch fails.

>>> space = FeatureSpace()
>>> space.columns(["a", "b"]).tolist(), space.columns(["b", "c"]).tolist()
([0, 1], [1, 2])
>>> space.forget_after(1)
>>> space.names()
['a']
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable

import numpy as np


class FeatureSpace:
    """Names to columns, in the order the names were first seen (column i is the i-th name).

    ``index`` is the dict itself, which the C helpers (``_dictstep``) read and extend.
    """

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self.index)

    def names(self) -> list[Hashable]:
        """The names, in column order."""
        return list(self.index)

    def column_of(self, name: Hashable) -> int | None:
        """The column of a name seen before, else None."""
        return self.index.get(name)

    def columns(self, names: Iterable[Hashable]) -> np.ndarray:
        """The columns of the names (int64), giving each new name the next column."""
        index = self.index
        return np.array([index.setdefault(name, len(index)) for name in names], dtype=np.int64)

    def add_new(self, names: list[Hashable]) -> np.ndarray:
        """Register the names not seen before, then return the columns of all of them."""
        index, n_before = self.index, len(self.index)
        new = [name for name in names if name not in index] if index else names
        index.update(zip(new, range(n_before, n_before + len(new)), strict=True))
        return np.fromiter(map(index.__getitem__, names), dtype=np.int64, count=len(names))

    def forget_after(self, n_columns: int) -> None:
        """Drop the names registered after the first n_columns (undoing a failed batch)."""
        for name in list(itertools.islice(reversed(self.index), len(self.index) - n_columns)):
            del self.index[name]
