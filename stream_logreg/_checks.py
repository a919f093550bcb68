"""Input checks shared by the learner: labels, sample weights, parameters, frames.

Every error says which value is wrong, why, and what to do about it.

>>> check_label(True), check_label(0), check_label(1.0)
(1.0, 0.0, 1.0)
>>> check_label(2)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: the label y=2 (int) is not binary; y must be False, True, 0 or 1; ...
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_real(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> None:
    """Raise unless ``value`` is a finite real number (not a bool) above ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        sign = ">" if strict else ">="
        raise ValueError(f"{name} must be {sign} {minimum}, got {value!r}")


def check_rate(name: str, value: Any, allow_zero: bool) -> None:
    """Raise unless ``value`` is a learning rate: a float > 0 (>= 0) or a river scheduler."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        check_real(name, value, minimum=0.0, strict=not allow_zero)
        return
    from river.optim.base import Scheduler

    if not isinstance(value, Scheduler):
        raise TypeError(
            f"{name} must be a float or a river.optim.schedulers scheduler, got {value!r} ({type(value).__name__})"
        )


def check_instance(name: str, value: Any, cls: type, where: str) -> None:
    """Raise unless ``value`` is None or an instance of ``cls`` (found in ``where``)."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{name} must be None or an instance of {cls.__name__} from {where}, got {value!r}")


def check_label(y: Any) -> float:
    """Return 1.0 or 0.0 for a binary label, or raise ValueError naming it."""
    if y is True:
        return 1.0
    if y is False:
        return 0.0
    if isinstance(y, (numbers.Real, np.bool_)):
        if y == 1:
            return 1.0
        if y == 0:
            return 0.0
    raise ValueError(
        f"the label y={y!r} ({type(y).__name__}) is not binary; y must be False, True, 0 or 1; "
        "map the target to one of these before learning"
    )


def check_sample_weight(w: Any) -> float:
    """Return w as a float, or raise ValueError unless it is finite and >= 0."""
    if type(w) is float and 0.0 <= w < math.inf:
        return w
    if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (0.0 <= float(w) < math.inf):
        raise ValueError(
            f"the sample weight w={w!r} ({type(w).__name__}) must be a finite real number >= 0; "
            "pass w=1.0 for an unweighted example"
        )
    return float(w)


def check_labels(ys: Any, n: int) -> np.ndarray:
    """Check one label per row; return them as a float64 array of 0.0 and 1.0."""
    array = np.asarray(ys)
    if array.dtype.kind in "biuf" and array.ndim == 1:
        labels = array.astype(np.float64)
        bad = (labels != 0.0) & (labels != 1.0)
        if bad.any():
            check_label(array[int(np.argmax(bad))].item())
    else:  # objects or strings: check each original value, to name it as given
        labels = np.fromiter(map(check_label, ys), dtype=np.float64)
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} rows; pass one label per row")
    return labels


def check_sample_weights(ws: Any, n: int) -> np.ndarray:
    """Check one sample weight per row (None: all 1.0, a number: that for all)."""
    if ws is None:
        return np.ones(n)
    if isinstance(ws, numbers.Real):
        return np.full(n, check_sample_weight(ws))
    array = np.asarray(ws)
    if array.dtype.kind in "iuf" and array.ndim == 1:
        weights = array.astype(np.float64)
        bad = ~((weights >= 0.0) & (weights < math.inf))
        if bad.any():
            check_sample_weight(array[int(np.argmax(bad))].item())
    else:
        weights = np.fromiter(map(check_sample_weight, ws), dtype=np.float64)
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} sample weights for {n} rows; pass one per row")
    return weights


def check_frame(X: Any, check_finite: bool = True) -> tuple[np.ndarray, list[Any], Any]:
    """Return a data frame's values as a float64 array, its column names and the frame
    wrapped by narwhals (any frame river 0.26 takes: pandas, with NumPy, nullable or pyarrow
    dtypes, polars, a pyarrow table). A missing value (None, NA, null) becomes NaN.

    ``check_finite=False`` leaves NaN and infinities to the caller (the kernel finds them
    in the same pass that learns, and :func:`nonfinite_error` names them).
    """
    import narwhals.stable.v2 as nw
    from river.utils import dataframe

    try:
        frame = dataframe.into_frame(X)
    except TypeError:
        raise TypeError(f"X must be a data frame (pandas, polars or a pyarrow table), got {type(X).__name__}") from None
    columns = list(frame.columns)
    if len(set(columns)) != len(columns):
        raise ValueError(f"X has duplicate column names {columns}; give each feature one column")
    native = frame.to_native()
    for column, dtype in frame.schema.items():
        if dtype.is_numeric() or dtype == nw.Boolean:
            continue
        shown = native.dtypes[column] if frame.implementation.is_pandas_like() else dtype
        if "complex" in str(shown):
            raise TypeError(
                f"feature {column!r} has dtype {shown}, which is not real; "
                "keep the real part (or the magnitude) as a float column first"
            )
        raise TypeError(
            f"feature {column!r} has dtype {shown}, which is not numeric; "
            "convert it to float (or one-hot encode it) first"
        )
    values = dataframe.to_numpy(frame)
    if check_finite and not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        error = nonfinite_error(columns, values[row], row_names(frame)[row])
        assert error is not None
        raise error
    return values, columns, frame


def row_names(frame: Any) -> Any:
    """How errors name a frame's rows: its index (pandas), else their positions."""
    import narwhals.stable.v2 as nw

    index = nw.maybe_get_index(frame)
    return range(len(frame)) if index is None else index


def series_values(values: Any) -> Any:
    """A series of any backend (pandas, polars, pyarrow) as a NumPy array; anything else as is."""
    if isinstance(values, (list, tuple, np.ndarray, numbers.Real)) or values is None:
        return values
    import narwhals.stable.v2 as nw

    try:
        return nw.from_native(values, series_only=True).to_numpy()
    except TypeError:
        return values


def nonfinite_error(columns: Sequence[Any], row: np.ndarray, row_name: Any) -> ValueError | None:
    """The error for the first feature of ``row`` that is NaN or infinite (None if none is)."""
    for column, value in zip(columns, row.tolist(), strict=True):
        if not math.isfinite(value):
            return ValueError(
                f"feature {column!r} has the value {value!r} in row {row_name!r}, "
                "which is not finite; drop or impute NaN and infinite values first"
            )
    return None


def check_sparse(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return a scipy.sparse matrix as CSR arrays (indptr, indices, float64 data), no copy.
    NaN and infinite values are found by the kernel, in the pass that learns."""
    csr = X.tocsr()
    if np.iscomplexobj(csr.data):
        raise TypeError(
            f"X has dtype {csr.data.dtype}, which is not real; keep the real part (or the magnitude) as floats first"
        )
    data = np.ascontiguousarray(csr.data, dtype=np.float64)
    return csr.indptr, csr.indices, data
