"""The hot loop: exact per-example steps over contiguous float64 arrays, compiled by numba.

One row function, written once, learns one example: the margin z from the weights before
the step (:func:`_margin`), then :func:`_learn_row`: the loss gradient g = dLoss/dz times the
sample weight, clipped; the intercept's step b -= intercept_lr(t) g; and, for each column
c present in the row, the optimizer's update of coef[c] with the gradient g x_c + l2
coef[c]. Two drivers feed it rows: :func:`learn_dense` (a 2-D array, row- or column-major)
and :func:`learn_csr` (CSR arrays); :func:`one_step_address` gives C code (learn_one on a
dict) a compiled entry point to the same row.

What the step does is chosen at compile time by the types of a :class:`Rule`: its
optimizer (:class:`SGD`, :class:`AdaGrad`, :class:`RMSProp`, :class:`Adam`, :class:`FTRL`)
and its loss (:class:`Log`) are small NamedTuples of their hyper-parameters;
:func:`optimizer_rate`, :func:`optimizer_update` and :func:`loss_gradient` dispatch on
their types (``numba.extending.overload``), so a new optimizer is a NamedTuple, its
overloads and a C entry, and every form of input gets it. Each computes what river's
optimizer of the same name computes, in the same order, so the weights are river's bit for
bit (see :func:`_root`). Per-coordinate optimizer state lives in ``slots`` (a 2-D array,
one row per kind of state, :data:`SLOT_NAMES`, then river's cumulative L1 penalty when l1 >
0; one column per model column) and grows and rolls back with ``coef``.

The drivers stop before a row whose margin is not finite (absurdly large features) and
return its index, so that the caller can undo the batch; otherwise they return -1. They
keep p = g(z) of each row in ``probas`` (the prediction before learning, for progressive
validation) unless ``probas`` is empty. ``state`` is a float64 array [intercept, t, L1 total],
read and updated in place.

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
_EXP_LIMIT = _math.EXP_LIMIT


# -- the parts of a step, as typed records ---------------------------------------------------


class Rate(NamedTuple):
    """A learning rate ``base / (t + 1) ** power`` at step t (power 0: a constant), as river's
    ``Constant`` and ``InverseScaling`` schedulers compute it."""

    base: float
    power: float


class SGD(NamedTuple):
    """river's ``optim.SGD``: coef[c] -= lr(t) * gradient."""

    lr: Rate


class AdaGrad(NamedTuple):
    """river's ``optim.AdaGrad``: g2 += gradient ** 2; coef -= lr(t) / (g2 + eps) ** 0.5 * gradient."""

    lr: Rate
    eps: float


class RMSProp(NamedTuple):
    """river's ``optim.RMSProp``: g2 = rho g2 + (1 - rho) gradient * gradient, then AdaGrad's
    step. (river's linear models step RMSProp and Adam on a ``VectorDict``, which squares by
    multiplying; AdaGrad and FTRL on dicts, where ``** 2`` calls ``pow``.)"""

    lr: Rate
    rho: float
    eps: float


class Adam(NamedTuple):
    """river's ``optim.Adam``: moments m and v, the rate corrected for their bias at step t."""

    lr: Rate
    beta_1: float
    beta_2: float
    eps: float


class FTRL(NamedTuple):
    """river's ``optim.FTRLProximal``: the weight from z and n, then z and n updated."""

    alpha: float
    beta: float
    l1: float
    l2: float


# How many rows of ``slots`` each optimizer keeps (its per-coordinate state, in this order).
SLOT_NAMES: dict[type, tuple[str, ...]] = {SGD: (), AdaGrad: ("g2",), RMSProp: ("g2",), Adam: ("m", "v"),
                                           FTRL: ("z", "n")}  # fmt: skip


class Log(NamedTuple):
    """The log loss, its gradient times ``weight_pos`` for label 1 and ``weight_neg`` for
    label 0 (river's ``optim.losses.Log``)."""

    weight_pos: float = 1.0
    weight_neg: float = 1.0


class Powers(NamedTuple):
    """The exponents river's optimizers raise to, as run-time values (see :func:`_root`)."""

    half: float = 0.5
    square: float = 2.0
    inverse: float = -1.0


