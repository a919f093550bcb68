"""Batches through the compiled kernel: columns registered in a model's feature space, steps
taken on its state, and everything put back if a row's margin overflows.

Inputs arrive checked (labels 0.0/1.0, sample weights, finite values where required); each
function returns the probability predicted for each row before it was learned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_logreg import _dictstep
from stream_logreg._checks import nonfinite_error
from stream_logreg._space import FeatureSpace, HashedSpace
from stream_logreg._state import ModelState
from stream_logreg.exceptions import MarginError

if TYPE_CHECKING:
    import pandas as pd

    from stream_logreg._kernel import Rule


def learn_dicts(
    space: FeatureSpace | HashedSpace,
    state: ModelState,
    rule: Rule,
    xs: list[dict],
    labels: np.ndarray,
    weights: np.ndarray,
    predict: list[dict] | None = None,
) -> np.ndarray:
    """Learn a list of feature dicts, packed into CSR arrays in C (each predicted from the
    same keys' values in ``predict``, if given)."""
    from stream_logreg import _kernel

    nnz = _dictstep.count(xs)
    indptr = np.empty(len(xs) + 1, dtype=np.int64)
    indices = np.empty(nnz, dtype=np.int64)
    data = np.empty(nnz)
    predict_data = np.empty(nnz if predict is not None else 0)
    n_before = len(space)
    try:
        _dictstep.pack(space.index, xs, indptr, indices, data)
        if predict is not None:
            same, registered = np.empty_like(indices), len(space)
            if _dictstep.count(predict) != nnz:
                raise ValueError("each dict to predict from must have the keys of the one learned, in its order")
            _dictstep.pack(space.index, predict, np.empty_like(indptr), same, predict_data)
            if not np.array_equal(same, indices) or len(space) != registered:
                raise ValueError("each dict to predict from must have the keys of the one learned, in its order")
    except BaseException:
        space.forget_after(n_before)
        raise
    probas = np.empty(len(xs))
    touched = _kernel.present_columns(indices, len(space))
    bad_row = _run(_kernel.learn_csr, (indptr, indices, data, predict_data), space, state, rule, touched, n_before,
                   labels, weights, probas)  # fmt: skip
    if bad_row >= 0:
        raise MarginError(xs[bad_row])
    return probas


def learn_dense(
    space: FeatureSpace | HashedSpace,
    state: ModelState,
    rule: Rule,
    values: np.ndarray,
    columns: Sequence[Any],
    labels: np.ndarray,
    weights: np.ndarray,
    return_probas: bool,
    row_names: Sequence[Any] | pd.Index | None,
) -> np.ndarray:
    """Learn the rows of a 2-D float64 array whose columns are the features ``columns``; a
    row with a NaN or infinite value is named by ``row_names`` (else its position)."""
    from stream_logreg import _kernel

    n_before = len(space)
    cols = space.columns(columns)
    probas = np.empty(len(values) if return_probas else 0)
    bad_row = _run(_kernel.learn_dense, (values, cols), space, state, rule, cols, n_before, labels, weights, probas)
    if bad_row >= 0:
        row_name = bad_row if row_names is None else row_names[bad_row]
        raise nonfinite_error(columns, values[bad_row], row_name) or MarginError(
            dict(zip(columns, values[bad_row].tolist(), strict=True))
        )
    return probas


def learn_sparse(
    space: FeatureSpace | HashedSpace,
    state: ModelState,
    rule: Rule,
    csr: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_columns: int,
    labels: np.ndarray,
    weights: np.ndarray,
    row: Callable[[int], dict],
) -> np.ndarray:
    """Learn CSR arrays whose column j is the feature named j; only the columns that have
    entries are registered, in column order. A row with a NaN or infinite value is named."""
    from stream_logreg import _kernel

    indptr, indices, data = csr
    n_before = len(space)
    columns, touched = space.csr_columns(indices, n_columns)
    probas = np.empty(len(labels))
    bad_row = _run(_kernel.learn_csr, (indptr, columns, data, np.empty(0)), space, state, rule, touched, n_before,
                   labels, weights, probas)  # fmt: skip
    if bad_row >= 0:
        x = row(bad_row)
        raise nonfinite_error(list(x), np.array(list(x.values())), bad_row) or MarginError(x)
    return probas


def _run(
    driver: Callable[..., int],
    inputs: tuple[np.ndarray, ...],
    space: FeatureSpace | HashedSpace,
    state: ModelState,
    rule: Rule,
    touched: np.ndarray,
    n_before: int,
    labels: np.ndarray,
    weights: np.ndarray,
    probas: np.ndarray,
) -> int:
    """Run a kernel driver over inputs whose columns are registered (the first n_before
    existed before this batch; ``touched`` lists the columns it can change). Return -1, or
    the index of the row whose margin is not finite, with the state and the space put
    back as they were."""
    state.reserve(len(space))
    saved = state.save(touched)
    kernel_state = state.kernel_state()
    bad_row = driver(*inputs, labels, weights, state.coef, state.slots, kernel_state, rule, probas)
    if bad_row >= 0:
        state.restore(touched, saved, n_before)
        space.forget_after(n_before)
    else:
        state.advance(kernel_state, len(labels))
    return bad_row


def learn_one_by_one(
    model: Any, xs: list[dict], labels: np.ndarray, weights: np.ndarray, predict: list[dict] | None = None
) -> np.ndarray:
    """The path for schedulers the kernel cannot express for a whole batch: the model's
    predict_proba_one (on ``predict``'s dict, if given), then learn_one, on each example.
    On a bad example the model is put back as it was before the batch."""
    if predict is not None and any(list(p) != list(x) for p, x in zip(predict, xs, strict=True)):
        raise ValueError("each dict to predict from must have the keys of the one learned, in its order")
    space, state = model._space, model._state
    saved = (space.copy(), state.copy())
    probas = np.empty(len(xs))
    predict = xs if predict is None else predict
    try:
        for i, (x, label, weight) in enumerate(zip(xs, labels.tolist(), weights.tolist(), strict=True)):
            probas[i] = model.predict_proba_one(predict[i])[True]
            model.learn_one(x, label, weight)
    except BaseException:
        model._space, model._state = saved
        raise
    return probas
