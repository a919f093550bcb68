"""LogisticRegression: per-example SGD on the log loss, a drop-in for river's."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from river import base, optim

from stream_logreg import _dictstep, checkpoint
from stream_logreg._math import sigmoid
from stream_logreg.exceptions import ModelFileError

Rate = float | optim.base.Scheduler

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
        _check_rate("lr", lr, allow_zero=False)
        _check_real("l2", l2, minimum=0.0)
        _check_real("intercept_init", intercept_init)
        _check_rate("intercept_lr", intercept_lr, allow_zero=True)
        _check_real("clip_gradient", clip_gradient, minimum=0.0, strict=True)
        self.lr = lr
        self.l2 = l2
        self.intercept_init = intercept_init
        self.intercept_lr = intercept_lr
        self.clip_gradient = clip_gradient
        self.intercept = float(intercept_init)
        self._weights: dict[Any, float] = {}
        self._n_steps = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"lr": 0.05, "l2": 0.001}
        yield {"lr": optim.schedulers.InverseScaling(0.1), "intercept_lr": 0.0}

    @property
    def weights(self) -> dict[Any, float]:
        """A copy of the weights, one per feature name seen so far."""
        return dict(self._weights)

    @property
    def n_steps(self) -> int:
        """How many examples the model has learned (the schedulers' t)."""
        return self._n_steps

    # -- single examples ------------------------------------------------------------------

    def learn_one(self, x: dict, y: Any, w: float = 1.0) -> None:
        """Take one SGD step on the example (x, y) with sample weight w.

        x is checked completely before anything changes: a bad value raises and leaves
        the model as it was.
        """
        label = _check_label(y)
        weight = _check_sample_weight(w)
        t = self._n_steps
        self.intercept = _dictstep.step(
            self._weights,
            x if type(x) is dict else dict(x),
            label,
            weight,
            _rate_at(self.lr, t),
            _rate_at(self.intercept_lr, t),
            self.l2,
            self.clip_gradient,
            self.intercept,
        )
        self._n_steps = t + 1

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        """Return ``{False: 1 - p, True: p}`` with p = g(theta^T x + b)."""
        p = sigmoid(_dictstep.margin(self._weights, x if type(x) is dict else dict(x), self.intercept))
        return {False: 1.0 - p, True: p}

    # -- mini-batches ---------------------------------------------------------------------

    def learn_many(self, X: pd.DataFrame, y: pd.Series, w: pd.Series | float | None = None) -> None:
        """Apply one SGD step per row, in row order: the same as looping ``learn_one``.

        Everything is checked before the first step, so a bad batch changes nothing.
        """
        values, columns = _check_frame(X)
        labels = _check_labels(y, len(values))
        sample_weights = _check_sample_weights(w, len(values))
        for row, label, weight in zip(values.tolist(), labels, sample_weights, strict=True):
            self.learn_one(dict(zip(columns, row, strict=True)), label, weight)

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a DataFrame with columns False and True, one row per row of X."""
        values, columns = _check_frame(X)
        coef = np.array([self._weights.get(c, 0.0) for c in columns], dtype=np.float64)
        p = _sigmoid_array(values @ coef + self.intercept)
        return pd.DataFrame({False: 1.0 - p, True: p}, index=X.index)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """Return a boolean Series, True where the probability of True exceeds 0.5."""
        return self.predict_proba_many(X)[True] > 0.5

    # -- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` as a checksummed JSON document, atomically.

        Floats round-trip bit for bit. Feature names must be str or int.

        >>> import os, tempfile
        >>> model = LogisticRegression()
        >>> model.learn_one({"a": 1.0}, True)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
        >>> model.save(path)
        >>> LogisticRegression.load(path).weights == model.weights
        True
        """
        checkpoint.write_document(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, self.to_payload())

    @classmethod
    def load(cls, path: str | Path) -> LogisticRegression:
        """Read a model written by :meth:`save`; raise ModelFileError if the file is bad."""
        payload = checkpoint.read_document(path, MODEL_FORMAT, MODEL_FORMAT_VERSION)
        try:
            return cls.from_payload(payload)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"the model inside is invalid ({e})", "save the model again") from None

    def to_payload(self) -> dict[str, Any]:
        """The model's state as plain JSON-ready data (parameters, step count, weights)."""
        names = list(self._weights)
        bad = [n for n in names if type(n) not in (str, int)]
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
            "weights": [[name, self._weights[name]] for name in names],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> LogisticRegression:
        """Rebuild a model from :meth:`to_payload`'s output, checking every field."""
        params = dict(payload["params"])
        params["lr"] = _rate_from_json(params["lr"])
        params["intercept_lr"] = _rate_from_json(params["intercept_lr"])
        model = cls(**params)
        n_steps = payload["n_steps"]
        if type(n_steps) is not int or n_steps < 0:
            raise ValueError(f"n_steps must be an int >= 0, got {n_steps!r}")
        model._n_steps = n_steps
        model.intercept = _finite_float("intercept", payload["intercept"])
        for name, value in payload["weights"]:
            if type(name) not in (str, int):
                raise TypeError(f"feature name {name!r} is not a str or int")
            model._weights[name] = _finite_float(f"weight {name!r}", value)
        return model