class L1(NamedTuple):
    """river's cumulative L1 penalty of this strength (see :func:`_apply_l1`); the last row
    of ``slots`` holds what each column has paid of it."""

    strength: float


class Rule(NamedTuple):
    """Everything one step needs besides the data and the model's arrays. ``l1`` is None
    without an L1 penalty: its code is then not compiled in at all (even a branch never
    taken slows the row's loop by a third)."""

    optimizer: SGD | AdaGrad | RMSProp | Adam | FTRL
    loss: Log
    intercept_lr: Rate
    l2: float
    l1: L1 | None
    clip: float
    powers: Powers = Powers()


def optimizer_rate(optimizer: Any, t: int, powers: Powers) -> float:
    """The optimizer's step size at step t, computed once per row (compiled code only)."""
    raise NotImplementedError


def optimizer_base_rate(optimizer: Any, t: int) -> float:
    """river's ``optimizer.learning_rate`` at t: its scheduler's rate (compiled code only)."""
    raise NotImplementedError


def optimizer_update(
    optimizer: Any, rate: float, powers: Powers, coef: Any, slots: Any, c: int, gradient: float
) -> None:
    """Move coef[c] (and the optimizer's slots[:, c]) by one step (compiled code only)."""
    raise NotImplementedError


def penalize(l1: Any, optimizer: Any, coef: Any, slots: Any, cols: Any, start: int, stop: int, t: int,
             total: float) -> float:  # fmt: skip
    """The L1 penalty after the step on cols[start:stop]; returns the new total (compiled only)."""
    raise NotImplementedError


def loss_gradient(loss: Any, z: float, y: float) -> float:
    """dLoss/dz at margin z for label y (compiled code only)."""
    raise NotImplementedError


def _is(numba_type: Any, *classes: type) -> bool:
    return isinstance(numba_type, types.BaseNamedTuple) and numba_type.instance_class in classes  # type: ignore[attr-defined]


# -- powers, rounded as CPython rounds them ----------------------------------------------------
#
# CPython computes x ** 0.5, x ** 2 and x ** -1 with the C library's pow, which rounds to the
# nearest double except in about one case in 1,200, where the exact result lies within a few
# hundredths of an ulp of the midpoint between two doubles and pow's error (at most 0.52 ulp
# in glibc) takes it to the other one. sqrt, x * x and 1 / x always round to the nearest. So
# each helper computes the nearest double r, measures with a fused multiply-add how far the
# exact result is from r, and returns r where it is within 0.479 ulp of it (pow must return r
# there too: the other neighbour is more than 0.52 ulp away), else calls pow (about one case
# in 24, and outside the ranges where the measure is exact). The same results as pow, bit
# for bit (tests/test_kernel.py checks millions), at the cost of sqrt or a division mostly.
# The exponent is passed in (``powers``) because LLVM would otherwise rewrite pow(x, 0.5)
# itself, into sqrt.


def _fma_typer(typingctx, a, b, c):
    """``_fma(a, b, c)``: a * b + c rounded once (the CPU's fused multiply-add)."""

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(double, [double] * 3), "llvm.fma.f64")
        return builder.call(fn, args)

    return types.double(types.double, types.double, types.double), codegen


_fma: Any = intrinsic(_fma_typer)


def _binade_typer(typingctx, x):
    """``_binade(x)``: the power of two at or below |x| (for a normal x), read off its bits."""

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], ir.IntType(64))
        exponent = builder.and_(bits, ir.Constant(ir.IntType(64), 0x7FF0000000000000))
        return builder.bitcast(exponent, ir.DoubleType())

    return types.double(types.double), codegen


_binade: Any = intrinsic(_binade_typer)
_ULP = 2.0**-52  # an ulp of r is _binade(r) * _ULP
_SURE = 0.479  # within this many ulps of r, pow (error <= 0.52 ulp) returns r


@njit(cache=True, inline="always")
def _root(x, powers):
    """x ** 0.5 as CPython computes it."""
    if 1e-280 < x < 1e280:
        r = math.sqrt(x)
        if abs(_fma(r, r, -x)) < 2.0 * _SURE * r * (_binade(r) * _ULP):  # |sqrt(x) - r| = |r r - x| / 2r
            return r
    return x**powers.half


