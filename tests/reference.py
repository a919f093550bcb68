"""A slow, obviously-correct reference of the per-example SGD step, for the tests.

Written from the derivation (docs/derivation.md), not from the code under test:
p = 1 / (1 + e^-z), dLoss/dz = p - y, one step per example, in river's order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

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
