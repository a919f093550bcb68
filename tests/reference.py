"""A slow, obviously-correct reference of the per-example SGD step, for the tests.

Written from the derivation (docs/derivation.md), not from the code under test:
p = 1 / (1 + e^-z), dLoss/dz = p - y, one step per example, in river's order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import numpy as np

Example = tuple[dict[str, float], bool]


def exp(v: float) -> float:
    """math.exp, with inf where the result does not fit a double."""
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def exact_gradient(z: float, y: float) -> float:
    """g(z) - y, computed as -s / (exp(s z) + 1) (within 1e-300 of exact at any z)."""
    s = 1.0 if y else -1.0
    return -s / (exp(s * z) + 1.0)


def river_gradient(z: float, y: float) -> float:
    """river 0.26.1's Log.gradient: the same, with its tails cut at |s z| > 18."""
    s = 1.0 if y else -1.0
    if s * z > 18.0:
        return math.exp(-s * z) * -s
    if s * z < -18.0:
        return -s
    return -s / (math.exp(s * z) + 1.0)


def reference_fit(
    stream,
    lr=0.01,
    l2=0.0,
    intercept_lr=0.01,
    clip=1e12,
    weights=None,
    gradient=exact_gradient,
    power=None,
):
    """Learn (x, y[, w]) examples one by one; return (weights, intercept, pre-update probas).

    With ``power`` set, both learning rates follow river's InverseScaling: lr / (t + 1)**power.
    """
    theta: dict[str, float] = {}
    b = 0.0
    probas = []
    for t, example in enumerate(stream):
        x, y = example[0], float(example[1])
        w = example[2] if len(example) > 2 else 1.0
        z = 0.0
        for name, value in x.items():
            z += theta.get(name, 0.0) * value
        z += b
        probas.append(1.0 / (1.0 + exp(-z)))
        g = max(-clip, min(clip, gradient(z, y) * w))
        eta, eta_b = lr, intercept_lr
        if power is not None:
            eta, eta_b = lr / (t + 1) ** power, intercept_lr / (t + 1) ** power
        b -= eta_b * g
        for name, value in x.items():
            old = theta.get(name, 0.0)
            theta[name] = old - eta * (g * value + l2 * old)
    return theta, b, probas


def shifting_stream(n: int, seed: int) -> Iterator[Example]:
    """A seeded stream whose dicts gain and lose features over time.

    Feature f{k} exists only while the stream is in its window; each present feature is also
    dropped at random, and some present values are exact zeros.
    """
    rng = random.Random(seed)
    truth = {f"f{k}": rng.gauss(0.0, 1.0) for k in range(40)}
    for i in range(n):
        first = (i * 30) // n
        x = {}
        for k in range(first, first + 10):
            if rng.random() < 0.7:
                x[f"f{k}"] = 0.0 if rng.random() < 0.05 else rng.gauss(0.0, 1.0)
        z = sum(truth[name] * value for name, value in x.items())
        yield x, rng.random() < 1.0 / (1.0 + math.exp(-z))


def max_abs_diff(a: dict, b: dict) -> float:
    """Max |a_k - b_k| over the union of keys, a missing key counting as a failure."""
    assert set(a) == set(b), f"different features: {set(a) ^ set(b)}"
    return max((abs(a[k] - b[k]) for k in a), default=0.0)


def reference_csr(indptr, indices, data, y, w, coef, state, lr, lr_power, ilr, ilr_power, l2, clip, probas):
    """The slow, plain-Python twin of the kernel's ``learn_csr`` with SGD and the log loss:
    rates ``base / (t + 1) ** power``, state [intercept, t] and coef updated in place."""
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
    """The plain-Python twin of the kernel's ``learn_dense``, through :func:`reference_csr`."""
    n, d = X.shape
    indptr = np.arange(0, n * d + 1, d)
    indices = np.tile(np.asarray(cols), n)
    return reference_csr(indptr, indices, np.ravel(X), y, w, coef, state, *rates_and_probas)


def assert_same_model(got, want) -> None:
    """The two stream_logreg models hold the same state, bit for bit: the same kind of space
    and names, every weight and optimizer state (zeros included), intercept, step count
    and L1 total."""
    n = len(want._space)
    assert type(got._space) is type(want._space) and list(got._space.names()) == list(want._space.names())
    assert np.array_equal(got._state.coef[:n], want._state.coef[:n])
    assert np.array_equal(got._state.slots[:, :n], want._state.slots[:, :n])
    assert (got.intercept, got.n_steps, got._state.l1_total) == (want.intercept, want.n_steps, want._state.l1_total)