@njit(cache=True, inline="always")
def _square(x, powers):
    """x ** 2 as CPython computes it."""
    if 1e-140 < abs(x) < 1e140:
        r = x * x
        if abs(_fma(x, x, -r)) < _SURE * (_binade(r) * _ULP):  # the exact error of r
            return r
    return x**powers.square


@njit(cache=True, inline="always")
def _inverse(x, powers):
    """x ** -1 as CPython computes it."""
    if 1e-300 < abs(x) < 1e300:
        r = 1.0 / x
        if abs(_fma(r, x, -1.0)) < _SURE * abs(x) * (_binade(r) * _ULP):  # |1/x - r| = |r x - 1| / |x|
            return r
    return x**powers.inverse


@njit(cache=True, inline="always")
def _at_step(rate, t):
    if rate.power == 0.0:
        return rate.base
    return rate.base / math.pow(t + 1.0, rate.power)


@overload(optimizer_base_rate, inline="always")
def _optimizer_base_rate(optimizer, t):
    if _is(optimizer, SGD, AdaGrad, RMSProp, Adam):
        return lambda optimizer, t: _at_step(optimizer.lr, t)
    if _is(optimizer, FTRL):  # no rate: the model refuses l1 with FTRL, which has its own
        return lambda optimizer, t: 0.0
    return None


@overload(optimizer_rate, inline="always")
def _optimizer_rate(optimizer, t, powers):
    if _is(optimizer, SGD, AdaGrad, RMSProp):
        return lambda optimizer, t, powers: _at_step(optimizer.lr, t)
    if _is(optimizer, Adam):

        def adam(optimizer, t, powers):
            rate = _at_step(optimizer.lr, t) * _root(1.0 - optimizer.beta_2 ** (t + 1.0), powers)
            return rate / (1.0 - optimizer.beta_1 ** (t + 1.0))

        return adam
    if _is(optimizer, FTRL):
        return lambda optimizer, t, powers: 0.0
    return None


@overload(optimizer_update, inline="always")
def _optimizer_update(optimizer, rate, powers, coef, slots, c, gradient):
    if _is(optimizer, SGD):

        def sgd(optimizer, rate, powers, coef, slots, c, gradient):
            coef[c] = coef[c] - rate * gradient

        return sgd
    if _is(optimizer, AdaGrad):

        def adagrad(optimizer, rate, powers, coef, slots, c, gradient):
            g2 = slots[0, c] + _square(gradient, powers)
            slots[0, c] = g2
            coef[c] = coef[c] - rate / _root(g2 + optimizer.eps, powers) * gradient

        return adagrad
    if _is(optimizer, RMSProp):

        def rmsprop(optimizer, rate, powers, coef, slots, c, gradient):
            g2 = optimizer.rho * slots[0, c] + (1.0 - optimizer.rho) * (gradient * gradient)
            slots[0, c] = g2
            coef[c] = coef[c] - rate / _root(g2 + optimizer.eps, powers) * gradient

        return rmsprop
    if _is(optimizer, Adam):

        def adam(optimizer, rate, powers, coef, slots, c, gradient):
            m = optimizer.beta_1 * slots[0, c] + (1.0 - optimizer.beta_1) * gradient
            v = optimizer.beta_2 * slots[1, c] + (1.0 - optimizer.beta_2) * (gradient * gradient)
            slots[0, c], slots[1, c] = m, v
            coef[c] = coef[c] - rate * m / (_root(v, powers) + optimizer.eps)

        return adam
    if _is(optimizer, FTRL):

        def ftrl(optimizer, rate, powers, coef, slots, c, gradient):
            z, n = slots[0, c], slots[1, c]
            if abs(z) > optimizer.l1:
                shrink = _inverse((optimizer.beta + _root(n, powers)) / optimizer.alpha + optimizer.l2, powers)
                coef[c] = -shrink * (z - math.copysign(optimizer.l1, z))
            g2 = _square(gradient, powers)
            s = (_root(n + g2, powers) - _root(n, powers)) / optimizer.alpha
            slots[0, c] = z + (gradient - s * coef[c])
            slots[1, c] = n + g2

        return ftrl
    return None


