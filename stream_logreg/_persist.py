"""A model as plain JSON-ready data, and back, every field checked; :class:`ModelFile` gives
a model ``save`` and ``load``. The checksummed file format is :mod:`stream_logreg.model_file`'s.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from stream_logreg import model_file
from stream_logreg._checks import check_real
from stream_logreg._space import FeatureSpace, HashedSpace
from stream_logreg._state import ModelState
from stream_logreg.exceptions import ModelFileError

MODEL_FORMAT = "stream_logreg.model"
Space = FeatureSpace | HashedSpace
MODEL_FORMAT_VERSION = 3  # 2: weights as [name, value] pairs, slots as lists; 1: lr= in place of optimizer=
_L1_ROW = "cumulative_l1"


def to_payload(params: Mapping[str, Any], space: Space, state: ModelState) -> dict[str, Any]:
    """The estimator's parameters, step count and intercept; the names of the weights kept
    (a hashed model: its buckets whose weight or optimizer state is not 0, as int32); and
    their weights then each row of the optimizer's state, as float64. The arrays are
    base64 of their little-endian bytes: a model of millions of weights is written without
    a Python object per weight."""
    columns, values = _stored(space, state)
    if isinstance(space, HashedSpace):
        kept: dict[str, Any] = {"buckets": _to_base64(columns.astype("<i4"))}
    else:
        kept = {"names": _names_of(space, columns)}
    return {**_header(params, state), **kept, "slot_rows": list(_slot_rows(params)), "values": _to_base64(values)}


def to_parts(params: Mapping[str, Any], space: Space, state: ModelState) -> tuple[dict[str, Any], Any]:
    """:func:`to_payload` as a JSON-ready header holding the names, and the weights then
    each row of the optimizer's state as one array (a compact form for large models: the
    Kafka state topic's)."""
    columns, values = _stored(space, state)
    return {**_header(params, state), "names": _names_of(space, columns)}, values


def _stored(space: Space, state: ModelState) -> tuple[Any, Any]:
    import numpy as np

    columns = space.stored_columns(state.coef, state.slots)
    return columns, np.concatenate([state.coef[columns], state.slots[:, columns].ravel()])


def restore_parts(header: Mapping[str, Any], values: Any, space: Space, state: ModelState) -> None:
    """Fill a new model's empty space and state from :func:`to_parts`' output; raise
    KeyError, TypeError or ValueError on the first bad field."""
    if not isinstance(header["names"], list):
        raise TypeError("names must be a list")
    _restore_columns(header, header["names"], values, space, state)


def _restore_columns(header: Mapping[str, Any], names: Any, values: Any, space: Space, state: ModelState) -> None:
    import numpy as np

    if len(values) != (1 + len(state.slots)) * len(names):
        raise ValueError(f"{len(values)} numbers for {len(names)} names and {len(state.slots)} rows of optimizer state")
    if not np.isfinite(values).all():
        raise ValueError("a weight or an optimizer state is not a finite number")
    restore_pairs({**header, "weights": [], "slots": {}}, space, state)
    columns = space.restore_columns(names)
    n = len(names)
    state.reserve(len(space))
    state.coef[columns] = values[:n]
    state.slots[:, columns] = np.reshape(values[n:], (len(state.slots), n))


def restore(payload: Mapping[str, Any], space: Space, state: ModelState) -> None:
    """Fill a new model's empty space and state from :func:`to_payload`'s output (or a
    version 1 or 2 file's); raise KeyError, TypeError or ValueError on the first bad field."""
    if "values" not in payload:
        return restore_pairs(payload, space, state)
    if payload.get("slot_rows") != list(_slot_rows(params_from_payload(payload))):
        raise ValueError(f"the optimizer's state rows {str(payload.get('slot_rows'))[:80]} are not this optimizer's")
    if "buckets" in payload:
        if not isinstance(space, HashedSpace):
            raise ValueError("the file holds buckets of a hashed model but its params have no n_features")
        names: Any = _from_base64("buckets", payload["buckets"], "<i4")
    elif isinstance(payload["names"], list):
        names = payload["names"]
    else:
        raise TypeError("names must be a list")
    _restore_columns(payload, names, _from_base64("values", payload["values"], "<f8"), space, state)


