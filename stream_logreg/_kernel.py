"""The hot loop: exact per-example SGD over contiguous float64 arrays, compiled by numba.

Both forms apply, for each row in order, the step of ``LogisticRegression.learn_one``:
z from the weights before the step; p = g(z) kept in ``probas`` (the prediction before
learning, for progressive validation); e = clip(w (g(z) - y)); b -= intercept_lr(t) e;
coef[c] -= lr(t) (e x_c + l2 coef[c]) for each column c present in the row; t += 1.
``probas`` may be empty when those are not wanted. A learning rate is
``base / (t + 1) ** power`` (power 0: a constant), as river's ``Constant`` and
``InverseScaling`` schedulers compute it.

They stop before a row whose margin is not finite (absurdly large features) and return
its index, so that the caller can undo the batch; otherwise they return -1.

Nothing is compiled at import: numba compiles on the first call and caches the machine
code on disk (``cache=True``). The slow ``reference_*`` functions below are the same
algorithm written plainly in Python, for the tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stream_logreg import _math

_sigmoid = njit(cache=True)(_math.sigmoid)
_log_loss_gradient = njit(cache=True)(_math.log_loss_gradient)


@njit(cache=True)
def _rate(base, power, t):
    if power == 0.0:
        return base
    return base / math.pow(t + 1.0, power)


@njit(cache=True, inline="always")
def _clipped_gradient(z, y, w, clip):
    """w (g(z) - y), clipped to [-clip, clip]."""
    g = _log_loss_gradient(z, y) * w
    if g > clip:
        return clip
    if g < -clip:
        return -clip
    return g


@njit(cache=True)
def learn_dense(X, y, w, cols, coef, state, lr, lr_power, intercept_lr, intercept_lr_power, l2, clip, probas):
    """Learn the rows of X (n x d); column j of X is coef[cols[j]].

    ``state`` is a float64 array [intercept, t], read and updated in place.
    """
    intercept, t = state[0], np.int64(state[1])
    keep = probas.shape[0] > 0
    n, d = X.shape
    for i in range(n):
        z = 0.0
        for j in range(d):
            z += coef[cols[j]] * X[i, j]
        z += intercept
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        g = _clipped_gradient(z, y[i], w[i], clip)
        eta = _rate(lr, lr_power, t)
        intercept -= _rate(intercept_lr, intercept_lr_power, t) * g
        if l2 != 0.0:
            for j in range(d):
                c = cols[j]
                coef[c] = coef[c] - eta * (g * X[i, j] + l2 * coef[c])
        else:
            for j in range(d):
                c = cols[j]
                coef[c] = coef[c] - eta * (g * X[i, j])
        t += 1
    state[0], state[1] = intercept, t
    return -1


@njit(cache=True)
def learn_csr(
    indptr, indices, data, lookup, y, w, coef, state,
    lr, lr_power, intercept_lr, intercept_lr_power, l2, clip, probas,
):  # fmt: skip
    """Learn the rows of a CSR matrix; row i has values data[k] in columns indices[k]
    for k in indptr[i]:indptr[i + 1], in that order. Column c of the matrix is coef[c],
    or coef[lookup[c]] when lookup is not empty.

    ``state`` is a float64 array [intercept, t], read and updated in place.
    """
    mapped = lookup.shape[0] > 0
    keep = probas.shape[0] > 0
    intercept, t = state[0], np.int64(state[1])
    for i in range(indptr.shape[0] - 1):
        start, stop = indptr[i], indptr[i + 1]
        z = 0.0
        for k in range(start, stop):
            c = lookup[indices[k]] if mapped else indices[k]
            z += coef[c] * data[k]
        z += intercept
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        g = _clipped_gradient(z, y[i], w[i], clip)
        eta = _rate(lr, lr_power, t)
        intercept -= _rate(intercept_lr, intercept_lr_power, t) * g
        for k in range(start, stop):
            c = lookup[indices[k]] if mapped else indices[k]
            if l2 != 0.0:
                coef[c] = coef[c] - eta * (g * data[k] + l2 * coef[c])
            else:
                coef[c] = coef[c] - eta * (g * data[k])
        t += 1
    state[0], state[1] = intercept, t
    return -1


@njit(cache=True)
def present_columns(indices, n_columns):
    """The sorted columns that have at least one entry."""
    seen = np.zeros(n_columns, dtype=np.bool_)
    for k in range(indices.shape[0]):
        seen[indices[k]] = True
    return np.flatnonzero(seen)


def reference_csr(indptr, indices, data, y, w, coef, state, lr, lr_power, ilr, ilr_power, l2, clip, probas):
    """The slow, plain-Python twin of :func:`learn_csr` (without lookup: column c is coef[c])."""
    b, t = float(state[0]), int(state[1])
    theta = [float(v) for v in coef]
    for i in range(len(indptr) - 1):
        row = [(int(indices[k]), float(data[k])) for k in range(indptr[i], indptr[i + 1])]
        z = 0.0
        for c, v in row:
            z += theta[c] * v
        z += b
        probas[i] = 1.0 / (1.0 + math.exp(-z)) if z > -700 else math.exp(z)
        s = 1.0 if y[i] else -1.0
        exact = -s / (math.exp(s * z) + 1.0) if s * z <= 700 else -s * math.exp(-s * z)
        g = min(clip, max(-clip, exact * float(w[i])))
        eta = lr / math.pow(t + 1, lr_power) if lr_power else lr
        eta_b = ilr / math.pow(t + 1, ilr_power) if ilr_power else ilr
        b -= eta_b * g
        for c, v in row:
            theta[c] = theta[c] - eta * (g * v + l2 * theta[c]) if l2 else theta[c] - eta * (g * v)
        t += 1
    coef[:] = theta
    state[0], state[1] = b, t
    return -1


def reference_dense(X, y, w, cols, coef, state, *rates_and_probas):
    """The plain-Python twin of :func:`learn_dense`, through :func:`reference_csr`."""
    n, d = X.shape
    indptr = np.arange(0, n * d + 1, d)
    indices = np.tile(np.asarray(cols), n)
    return reference_csr(indptr, indices, np.ravel(X), y, w, coef, state, *rates_and_probas)


@njit(cache=True)
def running_mean(values, mean, n):
    """river's stats.Mean update, value by value: n += 1; mean += (1 / n) (x - mean)."""
    for x in values:
        n += 1
        mean += (1.0 / n) * (x - mean)
    return mean, n
