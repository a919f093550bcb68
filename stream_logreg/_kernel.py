"""The hot loop: exact per-example steps over contiguous float64 arrays, compiled by numba.

One row function, written once, learns one example: the margin z from the weights before
the step (:func:`_margin`), then :func:`_learn_row`: the loss gradient g = dLoss/dz times the
sample weight, clipped; the intercept's step b -= intercept_lr(t) g; and, for each column
c present in the row, the optimizer's update of coef[c] with the gradient g x_c + l2
coef[c]. Two drivers feed it rows: :func:`learn_dense` (a 2-D array, row- or column-major)
and :func:`learn_csr` (CSR arrays); :func:`one_step_address` gives C code (learn_one on a
dict) a compiled entry point to the same row.

What the step does is chosen at compile time by the types of a :class:`Rule`: its
optimizer (:class:`SGD`) and its loss (:class:`Log`) are small NamedTuples of their
hyper-parameters; :func:`optimizer_rate`, :func:`optimizer_update` and
:func:`loss_gradient` dispatch on their types (``numba.extending.overload``), so a new
optimizer is a NamedTuple and two overloads, and every form of input gets it. Per-
coordinate optimizer state lives in ``slots`` (a 2-D array, one row per kind of state,
one column per model column; SGD has none) and grows and rolls back with ``coef``.

The drivers stop before a row whose margin is not finite (absurdly large features) and
return its index, so that the caller can undo the batch; otherwise they return -1. They
keep p = g(z) of each row in ``probas`` (the prediction before learning, for progressive
validation) unless ``probas`` is empty. ``state`` is a float64 array [intercept, t], read
and updated in place.

Nothing is compiled at import: numba compiles on the first call and caches the machine
code on disk (``cache=True``), in ``$NUMBA_CACHE_DIR`` when that is set, else in the
per-user cache folder (``~/.cache/stream_logreg/numba``), never inside the installed
package (a cache left in site-packages would outlive the package and shadow a reinstall).
The overloads live in this module with the functions that use them, because numba's cache
of a function is invalidated by changes to its own file only. The drivers release the GIL
while they run (``nogil``), so that other threads (kafka-python's network thread, in the
service) go on. A slow, plainly written twin of the step lives in tests/reference.py.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from stream_logreg import _math
from stream_logreg._paths import use_user_cache_for_numba

use_user_cache_for_numba()

_sigmoid = njit(cache=True)(_math.sigmoid)
_log_loss_gradient = njit(cache=True, inline="always")(_math.log_loss_gradient)


# -- the parts of a step, as typed records ---------------------------------------------------


class Rate(NamedTuple):
    """A learning rate ``base / (t + 1) ** power`` at step t (power 0: a constant), as river's
    ``Constant`` and ``InverseScaling`` schedulers compute it."""

    base: float
    power: float


class SGD(NamedTuple):
    """Plain SGD: coef[c] -= lr(t) * gradient."""

    lr: Rate


class Log(NamedTuple):
    """The log loss, its gradient times ``weight_pos`` for label 1 and ``weight_neg`` for
    label 0 (river's ``optim.losses.Log``)."""

    weight_pos: float = 1.0
    weight_neg: float = 1.0


class Rule(NamedTuple):
    """Everything one step needs besides the data and the model's arrays."""

    optimizer: SGD
    loss: Log
    intercept_lr: Rate
    l2: float
    clip: float


def optimizer_rate(optimizer: Any, t: int) -> float:
    """The optimizer's step size at step t, computed once per row (compiled code only)."""
    raise NotImplementedError


def optimizer_update(optimizer: Any, rate: float, coef: Any, slots: Any, c: int, gradient: float) -> None:
    """Move coef[c] (and the optimizer's slots[:, c]) by one step (compiled code only)."""
    raise NotImplementedError


def loss_gradient(loss: Any, z: float, y: float) -> float:
    """dLoss/dz at margin z for label y (compiled code only)."""
    raise NotImplementedError


def _is(numba_type: Any, cls: type) -> bool:
    return isinstance(numba_type, types.BaseNamedTuple) and numba_type.instance_class is cls  # type: ignore[attr-defined]


@njit(cache=True, inline="always")
def _at_step(rate, t):
    if rate.power == 0.0:
        return rate.base
    return rate.base / math.pow(t + 1.0, rate.power)


@overload(optimizer_rate, inline="always")
def _optimizer_rate(optimizer, t):
    if _is(optimizer, SGD):
        return lambda optimizer, t: _at_step(optimizer.lr, t)
    return None


@overload(optimizer_update, inline="always")
def _optimizer_update(optimizer, rate, coef, slots, c, gradient):
    if _is(optimizer, SGD):

        def sgd(optimizer, rate, coef, slots, c, gradient):
            coef[c] = coef[c] - rate * gradient

        return sgd
    return None


@overload(loss_gradient, inline="always")
def _loss_gradient(loss, z, y):
    if _is(loss, Log):

        def log(loss, z, y):
            return _log_loss_gradient(z, y) * (loss.weight_pos if y else loss.weight_neg)

        return log
    return None


# -- the row, written once ---------------------------------------------------------------------


def value_at(values: Any, i: int, k: int) -> float:
    """Entry k of row i: values[i, k] of a 2-D array, values[k] of CSR data (compiled only)."""
    raise NotImplementedError


@overload(value_at, inline="always")
def _value_at(values, i, k):
    if values.ndim == 2:
        return lambda values, i, k: values[i, k]
    return lambda values, i, k: values[k]


@njit(cache=True, inline="always")
def _margin(coef, cols, values, i, start, stop, intercept):
    """z = sum of coef[cols[k]] * value_at(values, i, k) for k in start..stop, plus b."""
    z = 0.0
    for k in range(start, stop):
        z += coef[cols[k]] * value_at(values, i, k)
    return z + intercept


@njit(cache=True, inline="always")
def _learn_row(rule, coef, slots, cols, values, i, start, stop, z, y, w, t):
    """One step on the row whose margin is z; returns the intercept's change."""
    g = loss_gradient(rule.loss, z, y) * w
    if g > rule.clip:
        g = rule.clip
    elif g < -rule.clip:
        g = -rule.clip
    rate, l2 = optimizer_rate(rule.optimizer, t), rule.l2
    for k in range(start, stop):
        c = cols[k]
        gradient = g * value_at(values, i, k)
        if l2 != 0.0:
            gradient += l2 * coef[c]
        optimizer_update(rule.optimizer, rate, coef, slots, c, gradient)
    return _at_step(rule.intercept_lr, t) * g


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


@njit(cache=True, nogil=True)
def learn_dense(X, cols, y, w, coef, slots, state, rule, probas):
    """Learn the rows of X (n x d, row- or column-major); column j of X is coef[cols[j]]."""
    intercept, t = state[0], np.int64(state[1])
    keep = probas.shape[0] > 0
    n, d = X.shape
    for i in range(n):
        if i % 8 == 0 and i + _DENSE_AHEAD < n:
            for j in range(d):
                _prefetch(X, (i + _DENSE_AHEAD, j))
        z = _margin(coef, cols, X, i, 0, d, intercept)
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        intercept -= _learn_row(rule, coef, slots, cols, X, i, 0, d, z, y[i], w[i], t)
        t += 1
    state[0], state[1] = intercept, t
    return -1


@njit(cache=True, nogil=True)
def learn_csr(indptr, indices, data, y, w, coef, slots, state, rule, probas):
    """Learn the rows of a CSR matrix; row i has values data[k] for coef[indices[k]], for k
    in indptr[i]:indptr[i + 1], in that order."""
    intercept, t = state[0], np.int64(state[1])
    keep = probas.shape[0] > 0
    n = indptr.shape[0] - 1
    for i in range(n):
        if i + _CSR_AHEAD < n:
            for k in range(indptr[i + _CSR_AHEAD], indptr[i + _CSR_AHEAD + 1]):
                _prefetch(coef, indices[k])
        start, stop = indptr[i], indptr[i + 1]
        z = _margin(coef, indices, data, i, start, stop, intercept)
        if not math.isfinite(z):
            return i
        if keep:
            probas[i] = _sigmoid(z)
        intercept -= _learn_row(rule, coef, slots, indices, data, i, start, stop, z, y[i], w[i], t)
        t += 1
    state[0], state[1] = intercept, t
    return -1


# -- one example, for C code -------------------------------------------------------------------

# double step(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
# learns one row of n entries; returns its margin z (not finite: nothing changed). ``params``
# is the rule flattened by :func:`flat_params`; ``state`` is [intercept, t].
_ONE_STEP_SIGNATURE = types.double(
    types.CPointer(types.int64), types.CPointer(types.double), types.int64, types.double, types.double,
    types.CPointer(types.double), types.CPointer(types.double), types.int64, types.int64,
    types.CPointer(types.double), types.CPointer(types.double),
)  # fmt: skip


def _sgd_log_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 8)
    rule = Rule(SGD(Rate(p[0], p[1])), Log(p[2], p[3]), Rate(p[4], p[5]), p[6], p[7])
    return _one(rule, carray(cols, n), carray(values, n), y, w, carray(coef, capacity),
                carray(slots, (n_slots, capacity)), carray(state, 2))  # fmt: skip


