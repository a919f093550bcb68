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
code on disk (``cache=True``), in ``$NUMBA_CACHE_DIR`` when that is set, else in the
per-user cache folder (``~/.cache/stream_logreg/numba``), never inside the installed
package (a cache left in site-packages would outlive the package and shadow a reinstall).
The entry points release the GIL while they run (``nogil``), so that other threads
(kafka-python's network thread, in the service) go on. The slow ``reference_*`` functions
below are the same algorithm written plainly in Python, for the tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic

from stream_logreg import _math
from stream_logreg._paths import user_cache_dir

if not numba_config.CACHE_DIR:  # type: ignore[attr-defined]  # read by each cache=True decorator below
    numba_config.CACHE_DIR = str(user_cache_dir() / "numba")  # type: ignore[attr-defined]

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


# How far ahead the loops ask for data they will need (see _prefetch): rows of a dense X
# (in steps of 8 rows, one cache line of a column-major X), and rows of a CSR matrix.
_DENSE_AHEAD = 32
_CSR_AHEAD = 4


def _prefetch_typer(typingctx, array, index):
    """``_prefetch(array, index)`` hints the CPU to start loading array[index] (index: an int,
    or a tuple for 2-D arrays) into its caches. Only a hint: it changes no result, only when
    the memory arrives.

    Per-example SGD is a chain: each row waits for the previous row's update. Loads that
    miss the cache stall that chain unless they were asked for early, which the hardware
    does for one sequential stream but not for the columns of a column-major DataFrame,
    nor for the scattered weights of a sparse row.
    """

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        tuple_index = isinstance(index_type, types.BaseTuple)
        position = cgutils.unpack_tuple(builder, args[1]) if tuple_index else [args[1]]
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, position, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        # (address, 0: for reading, 3: keep in all cache levels, 1: data not instructions)
        builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


_prefetch: Any = intrinsic(_prefetch_typer)


@njit(cache=True, inline="always")
def _step(z, y, w, clip, t, lr, lr_power, intercept_lr, intercept_lr_power):
    """The scalars of one step: (g, the weights' learning rate, the intercept's change)."""
    g = _clipped_gradient(z, y, w, clip)
    return g, _rate(lr, lr_power, t), _rate(intercept_lr, intercept_lr_power, t) * g


@njit(cache=True, nogil=True)
def learn_dense(X, y, w, cols, coef, state, lr, lr_power, intercept_lr, intercept_lr_power, l2, clip, probas):
    """Learn the rows of X (n x d, row- or column-major); column j of X is coef[cols[j]].

    ``state`` is a float64 array [intercept, t], read and updated in place.
    """
    intercept, t = state[0], np.int64(state[1])
    keep = probas.shape[0] > 0
    n, d = X.shape
    for i in range(n):
        if i % 8 == 0 and i + _DENSE_AHEAD < n:
            for j in range(d):
                _prefetch(X, (i + _DENSE_AHEAD, j))
        z = 0.0
        for j in range(d):
            z += coef[cols[j]] * X[i, j]
        z += intercept
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        g, eta, step = _step(z, y[i], w[i], clip, t, lr, lr_power, intercept_lr, intercept_lr_power)
        intercept -= step
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


@njit(cache=True, nogil=True)
def learn_csr(
    indptr, indices, data, y, w, coef, state, lr, lr_power, intercept_lr, intercept_lr_power, l2, clip, probas
):
    """Learn the rows of a CSR matrix; row i has values data[k] for coef[indices[k]], for k
    in indptr[i]:indptr[i + 1], in that order.

    ``state`` is a float64 array [intercept, t], read and updated in place.
    """
    keep = probas.shape[0] > 0
    intercept, t = state[0], np.int64(state[1])
    n = indptr.shape[0] - 1
    for i in range(n):
        if i + _CSR_AHEAD < n:
            for k in range(indptr[i + _CSR_AHEAD], indptr[i + _CSR_AHEAD + 1]):
                _prefetch(coef, indices[k])
        start, stop = indptr[i], indptr[i + 1]
        z = 0.0
        for k in range(start, stop):
            z += coef[indices[k]] * data[k]
        z += intercept
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        g, eta, step = _step(z, y[i], w[i], clip, t, lr, lr_power, intercept_lr, intercept_lr_power)
        intercept -= step
        if l2 != 0.0:
            for k in range(start, stop):
                c = indices[k]
                coef[c] = coef[c] - eta * (g * data[k] + l2 * coef[c])
        else:
            for k in range(start, stop):
                c = indices[k]
                coef[c] = coef[c] - eta * (g * data[k])
        t += 1
    state[0], state[1] = intercept, t
    return -1


@njit(cache=True, nogil=True)
def present_columns(indices, n_columns):
    """The sorted columns that have at least one entry."""
    seen = np.zeros(n_columns, dtype=np.bool_)
    for k in range(indices.shape[0]):
        seen[indices[k]] = True
    return np.flatnonzero(seen)


def reference_csr(indptr, indices, data, y, w, coef, state, lr, lr_power, ilr, ilr_power, l2, clip, probas):
    """The slow, plain-Python twin of :func:`learn_csr`."""
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


@njit(cache=True, nogil=True)
def score(probas, labels, thresholds, positives_above, negatives_above, counts, mean):
    """Progressive-validation scores of a batch, in one pass, the way river's metrics count.

    Log loss: river's ``stats.Mean`` of -log(clamp(p)) (or -log(1 - clamp(p)) for label 0),
    record by record: n += 1; mean += (1 / n) (loss - mean); the new mean is returned.
    ``counts`` (int64 [n, correct, positives, negatives]) and, per threshold, the positives
    and negatives predicted above it are updated in place. A hit: True is predicted exactly
    when p > 1 - p.
    """
    n, correct, positives, negatives = counts[0], counts[1], counts[2], counts[3]
    for i in range(probas.shape[0]):
        p, positive = probas[i], labels[i] == 1.0
        clamped = min(max(p, 1e-15), 1.0 - 1e-15)
        loss = -math.log(clamped) if positive else -math.log(1.0 - clamped)
        n += 1
        mean += (1.0 / n) * (loss - mean)
        correct += (p > 1.0 - p) == positive
        above = positives_above if positive else negatives_above
        for k in range(thresholds.shape[0]):
            above[k] += p > thresholds[k]
        positives += positive
        negatives += not positive
    counts[0], counts[1], counts[2], counts[3] = n, correct, positives, negatives
    return mean