@overload(loss_gradient, inline="always")
def _loss_gradient(loss, z, y):
    if _is(loss, Log):

        def log(loss, z, y):
            # -s weight / (exp(s z) + 1), s = +-1, rounded once as river rounds it (see _math)
            s = 1.0 if y else -1.0
            signed_weight = -s * (loss.weight_pos if y else loss.weight_neg)
            sz = s * z
            if sz <= _EXP_LIMIT:
                return signed_weight / (math.exp(sz) + 1.0)
            return signed_weight * math.exp(-sz)

        return log
    return None


@overload(penalize, inline="always")
def _penalize(l1, optimizer, coef, slots, cols, start, stop, t, total):
    if isinstance(l1, types.NoneType):
        return lambda l1, optimizer, coef, slots, cols, start, stop, t, total: total
    if _is(l1, L1):

        def cumulative(l1, optimizer, coef, slots, cols, start, stop, t, total):
            if l1.strength == 0.0:  # the one-example entries take L1 always, maybe 0
                return total
            total = total + l1.strength * optimizer_base_rate(optimizer, t + 1)
            for k in range(start, stop):
                _apply_l1(coef, slots, slots.shape[0] - 1, cols[k], total)
            return total

        return cumulative
    return None


@njit(cache=True, inline="always")
def _apply_l1(coef, slots, row, c, total):
    """river's cumulative L1 penalty on coef[c] (slots[row, c]: what it has paid so far):
    shrink it towards 0 by what it owes of the total, never past 0."""
    before, paid = coef[c], slots[row, c]
    if before > 0.0:
        after = before - (total + paid)
        coef[c] = after if after > 0.0 else 0.0
    elif before < 0.0:
        after = before + (total - paid)
        coef[c] = after if after < 0.0 else 0.0
    slots[row, c] = paid + (coef[c] - before)


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
def _learn_row(rule, coef, slots, cols, values, i, start, stop, z, y, w, t, l1_total):
    """One step on the row whose margin is z, in river's order: the loss gradient, the
    optimizer's step on each column, then (l1 > 0) the cumulative L1 penalty, whose total
    grows by l1 times the optimizer's rate at t + 1 first. Returns the intercept's change
    and the new L1 total."""
    g = loss_gradient(rule.loss, z, y) * w
    if g > rule.clip:
        g = rule.clip
    elif g < -rule.clip:
        g = -rule.clip
    optimizer, powers, l2 = rule.optimizer, rule.powers, rule.l2
    rate = optimizer_rate(optimizer, t, powers)
    for k in range(start, stop):
        c = cols[k]
        gradient = g * value_at(values, i, k)
        if l2 != 0.0:
            gradient += l2 * coef[c]
        optimizer_update(optimizer, rate, powers, coef, slots, c, gradient)
    l1_total = penalize(rule.l1, optimizer, coef, slots, cols, start, stop, t, l1_total)
    return _at_step(rule.intercept_lr, t) * g, l1_total


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
    intercept, t, l1_total = state[0], np.int64(state[1]), state[2]
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
        change, l1_total = _learn_row(rule, coef, slots, cols, X, i, 0, d, z, y[i], w[i], t, l1_total)
        intercept -= change
        t += 1
    state[0], state[1], state[2] = intercept, t, l1_total
    return -1


@njit(cache=True, nogil=True)
def learn_csr(indptr, indices, data, predict_data, y, w, coef, slots, state, rule, probas):
    """Learn the rows of a CSR matrix; row i has values data[k] for coef[indices[k]], for k
    in indptr[i]:indptr[i + 1], in that order. With ``predict_data`` (not empty), each
    row's probability is predicted from those values instead (a scaler's before its step)."""
    intercept, t, l1_total = state[0], np.int64(state[1]), state[2]
    keep = probas.shape[0] > 0
    other = predict_data.shape[0] > 0
    n = indptr.shape[0] - 1
    for i in range(n):
        if i + _CSR_AHEAD < n:
            for k in range(indptr[i + _CSR_AHEAD], indptr[i + _CSR_AHEAD + 1]):
                _prefetch(coef, indices[k])
        start, stop = indptr[i], indptr[i + 1]
        z = _margin(coef, indices, data, i, start, stop, intercept)
        if not math.isfinite(z):
            return i
        if other:
            z_predicted = _margin(coef, indices, predict_data, i, start, stop, intercept)
            if not math.isfinite(z_predicted):
                return i
            if keep:
                probas[i] = _sigmoid(z_predicted)
        elif keep:
            probas[i] = _sigmoid(z)
        change, l1_total = _learn_row(rule, coef, slots, indices, data, i, start, stop, z, y[i], w[i], t, l1_total)
        intercept -= change
        t += 1
    state[0], state[1], state[2] = intercept, t, l1_total
    return -1