@njit(cache=True, inline="always")
def _one(rule, cols, values, y, w, coef, slots, state):
    intercept, t = state[0], np.int64(state[1])
    z = _margin(coef, cols, values, 0, 0, cols.shape[0], intercept)
    if math.isfinite(z):
        state[0] = intercept - _learn_row(rule, coef, slots, cols, values, 0, 0, cols.shape[0], z, y, w, t)
    return z


def flat_params(rule: Rule) -> tuple[float, ...]:
    """The rule as the flat floats the C entry point of its kind reads."""
    return (*rule.optimizer.lr, *rule.loss, *rule.intercept_lr, rule.l2, rule.clip)


_ONE_STEP_ENTRIES = {(SGD, Log): _sgd_log_one}
_ONE_STEP_ADDRESSES: dict[tuple[type, type], int] = {}


def one_step_address(rule: Rule) -> int:
    """The address of the compiled one-example step for the rule's optimizer and loss
    (compiled, or loaded from the disk cache, on first use)."""
    kind = (type(rule.optimizer), type(rule.loss))
    if kind not in _ONE_STEP_ADDRESSES:
        compiled: Any = cfunc(_ONE_STEP_SIGNATURE, cache=True)(_ONE_STEP_ENTRIES[kind])
        _ONE_STEP_ADDRESSES[kind] = compiled.address
    return _ONE_STEP_ADDRESSES[kind]


@njit(cache=True, nogil=True)
def present_columns(indices, n_columns):
    """The sorted columns that have at least one entry."""
    seen = np.zeros(n_columns, dtype=np.bool_)
    for k in range(indices.shape[0]):
        seen[indices[k]] = True
    return np.flatnonzero(seen)
