"""LogisticRegression: one step per example on its own loss, river's optimizers compiled; a drop-in for river's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from river import base, optim

from stream_logreg import _batches, _dictstep, _exact, _spec
from stream_logreg._checks import (
    check_frame,
    check_instance,
    check_label,
    check_labels,
    check_rate,
    check_real,
    check_sample_weight,
    check_sample_weights,
    check_sparse,
    row_names,
    series_values,
)
from stream_logreg._math import sigmoid
from stream_logreg._persist import ModelFile
from stream_logreg._space import FeatureSpace, HashedSpace
from stream_logreg._state import ModelState

if TYPE_CHECKING:
    import pandas as pd

    from stream_logreg._kernel import Rule


class LogisticRegression(ModelFile, base.MiniBatchClassifier):
    """Binary logistic regression learned online, one step per example: river's
    ``linear_model.LogisticRegression``, same constructor, same steps, same weights.

    Each labelled example (x, y) moves the model by one step on that example alone, in
    river's order: with z = theta^T x + b, the loss gradient g = dLoss/dz (for the log
    loss, sigmoid(z) - y) times the sample weight, clipped to +-clip_gradient; the
    intercept's step ``b -= intercept_lr(t) * g``; the optimizer's step on the gradient
    ``g x_j + l2 theta_j`` of each feature present in x; then, with ``l1`` > 0, river's
    cumulative L1 penalty on those features (its running total grows by
    ``l1 * optimizer.learning_rate`` at t + 1, and each weight is shrunk towards 0 by what
    it has not yet paid of it, never past 0). river refuses l1 and l2 together; here both
    apply (elastic net), in that order.

    SGD, AdaGrad, RMSProp, Adam and FTRLProximal with the log loss, float, ``Constant`` or
    ``InverseScaling`` rates and zero initial weights run in the compiled kernel, for
    ``learn_one``, ``learn_batch`` and ``learn_many`` alike, and give river's weights bit
    for bit (see the README for the one documented difference, on margins beyond |z| > 18
    where river cuts the sigmoid's tails). Everything else (other optimizers, losses,
    initializers, schedulers) takes an exact path through river's own code.

    Parameters
    ----------
    optimizer
        The optimizer of the weights (``river.optim``); None means ``optim.SGD(0.01)``.
    loss
        A binary loss (``river.optim.losses``); None means ``optim.losses.Log()``.
    l2
        L2 penalty >= 0, applied to the weights of the features present in x.
    l1
        L1 penalty >= 0, river's cumulative form (not with FTRLProximal, which has its own
        ``l1``).
    intercept_init
        Initial intercept.
    intercept_lr
        Learning rate of the intercept: a float >= 0 (0 freezes it; stored as
        ``optim.schedulers.Constant``, as river does) or a river scheduler.
    clip_gradient
        The loss gradient, times the sample weight, is clipped to [-clip_gradient, clip_gradient].
    initializer
        The initial weight of a new feature (``river.optim.initializers``); None means zeros.
    n_features
        Not river's: None (the default) learns features of any names, registered as they
        come. An int n makes a hashed model: its features are the ints 0 to n - 1 (the
        buckets of ``Features(hash_bits=B)`` with n = 2**B, or of river's
        ``FeatureHasher(n_features=n)``), its weights and optimizer state are arrays of n
        entries from the start, with no dict of names, so its memory is fixed whatever the
        stream's cardinality; a CSR matrix's column j is feature j. ``weights`` then holds
        the buckets whose weight is not 0.

    Examples
    --------
    >>> from river import optim
    >>> from stream_logreg import LogisticRegression
    >>> model = LogisticRegression(optimizer=optim.SGD(0.5))
    >>> for x, y in [({"a": 1.0}, True), ({"a": -1.0}, False)] * 20:
    ...     model.learn_one(x, y)
    >>> model.predict_one({"a": 2.0})
    True
    >>> round(model.predict_proba_one({"a": 2.0})[True], 4)
    0.9971

    A hashed model, on 2**20 buckets:

    >>> from stream_logreg import Features
    >>> features = Features("y", categorical=["country"], hash_bits=20)
    >>> hashed = LogisticRegression(optim.AdaGrad(0.1), n_features=2**20)
    >>> x, y = features.decode({"country": "DE", "price": 2.5, "y": 1})
    >>> hashed.learn_one(x, y)
    >>> len(hashed.weights), hashed._state.coef.shape
    (2, (1048576,))
    """

    def __init__(
        self,
        optimizer: optim.base.Optimizer | None = None,
        loss: optim.losses.BinaryLoss | None = None,
        l2: float = 0.0,
        l1: float = 0.0,
        intercept_init: float = 0.0,
        intercept_lr: float | optim.base.Scheduler = 0.01,
        clip_gradient: float = 1e12,
        initializer: optim.base.Initializer | None = None,
        n_features: int | None = None,
    ) -> None:
        check_instance("optimizer", optimizer, optim.base.Optimizer, "river.optim, such as optim.SGD(0.01)")
        check_instance("loss", loss, optim.losses.BinaryLoss, "river.optim.losses, such as optim.losses.Log()")
        check_real("l2", l2, minimum=0.0)
        check_real("l1", l1, minimum=0.0)
        check_real("intercept_init", intercept_init)
        check_rate("intercept_lr", intercept_lr, allow_zero=True)
        check_real("clip_gradient", clip_gradient, minimum=0.0, strict=True)
        check_instance("initializer", initializer, optim.base.Initializer, "river.optim.initializers")
        if n_features is not None and not (type(n_features) is int and 1 <= n_features <= 2**31):
            raise ValueError(
                f"n_features={n_features!r} is not an int in [1, 2**31]: pass the hashed model's number "
                "of buckets (2**hash_bits), or None for features of any names"
            )
        rate = getattr(optimizer, "lr", None)
        if rate is not None and _spec.keeps_state_of(optimizer):  # others check (or ignore) their own
            rate = rate.learning_rate if isinstance(rate, optim.schedulers.Constant) else rate
            check_rate("the optimizer's lr", rate, allow_zero=False)
        if l1 and isinstance(optimizer, optim.FTRLProximal):
            raise ValueError(
                f"l1={l1!r} with FTRLProximal: river's cumulative L1 penalty needs a learning rate, which "
                "FTRLProximal has not; pass the penalty to the optimizer instead, FTRLProximal(l1=...)"
            )
        self.optimizer = optim.SGD(0.01) if optimizer is None else optimizer
        self.loss = optim.losses.Log() if loss is None else loss
        self.l2 = l2
        self.l1 = l1
        self.intercept_init = intercept_init
        self.intercept_lr = (
            optim.schedulers.Constant(intercept_lr) if isinstance(intercept_lr, (int, float)) else intercept_lr
        )
        self.clip_gradient = clip_gradient
        self.initializer = initializer if initializer else optim.initializers.Zeros()
        self.n_features = n_features
        self._space: FeatureSpace | HashedSpace = FeatureSpace() if n_features is None else HashedSpace(n_features)
        self._state = ModelState(intercept_init, _spec.n_slots(self.optimizer, l1))
        if n_features is not None:
            self._state.reserve(n_features)
            self._state.coef[:] = _hashed_start(self.initializer)
        self._one_step: tuple[int | None, tuple[float, ...]] | None = None
        self._y_name = None

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"optimizer": optim.SGD(0.05), "l2": 0.001}
        yield {"optimizer": optim.SGD(optim.schedulers.InverseScaling(0.1)), "intercept_lr": 0.0}
        yield {"optimizer": optim.AdaGrad(0.1), "l1": 0.001}
        yield {"optimizer": optim.RMSProp(0.05)}
        yield {"optimizer": optim.Adam(0.05), "l2": 0.001, "l1": 0.001}
        yield {"optimizer": optim.FTRLProximal(l1=0.1)}
        yield {"optimizer": optim.Momentum(0.05), "loss": optim.losses.Hinge()}

    @property
    def _mutable_attributes(self) -> set[str]:
        return {"optimizer", "l2", "l1", "loss", "intercept_lr", "clip_gradient", "initializer"}  # not n_features

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _STEP_PARTS:  # the step changes: look up its compiled form again
            self.__dict__["_one_step"] = None
        super().__setattr__(name, value)

    def mutate(self, new_attrs: dict) -> None:
        """river's ``mutate``, which may change a part's own attributes (the optimizer's
        rate, say); the compiled step is looked up again afterwards."""
        super().mutate(new_attrs)
        self._one_step = None

    @property
    def weights(self) -> dict[Any, float]:
        """A copy of the weights, one per feature name seen so far (a hashed model's: one
        per bucket whose weight is not 0)."""
        return self._space.weights(self._state.coef)

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
        """Take one step on the example (x, y) with sample weight w.

        x is checked completely before anything changes: a bad value raises and leaves
        the model as it was.
        """
        label = check_label(y)
        weight = check_sample_weight(w)
        if type(x) is not dict:
            x = dict(x)
        entry = self._one_step
        if entry is None:
            entry = self._one_step_entry()
        if entry[0] is None:
            _exact.learn_one(self, x, label, weight)
            return
        state, space = self._state, self._space
        if space.columns_needed(len(x)) > len(state.coef):
            state.reserve(space.columns_needed(len(x)))
        try:
            _dictstep.step(entry[0], space.index, state.coef, state.slots, x, label, weight, entry[1], state.scalars,
                           state.n_steps)  # fmt: skip
        except ValueError:
            if state.writeable():
                raise
            state.reserve(len(state.coef))  # a read-only model copies its arrays on its first step
            self.learn_one(x, label, weight)
            return
        state.n_steps += 1

    def _one_step_entry(self) -> tuple[int | None, tuple[float, ...]]:
        """(the compiled one-example step, or None for the exact path; its flat parameters),
        kept in ``_one_step`` until a part of the step changes (``_STEP_PARTS``)."""
        from stream_logreg import _kernel

        rule = self._rule()
        entry = (None, ()) if rule is None else (_kernel.one_step_address(rule), _kernel.flat_params(rule))
        self._one_step = entry
        return entry

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        """Return ``{False: 1 - p, True: p}`` with p = g(theta^T x + b)."""
        state = self._state
        z = _dictstep.margin(self._space.index, state.coef, x if type(x) is dict else dict(x), state.intercept)
        p = sigmoid(z)
        return {False: 1.0 - p, True: p}

    # -- batches --------------------------------------------------------------------------

    def learn_batch(
        self,
        xs: Sequence[dict],
        ys: Sequence[Any],
        ws: Sequence[float] | np.ndarray | None = None,
        *,
        predict: Sequence[dict] | None = None,
    ) -> np.ndarray:
        """Learn a micro-batch of dicts, one step per example in order; the same model
        as calling ``learn_one`` on each, computed by the compiled kernel.

        Returns, for each example, the probability of True predicted just before it was
        learned (what progressive validation scores), from ``predict[i]`` instead of
        ``xs[i]`` if given (the same keys in the same order: a scaler's values before it
        learned the example, as river's pipelines predict). Everything is checked first: a
        bad example raises and leaves the model as it was.

        >>> model = LogisticRegression(optim.SGD(0.5))
        >>> model.learn_batch([{"a": 1.0}, {"a": -1.0, "b": 2.0}], [True, False]).round(4).tolist()
        [0.5, 0.4391]
        >>> {name: round(weight, 4) for name, weight in model.weights.items()}
        {'a': 0.4695, 'b': -0.4391}
        """
        xs = xs if type(xs) is list else list(xs)
        labels = check_labels(ys, len(xs))
        weights = check_sample_weights(ws, len(xs))
        if predict is not None:
            predict = predict if type(predict) is list else list(predict)
            if len(predict) != len(xs):
                raise ValueError(f"predict holds {len(predict)} dicts for {len(xs)} examples; give one per example")
        rule = self._rule()
        if rule is None:
            return _batches.learn_one_by_one(self, xs, labels, weights, predict)
        return _batches.learn_dicts(self._space, self._state, rule, xs, labels, weights, predict)

    def learn_many(self, X: Any, y: Any, w: Any = None) -> None:
        """Apply one step per row, in row order: the same as looping ``learn_one``.

        X is a data frame (pandas, polars, a pyarrow table: whatever river's takes), or a
        scipy.sparse matrix whose stored entries are the features present in each row,
        named by their column number (hashed features, for example); y and w are series
        of any of those backends, arrays or lists (w: a number for every row, or None).
        Runs the compiled kernel. Everything is checked before the first step, so a bad
        batch changes nothing.
        """
        self._y_name = getattr(y, "name", None)  # predict_many names its series so, as river's does
        y, w = series_values(y), series_values(w)
        if not _is_frame(X):
            self._learn_sparse(X, y, w)
            return
        values, columns, frame = check_frame(X, check_finite=False)  # the kernel stops at NaN or inf
        labels, weights = check_labels(y, len(values)), check_sample_weights(w, len(values))
        self.learn_array(values, columns, labels, weights, return_probas=False, row_names=row_names(frame))

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
        """The kernel's rule for every step, or None for the exact path. A model whose
        optimizer (or l1) was changed since it learned gets that optimizer's fresh state, as
        a new optimizer object has in river."""
        rows = _spec.n_slots(self.optimizer, self.l1)
        if len(self._state.slots) != rows:
            self._state.slots = np.zeros((rows, len(self._state.coef)))
        return _spec.rule_for(self.optimizer, self.loss, self.intercept_lr, self.l2, self.l1, self.clip_gradient,
                              self.initializer)  # fmt: skip

    def predict_proba_many(self, X: Any) -> Any:
        """Return a frame of X's kind with columns False and True, one row per row of X
        (pandas keeps X's index; other backends name the columns "False" and "True", as
        river's do)."""
        from river.utils import dataframe

        p, frame = self._probas(X)
        return dataframe.to_native_frame({False: 1.0 - p, True: p}, like=frame)

    def predict_many(self, X: Any) -> Any:
        """Return a boolean series of X's kind, True where the probability of True exceeds 0.5."""
        from river.utils import dataframe

        p, frame = self._probas(X)
        return dataframe.to_native_series(p > 0.5, name=self._y_name, like=frame)

    def _probas(self, X: Any) -> tuple[np.ndarray, Any]:
        values, columns, frame = check_frame(X)
        state, space = self._state, self._space
        coef = np.array([state.coef[c] if (c := space.column_of(name)) is not None else 0.0 for name in columns])
        z = values @ coef + state.intercept
        p = 1.0 / (1.0 + np.exp(-np.maximum(z, -700.0)))
        tail = z <= -700.0
        p[tail] = np.exp(z[tail])
        return p, frame


# The parameters a step depends on: assigning one of them drops the compiled step kept.
_STEP_PARTS = frozenset({"optimizer", "loss", "intercept_lr", "l2", "l1", "clip_gradient", "initializer"})


def _hashed_start(initializer: optim.base.Initializer) -> float:
    """Where every weight of a hashed model starts: each bucket is new until it is first
    seen, so a constant initializer fills them all at once; a random one cannot."""
    if type(initializer) is optim.initializers.Zeros:
        return 0.0
    if type(initializer) is optim.initializers.Constant:
        return float(initializer.value)
    raise ValueError(
        f"initializer={initializer!r} with n_features: a hashed model starts every bucket at once, so only "
        "Zeros and Constant initializers apply; use one of them, or n_features=None"
    )


def _is_frame(X: Any) -> bool:
    """Whether X is a data frame rather than a scipy.sparse matrix."""
    return not (type(X).__module__.startswith("scipy") and hasattr(X, "tocsr"))
