"""GroupSync: one model shared by every instance of a consumer group, by exchanging changes.

Each instance learns its own partitions' records with per-example steps. At each checkpoint
it takes the change its steps made since its last one (:meth:`GroupSync.take`: the weights'
and intercept's differences and the number of steps) and publishes it; it folds in every
other instance's change as it arrives (:meth:`GroupSync.fold`). The weights are a sum of
steps, so after the changes are exchanged every instance holds the same model, up to the
order of floating-point additions.

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
from stream_logreg import LogisticRegression

__all__ = ["Change", "GroupSync"]


@dataclass
class Change:
    """What ``author``'s steps did to the model between two of its checkpoints."""

    author: str
    seq: int
    names: list[Hashable]
    values: np.ndarray  # added to the weights of ``names``
    intercept: float  # added to the intercept
    steps: int  # added to the step count
    made: float  # when it was taken (Unix time, s): how stale it is on arrival

    def encode(self) -> bytes:
        header = {"author": self.author, "seq": self.seq, "names": self.names, "intercept": self.intercept,
                  "steps": self.steps, "made": self.made}  # fmt: skip
        return pack(header, self.values)

    @classmethod
    def decode(cls, blob: bytes) -> Change:
        """Read :meth:`encode`'s output; ValueError naming the problem if it is not one."""
        header, values = unpack(blob)
        try:
            change = cls(header["author"], header["seq"], header["names"], values, header["intercept"], header["steps"],
                         header["made"])  # fmt: skip
        except KeyError as e:
            raise ValueError(f"a change without {e}") from None
        ok = (
            isinstance(change.author, str) and type(change.seq) is int and type(change.steps) is int
            and isinstance(change.names, list) and len(change.names) == len(values)
            and len(set(change.names)) == len(values) and all(type(n) in (str, int) for n in change.names)
            and type(change.intercept) in (int, float) and np.isfinite(change.intercept) and np.isfinite(values).all()
            and type(change.made) in (int, float)
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

    def _mark(self) -> None:
        """Remember the model as it is now: the next change is measured from here."""
        state = self.model._state
        self.base = state.coef[: len(self.model._space)].copy()
        self.base_intercept, self.base_steps = state.intercept, state.n_steps

    def take(self) -> Change | None:
        """The change since the last take (None if there is none), numbered after the last
        change of this author the model holds."""
        model, state = self.model, self.model._state
        n = len(model._space)
        diff = state.coef[:n].copy()
        diff[: len(self.base)] -= self.base
        changed = np.flatnonzero(diff)
        steps, intercept = state.n_steps - self.base_steps, state.intercept - self.base_intercept
        if steps == 0 and len(changed) == 0 and intercept == 0.0:
            return None
        names = model._space.names()
        seq = self.clock.get(self.author, 0) + 1
        self.clock[self.author] = seq
        self._mark()
        names = [names[i] for i in changed.tolist()]
        return Change(self.author, seq, names, diff[changed], intercept, steps, time.time())

    def fold(self, change: Change) -> bool:
        """Add another instance's change to the model (and to the mark, so that it is not
        taken as this instance's own); False if the model holds it already."""
        if change.seq <= self.clock.get(change.author, 0):
            return False
        model, state = self.model, self.model._state
        columns = model._space.add_new(change.names)
        n = len(model._space)
        state.reserve(n)
        state.coef[columns] += change.values
        state.intercept += change.intercept
        state.n_steps += change.steps
        if len(self.base) < n:
            self.base = np.concatenate([self.base, np.zeros(n - len(self.base))])
        self.base[columns] += change.values
        self.base_intercept += change.intercept
        self.base_steps += change.steps
        self.clock[change.author] = change.seq
        return True