# -- one example, for C code -------------------------------------------------------------------

# double step(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
# learns one row of n entries; returns its margin z (not finite: nothing changed). ``params``
# is the rule flattened by :func:`flat_params`; ``state`` is [intercept, t, L1 total].
_ONE_STEP_SIGNATURE = types.double(
    types.CPointer(types.int64), types.CPointer(types.double), types.int64, types.double, types.double,
    types.CPointer(types.double), types.CPointer(types.double), types.int64, types.int64,
    types.CPointer(types.double), types.CPointer(types.double),
)  # fmt: skip


# One entry per optimizer: its fields first in ``params``, then the rest of the rule (_rest).
def _sgd_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 12)
    rule = _rest(SGD(Rate(p[0], p[1])), p, 2)
    return _one(rule, cols, values, n, y, w, coef, slots, capacity, n_slots, state)


def _adagrad_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 13)
    rule = _rest(AdaGrad(Rate(p[0], p[1]), p[2]), p, 3)
    return _one(rule, cols, values, n, y, w, coef, slots, capacity, n_slots, state)


def _rmsprop_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 14)
    rule = _rest(RMSProp(Rate(p[0], p[1]), p[2], p[3]), p, 4)
    return _one(rule, cols, values, n, y, w, coef, slots, capacity, n_slots, state)


def _adam_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 15)
    rule = _rest(Adam(Rate(p[0], p[1]), p[2], p[3], p[4]), p, 5)
    return _one(rule, cols, values, n, y, w, coef, slots, capacity, n_slots, state)


def _ftrl_one(cols, values, n, y, w, coef, slots, capacity, n_slots, params, state):
    p = carray(params, 14)
    rule = _rest(FTRL(p[0], p[1], p[2], p[3]), p, 4)
    return _one(rule, cols, values, n, y, w, coef, slots, capacity, n_slots, state)


@njit(cache=True, inline="always")
def _rest(optimizer, p, i):
    """The rule whose optimizer is given and whose other fields follow in p from i on."""
    return Rule(optimizer, Log(p[i], p[i + 1]), Rate(p[i + 2], p[i + 3]), p[i + 4], L1(p[i + 5]), p[i + 6],
                Powers(p[i + 7], p[i + 8], p[i + 9]))  # fmt: skip


@njit(cache=True, inline="always")
def _one(rule, cols_ptr, values_ptr, n, y, w, coef_ptr, slots_ptr, capacity, n_slots, state_ptr):
    cols, values = carray(cols_ptr, n), carray(values_ptr, n)
    coef, slots, state = carray(coef_ptr, capacity), carray(slots_ptr, (n_slots, capacity)), carray(state_ptr, 3)
    intercept, t = state[0], np.int64(state[1])
    z = _margin(coef, cols, values, 0, 0, n, intercept)
    if math.isfinite(z):
        change, state[2] = _learn_row(rule, coef, slots, cols, values, 0, 0, n, z, y, w, t, state[2])
        state[0] = intercept - change
    return z


def flat_params(rule: Rule) -> tuple[float, ...]:
    """The rule as the flat floats the C entry point of its optimizer reads."""
    optimizer = tuple(v for field in rule.optimizer for v in (field if isinstance(field, tuple) else (field,)))
    l1 = 0.0 if rule.l1 is None else rule.l1.strength
    return (*optimizer, *rule.loss, *rule.intercept_lr, rule.l2, l1, rule.clip, *rule.powers)


_ONE_STEP_ENTRIES = {SGD: _sgd_one, AdaGrad: _adagrad_one, RMSProp: _rmsprop_one, Adam: _adam_one, FTRL: _ftrl_one}
_ONE_STEP_ADDRESSES: dict[type, int] = {}


def one_step_address(rule: Rule) -> int:
    """The address of the compiled one-example step for the rule's optimizer (compiled, or
    loaded from the disk cache, on first use)."""
    kind = type(rule.optimizer)
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