def _to_base64(array: Any) -> str:
    import base64

    return base64.b64encode(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")


def _from_base64(what: str, text: Any, dtype: str) -> Any:
    """The array written by :func:`_to_base64`, native and writable; ValueError if it is not one."""
    import base64
    import binascii

    import numpy as np

    if not isinstance(text, str):
        raise TypeError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"{what} is not base64 ({e})") from None
    if len(raw) % np.dtype(dtype).itemsize:
        raise ValueError(f"{what} holds {len(raw)} bytes, not a whole number of {dtype} values")
    return np.frombuffer(raw, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))


def _names_of(space: Space, columns: Any) -> list[Any]:
    """The names of the columns, checked to be str or int (the only ones a file holds)."""
    names = space.names()
    names = [names[c] for c in columns.tolist()] if len(columns) != len(names) else list(names)
    return _saveable(names)


def _saveable(names: list[Any]) -> list[Any]:
    bad = [name for name in names if type(name) not in (str, int)]
    if bad:
        raise TypeError(
            f"feature name {bad[0]!r} is a {type(bad[0]).__name__}; only str and int names "
            "can be saved; rename the features to strings"
        )
    return names


def _header(params: Mapping[str, Any], state: ModelState) -> dict[str, Any]:
    return {
        "params": {name: _param_to_json(name, value) for name, value in params.items()},
        "n_steps": state.n_steps,
        "intercept": state.intercept,
        "l1_total": state.l1_total,
    }


def _slot_rows(params: Mapping[str, Any]) -> tuple[str, ...]:
    from stream_logreg import _spec

    return _spec.slot_names(params["optimizer"]) + ((_L1_ROW,) if params["l1"] else ())


def params_from_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator's parameters as river objects again, for its constructor. A version-1
    file's ``lr`` becomes ``optim.SGD(lr)``."""
    params = dict(payload["params"])
    if "lr" in params and "optimizer" not in params:
        params["optimizer"] = {"name": "SGD", "lr": params.pop("lr")}
    return {name: _param_from_json(name, value) for name, value in params.items()}


def restore_pairs(payload: Mapping[str, Any], space: Space, state: ModelState) -> None:
    """Fill a new model's empty space and state from a version 1 or 2 file's payload
    (weights as [name, value] pairs); raise KeyError, TypeError or ValueError on the first
    bad field."""
    n_steps = payload["n_steps"]
    if type(n_steps) is not int or not 0 <= n_steps < 2**63:
        raise ValueError(f"n_steps must be an int in [0, 2**63), got {str(n_steps)[:40]}")
    state.n_steps = n_steps
    state.intercept = _finite_float("intercept", payload["intercept"])
    state.l1_total = _finite_float("l1_total", payload.get("l1_total", 0.0))
    state.coef[:], state.slots[:] = 0.0, 0.0  # what the file does not hold is 0 (a hashed model's start aside)
    pairs = payload["weights"]
    if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise TypeError("weights must be a list of [name, weight] pairs")
    columns = space.restore_columns([name for name, _ in pairs])
    state.reserve(len(space))
    state.coef[columns] = [_finite_float(f"weight {name!r}", value) for name, value in pairs]
    slots = payload.get("slots", {})
    if pairs and len(slots) != len(state.slots):
        raise ValueError(f"{len(slots)} rows of optimizer state, the optimizer keeps {len(state.slots)}")
    for row, values in enumerate(slots.values()):
        if not isinstance(values, list) or len(values) != len(pairs):
            raise ValueError(f"a row of optimizer state has {len(values)} values for {len(pairs)} weights")
        state.slots[row, columns] = [_finite_float("an optimizer state", value) for value in values]


