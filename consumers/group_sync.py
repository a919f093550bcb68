"""GroupSync: one model shared by every instance of a consumer group, by exchanging changes.

Each instance learns its own partitions' records with per-example steps. At each checkpoint
it takes the change its steps made since its last one (:meth:`GroupSync.take`: the weights'
and intercept's differences, those of the optimizer's state that is a sum over the steps,
AdaGrad's g2, FTRL's z and n and the cumulative L1 penalty, and the number of steps) and
publishes it; it folds in every other instance's change as it arrives
(:meth:`GroupSync.fold`). The weights are a sum of steps, so after the changes are
exchanged every instance holds the same model, up to the order of floating-point
additions. Moving averages (RMSProp's, Adam's moments) are not sums: each instance keeps
its own.

Each change is numbered by its author (``seq``). ``clock`` says, for each author, the last
change the model holds; a change already held is not folded in again, so a model restored
from a snapshot plus the changes published since folds each change exactly once.

No Kafka here: the changes topic is :mod:`consumers.changes_topic`.

>>> from stream_logreg import LogisticRegression
>>> a, b = LogisticRegression(), LogisticRegression()
>>> sync_a, sync_b = GroupSync(a, "a", {}), GroupSync(b, "b", {})
>>> a.learn_one({"x": 1.0}, True)
>>> b.learn_one({"y": 1.0}, False)
>>> change_a, change_b = sync_a.take(), sync_b.take()
>>> sync_a.fold(change_b), sync_b.fold(change_a), sync_a.fold(change_b)
(True, True, False)
>>> a.weights == b.weights, a.n_steps, b.n_steps
(True, 2, 2)
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from consumers.framing import pack, unpack
from stream_logreg import LogisticRegression, _spec

__all__ = ["Change", "GroupSync"]


@dataclass
class Change:
    """What ``author``'s steps did to the model between two of its checkpoints."""

    author: str
    seq: int
    names: list[Hashable]
    values: np.ndarray  # added to the weights of ``names`` (row 0) and to their summed state (rows 1...)
    intercept: float  # added to the intercept
    steps: int  # added to the step count
    made: float  # when it was taken (Unix time, s): how stale it is on arrival
    l1_total: float = 0.0  # added to the L1 penalty's running total

    def encode(self) -> bytes:
        header = {"author": self.author, "seq": self.seq, "names": self.names, "intercept": self.intercept,
                  "steps": self.steps, "made": self.made, "rows": len(self.values),
                  "l1_total": self.l1_total}  # fmt: skip
        return pack(header, self.values.ravel())

    @classmethod
    def decode(cls, blob: bytes) -> Change:
        """Read :meth:`encode`'s output; ValueError naming the problem if it is not one."""
        header, values = unpack(blob)
        rows, names = header.get("rows", 1), header.get("names")
        if type(rows) is not int or rows < 1 or not isinstance(names, list) or len(values) != rows * len(names):
            raise ValueError(f"a change whose {len(values)} numbers are not {rows!r} rows of its names")
        try:
            change = cls(header["author"], header["seq"], names, values.reshape(rows, len(names)), header["intercept"],
                         header["steps"], header["made"], header.get("l1_total", 0.0))  # fmt: skip
        except KeyError as e:
            raise ValueError(f"a change without {e}") from None
        ok = (
            isinstance(change.author, str) and type(change.seq) is int and type(change.steps) is int
            and len(set(change.names)) == len(names) and all(type(n) in (str, int) for n in change.names)
            and type(change.intercept) in (int, float) and np.isfinite(change.intercept) and np.isfinite(values).all()
            and type(change.made) in (int, float) and type(change.l1_total) in (int, float)
            and np.isfinite(change.l1_total)
        )  # fmt: skip
        if not ok:
            raise ValueError(f"change {change.seq!r} of {change.author!r} has a field of the wrong kind")
        return change


class GroupSync:
    """The change one instance's model made since its last :meth:`take`, and the folding in
    of the other instances' changes. ``clock``: author -> the last change the model holds."""

    def __init__(self, model: LogisticRegression, author: str, clock: dict[str, int]) -> None:
        self.model, self.author, self.clock = model, author, clock
        self._mark()

    def _summed(self, n: int) -> np.ndarray:
        """The numbers that are sums over the steps, one column per feature: the weights,
        then the optimizer's summed state (a copy)."""
        state = self.model._state
        rows = _spec.additive_slots(self.model.optimizer, self.model.l1)
        return np.vstack([state.coef[:n], state.slots[rows, :n]])

    def _mark(self) -> None:
        """Remember the model as it is now: the next change is measured from here."""
        state = self.model._state
        self.base = self._summed(len(self.model._space))
        self.base_intercept, self.base_steps, self.base_l1 = state.intercept, state.n_steps, state.l1_total

    def take(self) -> Change | None:
        """The change since the last take (None if there is none), numbered after the last
        change of this author the model holds."""
        model, state = self.model, self.model._state
        diff = self._summed(len(model._space))
        diff[:, : self.base.shape[1]] -= self.base
        changed = np.flatnonzero(diff.any(axis=0))
        steps, intercept = state.n_steps - self.base_steps, state.intercept - self.base_intercept
        l1_total = state.l1_total - self.base_l1
        if steps == 0 and len(changed) == 0 and intercept == 0.0:
            return None
        names = model._space.names()
        seq = self.clock.get(self.author, 0) + 1
        self.clock[self.author] = seq
        self._mark()
        names = [names[i] for i in changed.tolist()]
        return Change(self.author, seq, names, diff[:, changed], intercept, steps, time.time(), l1_total)

    def fold(self, change: Change) -> bool:
        """Add another instance's change to the model (and to the mark, so that it is not
        taken as this instance's own); False if the model holds it already. ValueError if
        it carries other rows of state than this model sums."""
        if change.seq <= self.clock.get(change.author, 0):
            return False
        model, state = self.model, self.model._state
        rows = _spec.additive_slots(model.optimizer, model.l1)
        if len(change.values) != 1 + len(rows):
            raise ValueError(
                f"change {change.seq} of {change.author!r} carries {len(change.values) - 1} rows of optimizer state, "
                f"this model sums {len(rows)}: the instances learn with different optimizers"
            )
        columns = model._space.add_new(change.names)
        n = len(model._space)
        state.reserve(n)
        state.coef[columns] += change.values[0]
        for k, row in enumerate(rows, start=1):
            state.slots[row, columns] += change.values[k]
        state.intercept += change.intercept
        state.n_steps += change.steps
        state.l1_total += change.l1_total
        if self.base.shape[1] < n:
            self.base = np.hstack([self.base, np.zeros((len(self.base), n - self.base.shape[1]))])
        self.base[:, columns] += change.values
        self.base_intercept += change.intercept
        self.base_steps += change.steps
        self.base_l1 += change.l1_total
        self.clock[change.author] = change.seq
        return True
