"""LogisticRegression: per-example SGD on the log loss, a drop-in for river's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from river import base

from stream_logreg import _batches, _dictstep, _spec
from stream_logreg._checks import (
    check_frame,
    check_label,
    check_labels,
    check_rate,
    check_real,
    check_sample_weight,
    check_sample_weights,
    check_sparse,
)
from stream_logreg._math import sigmoid
from stream_logreg._persist import ModelFile
from stream_logreg._space import FeatureSpace
from stream_logreg._state import ModelState

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse

    from stream_logreg._kernel import Rule
    from stream_logreg._spec import Rate


class LogisticRegression(ModelFile, base.MiniBatchClassifier):
    """Binary logistic regression learned online, one SGD step per example.

    Each labelled example (x, y) moves the model by one step on the single-sample log loss:
    with z = theta^T x + b and g(z) the sigmoid, ``theta_j -= lr(t) * ((g(z) - y) x_j +
    l2 theta_j)`` for every feature present in x and ``b -= intercept_lr(t) * (g(z) - y)``.
    The steps follow river's ``LogisticRegression`` with ``optim.SGD`` in the same order, so
    the two give the same weights (see the README for the one documented difference, on
    margins beyond |z| > 18 where river cuts the sigmoid's tails).

    ``learn_one`` runs a compiled step on the dict; ``learn_many`` (DataFrame) and
    ``learn_batch`` (list of dicts) run the compiled kernel over the whole batch. All three
    give the same model, bit for bit.

    Parameters
    ----------
    lr
        Learning rate of the weights: a float > 0 or a river scheduler
        (``river.optim.schedulers``), evaluated at the step count t (0 for the first step).
    l2
        L2 penalty >= 0, applied to the weights of the features present in x.
    intercept_init
        Initial intercept.
    intercept_lr
        Learning rate of the intercept: a float >= 0 (0 freezes it) or a river scheduler.
    clip_gradient
        The loss gradient g(z) - y, times the sample weight, is clipped to
        [-clip_gradient, clip_gradient].

    Examples
    --------
    >>> from stream_logreg import LogisticRegression
    >>> model = LogisticRegression(lr=0.5)
    >>> for x, y in [({"a": 1.0}, True), ({"a": -1.0}, False)] * 20:
    ...     model.learn_one(x, y)
    >>> model.predict_one({"a": 2.0})
    True
    >>> round(model.predict_proba_one({"a": 2.0})[True], 4)
    0.9971
    """

    def __init__(
        self,
        lr: Rate = 0.01,
        l2: float = 0.0,
        intercept_init: float = 0.0,
        intercept_lr: Rate = 0.01,
        clip_gradient: float = 1e12,
    ) -> None:
        check_rate("lr", lr, allow_zero=False)
        check_real("l2", l2, minimum=0.0)
        check_real("intercept_init", intercept_init)
        check_rate("intercept_lr", intercept_lr, allow_zero=True)
        check_real("clip_gradient", clip_gradient, minimum=0.0, strict=True)
        self.lr = lr
        self.l2 = l2
        self.intercept_init = intercept_init
        self.intercept_lr = intercept_lr
        self.clip_gradient = clip_gradient
        self._space = FeatureSpace()
        self._state = ModelState(intercept_init)
        self._one_step: tuple[tuple, int, tuple[float, ...]] | None = None

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        from river import optim

        yield {"lr": 0.05, "l2": 0.001}
        yield {"lr": optim.schedulers.InverseScaling(0.1), "intercept_lr": 0.0}

    @property
    def weights(self) -> dict[Any, float]:
        """A copy of the weights, one per feature name seen so far."""
        names = self._space.names()
        return dict(zip(names, self._state.coef[: len(names)].tolist(), strict=True))

    @property
    def intercept(self) -> float:
        """The intercept b."""
        return self._state.intercept

    @property
    def n_steps(self) -> int:
        """How many examples the model has learned (the schedulers' t)."""
        return self._state.n_steps

    # -- one example ----------------------------------------------------------------------

    def learn_one(self, x: dict, y: Any, w: float = 1.0) -> None:
        """Take one SGD step on the example (x, y) with sample weight w.

        x is checked completely before anything changes: a bad value raises and leaves
        the model as it was.
        """
        label = check_label(y)
        weight = check_sample_weight(w)
        if type(x) is not dict:
            x = dict(x)
        state, index = self._state, self._space.index
        if len(index) + len(x) > len(state.coef):
            state.reserve(len(index) + len(x))
        t = state.n_steps
        entry = self._one_step
        if entry is None or entry[0] != (self.lr, self.intercept_lr, self.l2, self.clip_gradient):
            entry = self._one_step_entry(t)
        try:
            state.intercept = _dictstep.step(entry[1], index, state.coef, state.slots, x, label, weight, entry[2],
                                             state.intercept, t)  # fmt: skip
        except ValueError:
            if state.coef.flags.writeable:
                raise
            state.reserve(len(state.coef))  # a read-only model copies its arrays on its first step
            self.learn_one(x, label, weight)
            return
        state.n_steps = t + 1

    def _one_step_entry(self, t: int) -> tuple[tuple, int, tuple[float, ...]]:
        """(the parameters, the compiled one-example step, its flat parameters at step t);
        kept in ``_one_step`` while the parameters stay the same, if it holds for every t."""
        key = (self.lr, self.intercept_lr, self.l2, self.clip_gradient)
        address, params, for_every_t = _spec.one_step(t, *key)
        if for_every_t:
            self._one_step = (key, address, params)
        return key, address, params

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        """Return ``{False: 1 - p, True: p}`` with p = g(theta^T x + b)."""
        state = self._state
        z = _dictstep.margin(self._space.index, state.coef, x if type(x) is dict else dict(x), state.intercept)
        p = sigmoid(z)
        return {False: 1.0 - p, True: p}

    # -- batches --------------------------------------------------------------------------

    def learn_batch(
        self, xs: Sequence[dict], ys: Sequence[Any], ws: Sequence[float] | np.ndarray | None = None
    ) -> np.ndarray:
        """Learn a micro-batch of dicts, one SGD step per example in order; the same model
        as calling ``learn_one`` on each, computed by the compiled kernel.

        Returns, for each example, the probability of True predicted just before it was
        learned (what progressive validation scores). Everything is checked first: a bad
        example raises and leaves the model as it was.

        >>> model = LogisticRegression(lr=0.5)
        >>> model.learn_batch([{"a": 1.0}, {"a": -1.0, "b": 2.0}], [True, False]).round(4).tolist()
        [0.5, 0.4391]
        >>> {name: round(weight, 4) for name, weight in model.weights.items()}
        {'a': 0.4695, 'b': -0.4391}
        """
        xs = xs if type(xs) is list else list(xs)
        labels = check_labels(ys, len(xs))
        weights = check_sample_weights(ws, len(xs))
        rule = self._rule()
        if rule is None:
            return _batches.learn_one_by_one(self, xs, labels, weights)
        return _batches.learn_dicts(self._space, self._state, rule, xs, labels, weights)

    def learn_many(
        self, X: pd.DataFrame | scipy.sparse.sparray, y: pd.Series, w: pd.Series | float | None = None
    ) -> None:
        """Apply one SGD step per row, in row order: the same as looping ``learn_one``.

        X is a DataFrame, or a scipy.sparse matrix whose stored entries are the features
        present in each row, named by their column number (hashed features, for example).
        Runs the compiled kernel. Everything is checked before the first step, so a bad
        batch changes nothing.
        """
        if not _is_frame(X):
            self._learn_sparse(X, y, w)
            return
        values, columns = check_frame(X, check_finite=False)  # the kernel stops at NaN or inf
        labels, weights = check_labels(y, len(values)), check_sample_weights(w, len(values))
        self.learn_array(values, columns, labels, weights, return_probas=False, row_names=X.index)

    def learn_array(
        self,
        values: np.ndarray,
        columns: Sequence[Any],
        labels: np.ndarray,
        weights: np.ndarray | None = None,
        return_probas: bool = True,
        row_names: Sequence[Any] | pd.Index | None = None,
    ) -> np.ndarray:
        """Learn the rows of a float64 array whose columns are the features ``columns``, in
        row order, with labels (0.0/1.0) and sample weights already checked; return the
        probability predicted for each row before it was learned (an empty array when
        ``return_probas`` is False, which saves a little time).

        The path ``learn_many`` and file replays take. A row with a NaN or infinite value,
        or whose margin overflows, raises an error naming it (by ``row_names``, else its
        position) and changes nothing.
        """
        if weights is None:
            weights = np.ones(len(values))
        rule = self._rule()
        if rule is None:
            xs = [dict(zip(columns, row, strict=True)) for row in values.tolist()]
            return _batches.learn_one_by_one(self, xs, labels, weights)
        args = (values, columns, labels, weights, return_probas, row_names)
        return _batches.learn_dense(self._space, self._state, rule, *args)

    def _learn_sparse(self, X: Any, y: Any, w: Any) -> None:
        indptr, indices, data = check_sparse(X)
        labels = check_labels(y, len(indptr) - 1)
        weights = check_sample_weights(w, len(indptr) - 1)

        def row(i: int) -> dict:
            span = slice(indptr[i], indptr[i + 1])
            return dict(zip(indices[span].tolist(), data[span].tolist(), strict=True))

        rule = self._rule()
        if rule is None:
            _batches.learn_one_by_one(self, [row(i) for i in range(len(labels))], labels, weights)
            return
        _batches.learn_sparse(self._space, self._state, rule, (indptr, indices, data), X.shape[1], labels, weights, row)

    def _rule(self) -> Rule | None:
        """The kernel's rule for every step, or None when a rate is a scheduler it cannot express."""
        return _spec.rule_for(self.lr, self.intercept_lr, self.l2, self.clip_gradient)

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a DataFrame with columns False and True, one row per row of X."""
        import pandas as pd

        values, columns = check_frame(X)
        state, space = self._state, self._space
        coef = np.array([state.coef[c] if (c := space.column_of(name)) is not None else 0.0 for name in columns])
        z = values @ coef + state.intercept
        p = 1.0 / (1.0 + np.exp(-np.maximum(z, -700.0)))
        tail = z <= -700.0
        p[tail] = np.exp(z[tail])
        return pd.DataFrame({False: 1.0 - p, True: p}, index=X.index)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """Return a boolean Series, True where the probability of True exceeds 0.5."""
        return self.predict_proba_many(X)[True] > 0.5


def _is_frame(X: Any) -> bool:
    """Whether X is a pandas DataFrame, without importing pandas for other inputs."""
    return type(X).__module__.startswith("pandas") or not hasattr(X, "tocsr")
