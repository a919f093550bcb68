"""Feature names to the model's columns: a growing :class:`FeatureSpace` of names, rolled
back when a batch fails, or a fixed :class:`HashedSpace` whose features are the columns.

>>> space = FeatureSpace()
>>> space.columns(["a", "b"]).tolist(), space.columns(["b", "c"]).tolist()
([0, 1], [1, 2])
>>> space.forget_after(1)
>>> space.names()
['a']
>>> HashedSpace(8).columns([5, 0]).tolist()
[5, 0]
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Sequence

import numpy as np


class FeatureSpace:
    """Names to columns, in the order the names were first seen (column i is the i-th name).

    ``index`` is the dict itself, which the C helpers (``_dictstep``) read and extend.
    """

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self.index)

    def columns_needed(self, n_features: int) -> int:
        """The columns the arrays must hold for a step on n_features features."""
        return len(self.index) + n_features

    def names(self) -> list[Hashable]:
        """The names, in column order."""
        return list(self.index)

    def weights(self, coef: np.ndarray) -> dict[Hashable, float]:
        """Each name's weight."""
        return dict(zip(self.index, coef[: len(self.index)].tolist(), strict=True))

    def stored_columns(self, coef: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """The columns a model file keeps (all of them) and whose names are :meth:`names`."""
        return np.arange(len(self.index))

    def column_of(self, name: Hashable) -> int | None:
        """The column of a name seen before, else None."""
        return self.index.get(name)

    def columns(self, names: Iterable[Hashable]) -> np.ndarray:
        """The columns of the names (int64), giving each new name the next column."""
        index = self.index
        return np.array([index.setdefault(name, len(index)) for name in names], dtype=np.int64)

    def add_new(self, names: Sequence[Hashable]) -> np.ndarray:
        """Register the names not seen before, then return the columns of all of them."""
        index, n_before = self.index, len(self.index)
        new = [name for name in names if name not in index] if index else names
        index.update(zip(new, range(n_before, n_before + len(new)), strict=True))
        return np.fromiter(map(index.__getitem__, names), dtype=np.int64, count=len(names))

    def restore_columns(self, names: Sequence[Hashable]) -> np.ndarray:
        """The columns of a saved model's names, registered in their order in an empty
        space; TypeError if a name is not a str or int, or is repeated."""
        if any(type(name) not in (str, int) for name in names) or len(set(names)) != len(names) or self.index:
            raise TypeError("a feature name is not a str or int, or is repeated")
        return self.add_new(names)

    def csr_columns(self, indices: np.ndarray, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
        """The model's column of each entry of a CSR matrix of n_columns columns whose column
        j is the feature named j, and the model's columns its entries touch, registering
        the new ones in column order."""
        from stream_logreg._kernel import present_columns

        present = present_columns(indices, n_columns)
        touched = self.add_new(present.tolist())
        if np.array_equal(touched, present):  # column j is the model's column j already
            return indices, touched
        lookup = np.zeros(int(present[-1]) + 1, dtype=np.int64)
        lookup[present] = touched
        return lookup[indices], touched

    def forget_after(self, n_columns: int) -> None:
        """Drop the names registered after the first n_columns (undoing a failed batch)."""
        for name in list(itertools.islice(reversed(self.index), len(self.index) - n_columns)):
            del self.index[name]

    def copy(self) -> FeatureSpace:
        """An independent copy."""
        other = FeatureSpace()
        other.index = dict(self.index)
        return other


class HashedSpace:
    """A fixed space of ``n`` columns whose features are the ints 0 to n - 1 (the buckets of
    a feature hasher): feature j is column j, with no dict of names, so the model's memory
    is set at start whatever the stream's cardinality.

    ``index`` is n, which the C helpers (``_dictstep``) read as "hashed, n buckets".
    """

    def __init__(self, n: int) -> None:
        self.index = n

    def __len__(self) -> int:
        return self.index

    def columns_needed(self, n_features: int) -> int:
        """The columns the arrays must hold: all n, whatever the step."""
        return self.index

    def names(self) -> range:
        """The features, in column order: 0 to n - 1."""
        return range(self.index)

    def weights(self, coef: np.ndarray) -> dict[Hashable, float]:
        """The weight of each bucket whose weight is not 0."""
        columns = np.flatnonzero(coef[: self.index])
        return dict(zip(columns.tolist(), coef[columns].tolist(), strict=True))

    def stored_columns(self, coef: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """The columns a model file keeps: those whose weight or optimizer state is not 0."""
        n = self.index
        return np.flatnonzero((coef[:n] != 0.0) | (slots[:, :n] != 0.0).any(axis=0))

    def column_of(self, name: Hashable) -> int | None:
        """The column of a bucket; ValueError for anything else (names not hashed)."""
        return int(self.columns([name])[0])

    def columns(self, names: Iterable[Hashable]) -> np.ndarray:
        """The columns of the buckets (int64), checked."""
        names = list(names)
        if any(type(name) is not int for name in names):
            bad = next(name for name in names if type(name) is not int)
            raise self._not_a_bucket(bad)
        columns = np.array(names, dtype=np.int64) if names else np.empty(0, dtype=np.int64)
        outside = (columns < 0) | (columns >= self.index)
        if outside.any():
            raise self._not_a_bucket(names[int(np.flatnonzero(outside)[0])])
        return columns

    add_new = columns

    def restore_columns(self, names: Sequence[Hashable] | np.ndarray) -> np.ndarray:
        """The columns of a saved model's buckets (ints, or a file's int array); TypeError
        if one is repeated, ValueError if one is not a bucket."""
        if isinstance(names, np.ndarray):
            columns = names.astype(np.int64)
            if columns.size and not (columns.min() >= 0 and columns.max() < self.index):
                raise ValueError(f"a saved bucket is outside [0, {self.index})")
        else:
            columns = self.columns(names)
        if np.unique(columns).size != columns.size:
            raise TypeError("a bucket is repeated")
        return columns

    def csr_columns(self, indices: np.ndarray, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
        """A CSR matrix's column j is bucket j: the entries' columns are its indices, and the
        columns they touch are all n when there are at least n entries (finding which
        would cost more than saving them all for an undo)."""
        from stream_logreg._kernel import present_columns

        if n_columns > self.index:
            raise ValueError(
                f"X has {n_columns} columns, more than this hashed model's n_features={self.index}; "
                f"hash into {self.index} buckets, or make the model with n_features={n_columns}"
            )
        touched = np.arange(self.index) if len(indices) >= self.index else present_columns(indices, n_columns)
        return indices, touched

    def forget_after(self, n_columns: int) -> None:
        """Nothing to undo: the space never grows."""

    def copy(self) -> HashedSpace:
        """An independent copy."""
        return HashedSpace(self.index)

    def _not_a_bucket(self, name: Hashable) -> ValueError:
        return ValueError(
            f"feature {name!r} is not a bucket of this hashed model, whose features are the ints 0 to "
            f"{self.index - 1} (n_features={self.index}); hash the features first, with "
            f"stream_logreg.Features(hash_bits=...) or river's FeatureHasher(n_features={self.index})"
        )
