"""ModelState: the numbers a model learns, in arrays the compiled kernel updates in place.

>>> state = ModelState(intercept=0.5)
>>> state.reserve(20)
>>> state.coef.shape, state.slots.shape
((20,), (0, 20))
>>> saved = state.save([3])
>>> state.coef[3] = 1.0
>>> state.restore([3], saved, n_columns=0)
>>> float(state.coef[3])
0.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Saved = tuple[np.ndarray, np.ndarray]


class ModelState:
    """One weight per column (``coef``), the optimizer's per-column state (``slots``: one row
    per kind of state, none for SGD, then river's cumulative L1 penalties when l1 > 0), the
    intercept, the L1 penalty's running total and the step count.

    Columns past the ones in use hold zeros, so that a new feature starts at 0. The arrays
    grow together, and a failed batch puts back together what it changed.
    """

    def __init__(self, intercept: float = 0.0, n_slots: int = 0) -> None:
        self.coef = np.zeros(8)
        self.slots = np.zeros((n_slots, 8))
        self.scalars = np.array([float(intercept), 0.0])  # [intercept, L1 total], as C reads them
        self.n_steps = 0

    @property
    def intercept(self) -> float:
        """The intercept b."""
        return float(self.scalars[0])

    @intercept.setter
    def intercept(self, value: float) -> None:
        self.scalars[0] = value

    @property
    def l1_total(self) -> float:
        """river's ``max_cum_l1``: the L1 penalty every weight has been owed so far."""
        return float(self.scalars[1])

    @l1_total.setter
    def l1_total(self, value: float) -> None:
        self.scalars[1] = value

    def reserve(self, n_columns: int) -> None:
        """Make room for n_columns columns (new ones hold 0.0), in arrays this model owns and
        may write: a model loaded read-only (``joblib.load(..., mmap_mode="r")``) predicts
        from the mapped arrays and copies them on its first step."""
        if not self.writeable():
            self.coef, self.slots, self.scalars = np.array(self.coef), np.array(self.slots), np.array(self.scalars)
        capacity = len(self.coef)
        if n_columns > capacity:
            capacity = max(n_columns, 2 * capacity)
            coef, slots = np.zeros(capacity), np.zeros((len(self.slots), capacity))
            coef[: len(self.coef)], slots[:, : len(self.coef)] = self.coef, self.slots
            self.coef, self.slots = coef, slots

    def writeable(self) -> bool:
        """Whether the arrays may be written (not those of a model mapped read-only)."""
        return bool(self.coef.flags.writeable and self.slots.flags.writeable and self.scalars.flags.writeable)

    def save(self, columns: Sequence[int] | np.ndarray) -> Saved:
        """A copy of what a step on these columns can change."""
        return self.coef[columns], self.slots[:, columns]

    def restore(self, columns: Sequence[int] | np.ndarray, saved: Saved, n_columns: int) -> None:
        """Put back what :meth:`save` copied (the first copy of a repeated column wins), and
        zero the columns from n_columns on (those of names the failed batch added)."""
        columns = np.asarray(columns)[::-1]
        self.coef[columns], self.slots[:, columns] = saved[0][::-1], saved[1][:, ::-1]
        self.coef[n_columns:], self.slots[:, n_columns:] = 0.0, 0.0

    def kernel_state(self) -> np.ndarray:
        """[intercept, t, L1 total], as the kernel reads and updates it."""
        return np.array([self.scalars[0], self.n_steps, self.scalars[1]], dtype=np.float64)

    def advance(self, kernel_state: np.ndarray, n_steps: int) -> None:
        """Take the intercept and the L1 total back from the kernel after n_steps steps
        (counted here, exact past 2**53)."""
        self.scalars[:] = kernel_state[0], kernel_state[2]
        self.n_steps += n_steps

    def copy(self) -> ModelState:
        """An independent copy."""
        other = ModelState(n_slots=len(self.slots))
        other.coef, other.slots, other.scalars = self.coef.copy(), self.slots.copy(), self.scalars.copy()
        other.n_steps = self.n_steps
        return other