# -- checks -------------------------------------------------------------------------------


def _check_real(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        sign = ">" if strict else ">="
        raise ValueError(f"{name} must be {sign} {minimum}, got {value!r}")


def _check_rate(name: str, value: Any, allow_zero: bool) -> None:
    if isinstance(value, optim.base.Scheduler):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float or a river.optim.schedulers scheduler, "
            f"got {value!r} ({type(value).__name__})"
        )
    _check_real(name, value, minimum=0.0, strict=not allow_zero)


def _rate_at(rate: Rate, t: int) -> float:
    if type(rate) is float:
        return rate
    if isinstance(rate, optim.base.Scheduler):
        return rate.get(t)
    return float(rate)


def _check_label(y: Any) -> float:
    if y is True:
        return 1.0
    if y is False:
        return 0.0
    if isinstance(y, (numbers.Real, np.bool_)) and not isinstance(y, str):
        if y == 1:
            return 1.0
        if y == 0:
            return 0.0
    raise ValueError(
        f"the label y={y!r} ({type(y).__name__}) is not binary; y must be False, True, 0 or 1; "
        "map the target to one of these before learning"
    )


def _check_sample_weight(w: Any) -> float:
    if type(w) is float and 0.0 <= w < math.inf:
        return w
    if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (0.0 <= float(w) < math.inf):
        raise ValueError(
            f"the sample weight w={w!r} ({type(w).__name__}) must be a finite real number >= 0; "
            "pass w=1.0 for an unweighted example"
        )
    return float(w)


def _check_frame(X: Any) -> tuple[np.ndarray, list[Hashable]]:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas.DataFrame, got {type(X).__name__}")
    for column, dtype in X.dtypes.items():
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise TypeError(
                f"feature {column!r} has dtype {dtype}, which is not numeric; "
                "convert it to float (or one-hot encode it) first"
            )
    values = X.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(
            f"feature {X.columns[col]!r} has the value {float(values[row, col])!r} in row {X.index[row]!r}, "
            "which is not finite; drop or impute NaN and infinite values first"
        )
    return values, list(X.columns)


def _check_labels(y: Any, n: int) -> list[float]:
    labels = [_check_label(v) for v in y]
    if len(labels) != n:
        raise ValueError(f"y has {len(labels)} labels but X has {n} rows; pass one label per row")
    return labels


def _check_sample_weights(w: Any, n: int) -> list[float]:
    if w is None:
        return [1.0] * n
    if isinstance(w, numbers.Real):
        return [_check_sample_weight(w)] * n
    weights = [_check_sample_weight(v) for v in w]
    if len(weights) != n:
        raise ValueError(f"w has {len(weights)} weights but X has {n} rows; pass one per row")
    return weights


def _finite_float(what: str, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _sigmoid_array(z: np.ndarray) -> np.ndarray:
    """Elementwise stable sigmoid, the array twin of ``_math.sigmoid``."""
    p = 1.0 / (1.0 + np.exp(-np.maximum(z, -700.0)))
    tail = z <= -700.0
    p[tail] = np.exp(z[tail])
    return p


# -- learning rates in files --------------------------------------------------------------


def _rate_to_json(name: str, rate: Rate) -> float | dict[str, Any]:
    if isinstance(rate, optim.schedulers.Constant):
        return {"scheduler": "constant", "learning_rate": rate.learning_rate}
    if isinstance(rate, optim.schedulers.InverseScaling):
        return {"scheduler": "inverse_scaling", "learning_rate": rate.learning_rate, "power": rate.power}
    if isinstance(rate, optim.base.Scheduler):
        raise TypeError(
            f"{name}={rate!r} cannot be saved: only floats, Constant and InverseScaling "
            "schedules have a file form; use one of those to save the model"
        )
    return rate


def _rate_from_json(value: Any) -> Rate:
    if not isinstance(value, dict):
        return value
    kind = value.get("scheduler")
    if kind == "constant":
        return optim.schedulers.Constant(value["learning_rate"])
    if kind == "inverse_scaling":
        return optim.schedulers.InverseScaling(value["learning_rate"], value["power"])
    raise ValueError(f"unknown learning-rate scheduler {kind!r}")
