"""A LogisticRegression as plain JSON-ready data, and back, every field checked.

The checksummed file around it is :mod:`stream_logreg.model_file`'s.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stream_logreg._checks import check_real

if TYPE_CHECKING:
    from stream_logreg._space import FeatureSpace
    from stream_logreg._spec import Rate
    from stream_logreg._state import ModelState

MODEL_FORMAT = "stream_logreg.model"
MODEL_FORMAT_VERSION = 1
_RATES = ("lr", "intercept_lr")


def to_payload(params: Mapping[str, Any], space: FeatureSpace, state: ModelState) -> dict[str, Any]:
    """The estimator's parameters, then its step count, intercept and weights."""
    names = space.names()
    bad = [name for name in names if type(name) not in (str, int)]
    if bad:
        raise TypeError(
            f"feature name {bad[0]!r} is a {type(bad[0]).__name__}; only str and int names "
            "can be saved; rename the features to strings"
        )
    return {
        "params": {name: _rate_to_json(name, value) if name in _RATES else value for name, value in params.items()},
        "n_steps": state.n_steps,
        "intercept": state.intercept,
        "weights": [[name, value] for name, value in zip(names, state.coef.tolist(), strict=False)],
    }


def params_from_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator's parameters (rates as river schedulers again), for its constructor."""
    params = dict(payload["params"])
    for name in _RATES:
        params[name] = _rate_from_json(name, params[name])
    return params


def restore(payload: Mapping[str, Any], space: FeatureSpace, state: ModelState) -> None:
    """Fill a new model's empty space and state from :func:`to_payload`'s output; raise
    KeyError, TypeError or ValueError on the first bad field."""
    n_steps = payload["n_steps"]
    if type(n_steps) is not int or not 0 <= n_steps < 2**63:
        raise ValueError(f"n_steps must be an int in [0, 2**63), got {str(n_steps)[:40]}")
    state.n_steps = n_steps
    state.intercept = _finite_float("intercept", payload["intercept"])
    pairs, index = payload["weights"], space.index
    state.reserve(len(pairs))
    for name, value in pairs:
        if type(name) not in (str, int) or name in index:
            raise TypeError(f"feature name {name!r} is not a str or int, or is repeated")
        state.coef[len(index)] = _finite_float(f"weight {name!r}", value)
        index[name] = len(index)


def _finite_float(what: str, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


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
