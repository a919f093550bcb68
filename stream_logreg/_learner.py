"""LogisticRegression: per-example SGD on the log loss, a drop-in for river's."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from river import base

from stream_logreg import _dictstep, model_file
from stream_logreg._checks import (
    check_frame,
    check_label,
    check_labels,
    check_rate,
    check_real,
    check_sample_weight,
    check_sample_weights,
    check_sparse,
    nonfinite_error,
)
from stream_logreg._math import sigmoid
from stream_logreg.exceptions import MarginError, ModelFileError

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse
    from river.optim.base import Scheduler

    Rate = float | Scheduler

MODEL_FORMAT = "stream_logreg.model"
MODEL_FORMAT_VERSION = 1


class LogisticRegression(base.MiniBatchClassifier):
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
        self.intercept = float(intercept_init)
        self._n_steps = 0
        # Feature name -> column of _coef, in the order the names were first seen.
        self._index: dict[Any, int] = {}
        self._coef = np.zeros(8)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        from river import optim

        yield {"lr": 0.05, "l2": 0.001}
        yield {"lr": optim.schedulers.InverseScaling(0.1), "intercept_lr": 0.0}

    @property
    def weights(self) -> dict[Any, float]:
        """A copy of the weights, one per feature name seen so far."""
        return dict(zip(self._index, self._coef[: len(self._index)].tolist(), strict=True))

    @property
    def n_steps(self) -> int:
        """How many examples the model has learned (the schedulers' t)."""
        return self._n_steps

    def _reserve(self, n_features: int) -> None:
        """Make room in _coef for n_features columns (new columns hold 0.0), and make it this
        model's own writable array: a model loaded read-only (``joblib.load(...,
        mmap_mode="r")``) predicts from the mapped array and copies it on its first step."""
        if not self._coef.flags.writeable:
            self._coef = np.array(self._coef, dtype=np.float64)
        if n_features > len(self._coef):
            coef = np.zeros(max(n_features, 2 * len(self._coef)))
            coef[: len(self._coef)] = self._coef
            self._coef = coef

    def _forget_features_after(self, n_features: int) -> None:
        """Drop the names registered after the first n_features (undoing a failed batch)."""
        for name in list(itertools.islice(reversed(self._index), len(self._index) - n_features)):
            del self._index[name]
        self._coef[n_features:] = 0.0

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
        if len(self._index) + len(x) > len(self._coef):
            self._reserve(len(self._index) + len(x))
        t = self._n_steps
        step = (x, label, weight, _rate_at(self.lr, t), _rate_at(self.intercept_lr, t), self.l2, self.clip_gradient,
                self.intercept)  # fmt: skip
        try:
            self.intercept = _dictstep.step(self._index, self._coef, *step)
        except ValueError:
            if self._coef.flags.writeable:
                raise
            self._reserve(len(self._coef))  # a read-only model copies its weights on its first step
            self.intercept = _dictstep.step(self._index, self._coef, *step)
        self._n_steps = t + 1

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        """Return ``{False: 1 - p, True: p}`` with p = g(theta^T x + b)."""
        z = _dictstep.margin(self._index, self._coef, x if type(x) is dict else dict(x), self.intercept)
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
        schedules = self._kernel_schedules()
        if schedules is None:
            return self._learn_one_by_one(xs, labels, weights)
        nnz = sum(map(len, xs))
        indptr = np.empty(len(xs) + 1, dtype=np.int64)
        indices = np.empty(nnz, dtype=np.int64)
        data = np.empty(nnz)
        n_before = len(self._index)
        try:
            _dictstep.pack(self._index, xs, indptr, indices, data)
        except BaseException:
            self._forget_features_after(n_before)
            raise
        return self._learn_csr(indptr, indices, data, indices, labels, weights, schedules, n_before, xs.__getitem__)

    def _learn_csr(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        data: np.ndarray,
        touched: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray,
        schedules: tuple[float, float, float, float],
        n_before: int,
        row: Callable[[int], dict],
    ) -> np.ndarray:
        """Run the CSR kernel on checked arrays whose columns are already registered (the
        first n_before existed before this batch; ``touched`` lists the model columns the
        batch can change); undo everything if a margin overflows."""
        from stream_logreg import _kernel

        self._reserve(len(self._index))
        saved = self._coef[touched]
        probas = np.empty(len(labels))
        state = np.array([self.intercept, self._n_steps], dtype=np.float64)
        bad_row = _kernel.learn_csr(
            indptr, indices, data, labels, weights, self._coef, state, *schedules, self.l2,
            float(self.clip_gradient), probas,
        )  # fmt: skip
        if bad_row >= 0:
            self._coef[touched[::-1]] = saved[::-1]
            self._forget_features_after(n_before)
            raise MarginError(row(bad_row))
        self.intercept, self._n_steps = float(state[0]), self._n_steps + len(labels)  # exact past 2**53
        return probas

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
        schedules = self._kernel_schedules()
        if schedules is None:
            xs = [dict(zip(columns, row, strict=True)) for row in values.tolist()]
            return self._learn_one_by_one(xs, labels, weights)
        n_before = len(self._index)
        cols = np.array([self._index.setdefault(c, len(self._index)) for c in columns], dtype=np.int64)
        self._reserve(len(self._index))
        from stream_logreg import _kernel

        saved = self._coef[cols]
        probas = np.empty(len(values) if return_probas else 0)
        state = np.array([self.intercept, self._n_steps], dtype=np.float64)
        bad_row = _kernel.learn_dense(
            values, labels, weights, cols, self._coef, state, *schedules, self.l2,
            float(self.clip_gradient), probas,
        )  # fmt: skip
        if bad_row >= 0:
            self._coef[cols] = saved
            self._forget_features_after(n_before)
            row_name = bad_row if row_names is None else row_names[bad_row]
            raise nonfinite_error(columns, values[bad_row], row_name) or MarginError(
                dict(zip(columns, values[bad_row].tolist(), strict=True))
            )
        self.intercept, self._n_steps = float(state[0]), self._n_steps + len(values)  # exact past 2**53
        return probas

    def _learn_sparse(self, X: Any, y: Any, w: Any) -> None:
        indptr, indices, data = check_sparse(X)
        labels = check_labels(y, len(indptr) - 1)
        weights = check_sample_weights(w, len(indptr) - 1)

        def row(i: int) -> dict:
            span = slice(indptr[i], indptr[i + 1])
            return dict(zip(indices[span].tolist(), data[span].tolist(), strict=True))

        schedules = self._kernel_schedules()
        if schedules is None:
            self._learn_one_by_one([row(i) for i in range(len(labels))], labels, weights)
            return
        # Register the columns that have entries (and only those), in column order.
        from stream_logreg import _kernel

        n_before = len(self._index)
        present = _kernel.present_columns(indices, X.shape[1])
        names = present.tolist()
        index = self._index
        new = [j for j in names if j not in index] if index else names
        index.update(zip(new, range(n_before, n_before + len(new)), strict=True))
        touched = np.fromiter(map(index.__getitem__, names), dtype=np.int64, count=len(names))
        if np.array_equal(touched, present):  # column j is the model's column j (hashed features, say)
            columns = indices
        else:
            lookup = np.zeros(X.shape[1], dtype=np.int64)
            lookup[present] = touched
            columns = lookup[indices]  # the model's column of each entry
        self._learn_csr(indptr, columns, data, touched, labels, weights, schedules, n_before, row)

    def _learn_one_by_one(self, xs: list[dict], labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The path for schedulers the kernel cannot express: learn_one on each example.

        On a bad example the model is put back as it was before the batch.
        """
        saved = (dict(self._index), self._coef.copy(), self.intercept, self._n_steps)
        probas = np.empty(len(xs))
        try:
            for i, (x, label, weight) in enumerate(zip(xs, labels.tolist(), weights.tolist(), strict=True)):
                probas[i] = self.predict_proba_one(x)[True]
                self.learn_one(x, label, weight)
        except BaseException:
            self._index, self._coef, self.intercept, self._n_steps = saved
            raise
        return probas

    def _kernel_schedules(self) -> tuple[float, float, float, float] | None:
        """(lr, lr_power, intercept_lr, intercept_lr_power) for the kernel, or None when a
        learning rate is a scheduler it cannot express."""
        lr, intercept_lr = _kernel_rate(self.lr), _kernel_rate(self.intercept_lr)
        if lr is None or intercept_lr is None:
            return None
        return (*lr, *intercept_lr)

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a DataFrame with columns False and True, one row per row of X."""
        import pandas as pd

        values, columns = check_frame(X)
        coef = np.array([self._coef[self._index[c]] if c in self._index else 0.0 for c in columns])
        z = values @ coef + self.intercept
        p = 1.0 / (1.0 + np.exp(-np.maximum(z, -700.0)))
        tail = z <= -700.0
        p[tail] = np.exp(z[tail])
        return pd.DataFrame({False: 1.0 - p, True: p}, index=X.index)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """Return a boolean Series, True where the probability of True exceeds 0.5."""
        return self.predict_proba_many(X)[True] > 0.5

    # -- files ----------------------------------------------------------------------------

    def save(self, path: str | Path, progress: dict[str, Any] | None = None) -> None:
        """Write the model to ``path`` as a checksummed JSON document, atomically.

        Floats round-trip bit for bit. Feature names must be str or int. ``progress``
        (JSON-ready data: how far a replay or a consumer got, its metrics) is stored
        alongside and read back by :meth:`load_with_progress`.

        >>> import os, tempfile
        >>> model = LogisticRegression()
        >>> model.learn_one({"a": 1.0}, True)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
        >>> model.save(path)
        >>> LogisticRegression.load(path).weights == model.weights
        True
        """
        payload = self.to_payload()
        if progress is not None:
            payload["progress"] = progress
        model_file.write_document(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, payload)

    @classmethod
    def load(cls, path: str | Path) -> LogisticRegression:
        """Read a model written by :meth:`save`; raise ModelFileError if the file is bad."""
        return cls.load_with_progress(path)[0]

    @classmethod
    def load_with_progress(cls, path: str | Path) -> tuple[LogisticRegression, dict[str, Any] | None]:
        """Read a model and the progress saved with it (None if there is none)."""
        payload = model_file.read_document(path, MODEL_FORMAT, MODEL_FORMAT_VERSION)
        try:
            return cls.from_payload(payload), payload.get("progress")
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"the model inside is invalid ({e})", "save the model again") from None

    def to_payload(self) -> dict[str, Any]:
        """The model's state as plain JSON-ready data (parameters, step count, weights)."""
        bad = [name for name in self._index if type(name) not in (str, int)]
        if bad:
            raise TypeError(
                f"feature name {bad[0]!r} is a {type(bad[0]).__name__}; only str and int names "
                "can be saved; rename the features to strings"
            )
        return {
            "params": {
                "lr": _rate_to_json("lr", self.lr),
                "l2": self.l2,
                "intercept_init": self.intercept_init,
                "intercept_lr": _rate_to_json("intercept_lr", self.intercept_lr),
                "clip_gradient": self.clip_gradient,
            },
            "n_steps": self._n_steps,
            "intercept": self.intercept,
            "weights": [[name, value] for name, value in self.weights.items()],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> LogisticRegression:
        """Rebuild a model from :meth:`to_payload`'s output, checking every field."""
        params = dict(payload["params"])
        params["lr"] = _rate_from_json("lr", params["lr"])
        params["intercept_lr"] = _rate_from_json("intercept_lr", params["intercept_lr"])
        model = cls(**params)
        n_steps = payload["n_steps"]
        if type(n_steps) is not int or not 0 <= n_steps < 2**63:
            raise ValueError(f"n_steps must be an int in [0, 2**63), got {str(n_steps)[:40]}")
        model._n_steps = n_steps
        model.intercept = _finite_float("intercept", payload["intercept"])
        pairs = payload["weights"]
        model._reserve(len(pairs))
        for name, value in pairs:
            if type(name) not in (str, int) or name in model._index:
                raise TypeError(f"feature name {name!r} is not a str or int, or is repeated")
            model._coef[len(model._index)] = _finite_float(f"weight {name!r}", value)
            model._index[name] = len(model._index)
        return model


def _rate_at(rate: Rate, t: int) -> float:
    if type(rate) is float:
        return rate
    if isinstance(rate, numbers.Real):
        return float(rate)
    return cast("Scheduler", rate).get(t)


def _kernel_rate(rate: Rate) -> tuple[float, float] | None:
    """(base, power) such that rate(t) = base / (t + 1) ** power, or None."""
    if isinstance(rate, numbers.Real):
        return float(rate), 0.0
    from river.optim import schedulers

    if type(rate) is schedulers.Constant:
        return float(rate.learning_rate), 0.0
    if type(rate) is schedulers.InverseScaling:
        return float(rate.learning_rate), float(rate.power)
    return None


def _is_frame(X: Any) -> bool:
    """Whether X is a pandas DataFrame, without importing pandas for other inputs."""
    return type(X).__module__.startswith("pandas") or not hasattr(X, "tocsr")


def _finite_float(what: str, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


# -- learning rates in files --------------------------------------------------------------


def _rate_to_json(name: str, rate: Rate) -> float | dict[str, Any]:
    if isinstance(rate, numbers.Real):
        return float(rate)
    from river.optim import schedulers

    if type(rate) is schedulers.Constant:
        return {"scheduler": "constant", "learning_rate": rate.learning_rate}
    if type(rate) is schedulers.InverseScaling:
        return {"scheduler": "inverse_scaling", "learning_rate": rate.learning_rate, "power": rate.power}
    raise TypeError(
        f"{name}={rate!r} cannot be saved: only floats, Constant and InverseScaling "
        "schedules have a file form; use one of those to save the model"
    )


def _rate_from_json(name: str, value: Any) -> Rate:
    """A learning rate from its file form, every number checked as the constructor checks a
    float rate (> 0, or >= 0 for the intercept's)."""
    if not isinstance(value, dict):
        return value
    from river.optim import schedulers

    kind = value.get("scheduler")
    allow_zero = name == "intercept_lr"
    check_real(f"{name}'s learning_rate", value.get("learning_rate"), minimum=0.0, strict=not allow_zero)
    if kind == "constant":
        return schedulers.Constant(value["learning_rate"])
    if kind == "inverse_scaling":
        check_real(f"{name}'s power", value.get("power"), minimum=0.0)
        return schedulers.InverseScaling(value["learning_rate"], value["power"])
    raise ValueError(f"unknown learning-rate scheduler {kind!r}")