class ModelFile:
    """Saving and loading, for a model with ``_space``, ``_state`` and a constructor whose
    parameters are its attributes (river's convention)."""

    _space: Space
    _state: ModelState

    def save(self, path: str | Path, progress: dict[str, Any] | None = None) -> None:
        """Write the model to ``path`` as a checksummed JSON document, atomically.

        Floats round-trip bit for bit. Feature names must be str or int. ``progress``
        (JSON-ready data: how far a replay or a consumer got, its metrics) is stored
        alongside and read back by :meth:`load_with_progress`.

        >>> import os, tempfile
        >>> from stream_logreg import LogisticRegression
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
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`; raise ModelFileError if the file is bad."""
        return cls.load_with_progress(path)[0]

    @classmethod
    def load_with_progress(cls, path: str | Path) -> tuple[Self, dict[str, Any] | None]:
        """Read a model and the progress saved with it (None if there is none)."""
        payload = model_file.read_document(path, MODEL_FORMAT, (1, 2, MODEL_FORMAT_VERSION))
        try:
            return cls.from_payload(payload), payload.get("progress")
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"the model inside is invalid ({e})", "save the model again") from None

    def to_payload(self) -> dict[str, Any]:
        """The model's state as plain JSON-ready data (parameters, step count, weights)."""
        params = {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}
        return to_payload(params, self._space, self._state)

    def to_parts(self) -> tuple[dict[str, Any], Any]:
        """The model as a JSON-ready header (parameters, step count, intercept, feature
        names) and its weights as a float64 array, in the names' order."""
        params = {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}
        return to_parts(params, self._space, self._state)

    @classmethod
    def from_parts(cls, header: Mapping[str, Any], coef: Any) -> Self:
        """Rebuild a model from :meth:`to_parts`' output, checking every field.

        >>> from stream_logreg import LogisticRegression
        >>> model = LogisticRegression()
        >>> model.learn_one({"a": 1.0, "b": 2.0}, True)
        >>> LogisticRegression.from_parts(*model.to_parts()).weights == model.weights
        True
        """
        model = cls(**params_from_payload(header))
        restore_parts(header, coef, model._space, model._state)
        return model

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuild a model from :meth:`to_payload`'s output, checking every field."""
        model = cls(**params_from_payload(payload))
        restore(payload, model._space, model._state)
        return model


def _finite_float(what: str, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _param_to_json(name: str, value: Any) -> Any:
    """A constructor parameter's file form: a number, or a river object as its name and
    parameters."""
    if isinstance(value, numbers.Real) or (name == "n_features" and value is None):
        return value
    from river import optim

    if name == "intercept_lr":
        return _rate_to_json(name, value)
    if name == "optimizer":
        from stream_logreg import _spec

        if not _spec.keeps_state_of(value):
            raise TypeError(
                f"optimizer={value!r} cannot be saved: it keeps its state in itself, which has no file form; "
                "use SGD, AdaGrad, RMSProp, Adam or FTRLProximal to save the model"
            )
        fields = value._get_params()
        if "lr" in fields:
            fields["lr"] = _rate_to_json("the optimizer's lr", value.lr)
        return {"name": type(value).__name__, **fields}
    if name == "initializer" and type(value) is optim.initializers.Normal:
        raise TypeError(
            f"initializer={value!r} cannot be saved: its random state has no file form; "
            "use Zeros or Constant to save the model"
        )
    fields = value._get_params()
    if not all(isinstance(field, numbers.Real) for field in fields.values()):
        raise TypeError(f"{name}={value!r} cannot be saved: only parameters that are numbers have a file form")
    return {"name": type(value).__name__, **fields}


def _param_from_json(name: str, value: Any) -> Any:
    """A constructor parameter from its file form, every number checked."""
    if name == "intercept_lr":
        return _rate_from_json(name, value)
    if name not in ("optimizer", "loss", "initializer"):
        return value
    from river import optim

    module = {"optimizer": optim, "loss": optim.losses, "initializer": optim.initializers}[name]
    base = {"optimizer": optim.base.Optimizer, "loss": optim.losses.BinaryLoss, "initializer": optim.base.Initializer}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"{name} must be a name and parameters, got {str(value)[:60]}")
    fields = {key: field for key, field in value.items() if key != "name"}
    cls = getattr(module, value["name"], None)
    if not (isinstance(cls, type) and issubclass(cls, base[name])):
        raise ValueError(f"unknown {name} {value['name']!r}")
    if "lr" in fields:
        fields["lr"] = _rate_from_json("the optimizer's lr", fields["lr"])
    for key, field in fields.items():
        if key != "lr":
            check_real(f"{name}'s {key}", field)
    return cls(**fields)


def _rate_to_json(name: str, rate: Any) -> float | dict[str, Any]:
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


def _rate_from_json(name: str, value: Any) -> Any:
    """A learning rate from its file form, every number checked (> 0, or >= 0 for the
    intercept's)."""
    from river.optim import schedulers

    allow_zero = name == "intercept_lr"
    if not isinstance(value, dict):
        check_real(name, value, minimum=0.0, strict=not allow_zero)
        return value
    kind = value.get("scheduler")
    check_real(f"{name}'s learning_rate", value.get("learning_rate"), minimum=0.0, strict=not allow_zero)
    if kind == "constant":
        return schedulers.Constant(value["learning_rate"])
    if kind == "inverse_scaling":
        check_real(f"{name}'s power", value.get("power"), minimum=0.0)
        return schedulers.InverseScaling(value["learning_rate"], value["power"])
    raise ValueError(f"unknown learning-rate scheduler {kind!r}")
