"""AdaGrad, Adam and FTRLProximal in the compiled kernel against river and a plain numba bound, in one run.

    python benchmarks/bench_optimizers.py [--rows 1000000] [--river-rows 100000]

For each of river's optim.AdaGrad(0.1), optim.Adam(0.01) and optim.FTRLProximal() (log loss,
intercept_lr 0.01, zero initial weights):

1. --rows dicts of 20 float features: learn_batch (batches of 1000 dicts), and learn_one on
   each dict, versus river's learn_one with the same optimizer on the first --river-rows of
   the same dicts. The weight check compares river with a fresh stream_logreg model that
   learned the same first --river-rows dicts by learn_batch.
2. --rows x 20 dense float64 (a pandas DataFrame), one pass: learn_many (one exact step per
   row, in order) versus river's learn_one on the first --river-rows rows as dicts (weights
   compared after those rows, as in 1), and versus a bound: a plain numba loop over the rows
   of the C-contiguous array that takes exactly that optimizer's per-example step (dot
   product, log-loss gradient, the per-coordinate update, the intercept's step) with no
   dispatch, no checks and no feature names: the least that optimizer's exact step costs.
   The bound takes sqrt(v), v * v and 1 / v where river computes v ** 0.5, v ** 2 and v ** -1
   with the C library's pow, which rounds differently in the last bit about once in 1,200
   calls; so the bound's weights may differ from ours in the last bits (its max |difference|
   is printed as a sanity check of the bound). The kernel gets pow's rounding at mostly the
   cost of sqrt (stream_logreg._kernel._root: the nearest double, checked by a fused
   multiply-add, pow only where the exact result is near a midpoint). A second line runs the
   bound's loop calling pow every time (exponents passed at run time), river's step to the
   bit in the plain way: its weights must equal ours exactly.
   scikit-learn has no line here: its SGDClassifier steps with plain SGD only (no AdaGrad,
   Adam or FTRL step).
Each line prints examples/second (the best of the rounds; river learns only the first
--river-rows rows in each round, being much slower, so compare rates), the ratio "its time
/ stream_logreg's" for the same number of rows (above 1: stream_logreg is faster), and the
max |difference| of the weights and the intercept (river's weights equal ours to the bit
except after a margin |z| > 18, where river cuts the sigmoid's tails: ~1e-16). Every round
runs every contender once from a fresh model, in turn (3 rounds in 1, 5 in 2), so that a
slow spell of a shared machine hits all alike; timings on a shared virtual machine still
vary by up to 2x from run to run. A Markdown summary (one row per optimizer per section)
ends the output.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numba import njit
from river import linear_model, optim

from stream_logreg import LogisticRegression

FEATURES = 20
BATCH = 1000
INTERCEPT_LR = 0.01  # river's default, and stream_logreg's

OPTIMIZERS: list[tuple[str, Callable[[], optim.base.Optimizer]]] = [
    ("AdaGrad(0.1)", lambda: optim.AdaGrad(0.1)),
    ("Adam(0.01)", lambda: optim.Adam(0.01)),
    ("FTRLProximal()", lambda: optim.FTRLProximal()),
]


def best_of(rounds: int, *fns: Callable[[], object]) -> list[float]:
    """The best time of each fn over ``rounds`` rounds, each round running every fn once in
    turn, so that a slow spell of a shared machine hits every contender alike."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


# -- the plain numba bounds: one optimizer's exact per-example step each, nothing else ----------
#
# Each pass takes its powers through root, square and reciprocal. With the exponents None
# (the bound proper) they are sqrt(v), v * v and 1 / v; with 0.5, 2.0 and -1.0 passed at run
# time they are the C library's pow, as river's Python computes v ** 0.5, v ** 2 and v ** -1
# (LLVM cannot see the exponent, so cannot turn pow into sqrt), and the pass is river's step
# to the bit. numba compiles one version per kind of exponent and drops the other branch.


@njit(cache=True)
def root(v, half):
    if half is None:
        return math.sqrt(v)
    return v**half


@njit(cache=True)
def square(v, two):
    if two is None:
        return v * v
    return v**two


@njit(cache=True)
def reciprocal(v, minus_one):
    if minus_one is None:
        return 1.0 / v
    return v**minus_one


@njit(cache=True)
def log_gradient(z, y):
    """dLoss/dz = sigmoid(z) - y, as -s / (exp(s z) + 1) with s = +-1."""
    s = 1.0 if y != 0.0 else -1.0
    return -s / (math.exp(s * z) + 1.0)


@njit(cache=True)
def adagrad_pass(X, y, lr, eps, intercept_lr, half, two):
    n, d = X.shape
    coef, g2, intercept = np.zeros(d), np.zeros(d), 0.0
    for i in range(n):
        z = 0.0
        for j in range(d):
            z += coef[j] * X[i, j]
        g = log_gradient(z + intercept, y[i])
        intercept -= intercept_lr * g
        for j in range(d):
            gj = g * X[i, j]
            g2[j] += square(gj, two)
            coef[j] -= lr / root(g2[j] + eps, half) * gj
    return coef, intercept


@njit(cache=True)
def adam_pass(X, y, lr, beta_1, beta_2, eps, intercept_lr, half):
    n, d = X.shape
    coef, m, v, intercept = np.zeros(d), np.zeros(d), np.zeros(d), 0.0
    for i in range(n):
        z = 0.0
        for j in range(d):
            z += coef[j] * X[i, j]
        g = log_gradient(z + intercept, y[i])
        intercept -= intercept_lr * g
        rate = lr * root(1.0 - beta_2 ** (i + 1.0), half) / (1.0 - beta_1 ** (i + 1.0))
        for j in range(d):
            gj = g * X[i, j]
            m[j] = beta_1 * m[j] + (1.0 - beta_1) * gj
            v[j] = beta_2 * v[j] + (1.0 - beta_2) * (gj * gj)  # river squares Adam's gradient so too
            coef[j] -= rate * m[j] / (root(v[j], half) + eps)
    return coef, intercept


@njit(cache=True)
def ftrl_pass(X, y, alpha, beta, l1, l2, intercept_lr, half, two, minus_one):
    n, d = X.shape
    coef, zs, ns, intercept = np.zeros(d), np.zeros(d), np.zeros(d), 0.0
    for i in range(n):
        z = 0.0
        for j in range(d):
            z += coef[j] * X[i, j]
        g = log_gradient(z + intercept, y[i])
        intercept -= intercept_lr * g
        for j in range(d):
            zj, nj = zs[j], ns[j]
            if abs(zj) > l1:
                coef[j] = -reciprocal((beta + root(nj, half)) / alpha + l2, minus_one) * (zj - math.copysign(l1, zj))
            gj = g * X[i, j]
            g2 = square(gj, two)
            s = (root(nj + g2, half) - root(nj, half)) / alpha
            zs[j] = zj + (gj - s * coef[j])
            ns[j] = nj + g2
    return coef, intercept


def numba_bound(
    optimizer: Any, X: np.ndarray, y: np.ndarray, river_pow: bool = False
) -> Callable[[], tuple[np.ndarray, float]]:
    """The bound's pass over (X, y) for this river optimizer (its hyper-parameters read from
    it): with sqrt, v * v and 1 / v, or with river_pow, river's pow."""
    half, two, minus_one = (0.5, 2.0, -1.0) if river_pow else (None, None, None)
    o = optimizer
    if isinstance(o, optim.AdaGrad):
        lr = o.learning_rate
        return lambda: adagrad_pass(X, y, lr, o.eps, INTERCEPT_LR, half, two)
    if isinstance(o, optim.Adam):
        lr = o.learning_rate
        return lambda: adam_pass(X, y, lr, o.beta_1, o.beta_2, o.eps, INTERCEPT_LR, half)
    if isinstance(o, optim.FTRLProximal):
        return lambda: ftrl_pass(X, y, o.alpha, o.beta, o.l1, o.l2, INTERCEPT_LR, half, two, minus_one)
    raise TypeError(f"no bound for {optimizer!r}")


# -- helpers ---------------------------------------------------------------------------------------


def weight_diff(weights: dict, intercept: float, other: Any) -> float:
    """The max |difference| of the weights (by feature name) and the intercepts."""
    theirs = other.weights
    names = set(weights) | set(theirs)
    return max(abs(other.intercept - intercept), *(abs(weights.get(k, 0.0) - theirs.get(k, 0.0)) for k in names))


def row(name: str, n: int, seconds: float, ours_seconds: float | None = None, diff: float | None = None) -> None:
    """One table line; ``ours_seconds`` is stream_logreg's time for the same n rows."""
    rate = f"{n / seconds:,.0f}"
    ratio = f"{seconds / ours_seconds:.2f}x" if ours_seconds else ""
    print(f"| {name} | {rate} | {ratio} | {'' if diff is None else f'{diff:.1e}'} |")


def header(title: str) -> None:
    print(f"\n{title}\n")
    print("| what | examples/s | its time / stream_logreg's | max abs weight diff |")
    print("|---|---|---|---|")


def learn_batches(model: LogisticRegression, dicts: list[dict], labels: list[bool]) -> None:
    for start in range(0, len(dicts), BATCH):
        model.learn_batch(dicts[start : start + BATCH], labels[start : start + BATCH])


def river_learn(model: Any, dicts: list[dict], labels: list[bool]) -> None:
    for x, label in zip(dicts, labels, strict=True):
        model.learn_one(x, label)


def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """rows x 20 standard normal features, labels drawn from a logistic model of them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES))
    y = rng.random(rows) < 1.0 / (1.0 + np.exp(-X @ rng.normal(size=FEATURES)))
    return X, y


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel and bound once, outside the timings."""
    X, y = np.ones((2, FEATURES)), np.array([1.0, 0.0])
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(FEATURES)])
    for _, make in OPTIMIZERS:
        model = LogisticRegression(make())
        model.learn_many(frame, pd.Series([True, False]))
        model.learn_batch([{"a": 1.0}], [True])
        model.learn_one({"a": 1.0}, True)
        numba_bound(make(), X, y)()
        numba_bound(make(), X, y, river_pow=True)()


# -- the two sections ------------------------------------------------------------------------------

# (input and call, optimizer, our examples/s, river's, max weight diff vs river, our time / the
# bound's, our time / the bound's with river's pow)
SummaryRow = tuple[str, str, float, float, float, float | None, float | None]
Summary = list[SummaryRow]


def dict_section(rows: int, river_rows: int, summary: Summary) -> None:
    X, y = make_data(rows, seed=3)
    names = [f"f{j}" for j in range(FEATURES)]
    dicts = [dict(zip(names, r, strict=True)) for r in X.tolist()]
    labels = y.tolist()
    for title, make in OPTIMIZERS:
        header(f"1. {title}: {rows:,} dicts of {FEATURES} features (river: the first {river_rows:,})")
        summary.append(dict_rows(title, make, dicts, labels, river_rows))


def dict_rows(
    title: str, make: Callable[[], optim.base.Optimizer], dicts: list[dict], labels: list[bool], river_rows: int
) -> SummaryRow:
    """Section 1's lines for one optimizer; returns its summary row."""
    rows, river_dicts, river_labels = len(dicts), dicts[:river_rows], labels[:river_rows]
    ours, one = LogisticRegression(make()), LogisticRegression(make())
    river = linear_model.LogisticRegression(make())

    def batches() -> None:
        ours.__init__(make())  # type: ignore[misc]
        learn_batches(ours, dicts, labels)

    def one_by_one() -> None:
        one.__init__(make())  # type: ignore[misc]
        for x, label in zip(dicts, labels, strict=True):
            one.learn_one(x, label)

    def river_pass() -> None:
        river.__init__(make())  # type: ignore[misc]
        river_learn(river, river_dicts, river_labels)

    t_ours, t_one, t_river = best_of(3, batches, one_by_one, river_pass)
    check = LogisticRegression(make())
    learn_batches(check, river_dicts, river_labels)
    river_diff = weight_diff(check.weights, check.intercept, river)
    t_ours_river_rows = t_ours * river_rows / rows
    row(f"stream_logreg learn_batch ({BATCH} dicts per batch)", rows, t_ours)
    row("stream_logreg learn_one", rows, t_one, t_ours, weight_diff(ours.weights, ours.intercept, one))
    row(f"river learn_one ({river_rows:,} dicts)", river_rows, t_river, t_ours_river_rows, river_diff)
    return (f"{FEATURES}-feature dicts, learn_batch", title, rows / t_ours, river_rows / t_river, river_diff, None,
            None)  # fmt: skip


def dense_section(rows: int, river_rows: int, summary: Summary) -> None:
    X, y = make_data(rows, seed=4)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(FEATURES)])
    for title, make in OPTIMIZERS:
        header(f"2. {title}: {rows:,} x {FEATURES} dense float64, one pass (river: the first {river_rows:,} rows)")
        summary.append(dense_rows(title, make, X, y, frame, river_rows))


def dense_rows(
    title: str,
    make: Callable[[], optim.base.Optimizer],
    X: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    river_rows: int,
) -> SummaryRow:
    """Section 2's lines for one optimizer; returns its summary row."""
    rows, labels, y_float = len(X), pd.Series(y), y.astype(np.float64)
    river_dicts, river_labels = frame.iloc[:river_rows].to_dict("records"), y[:river_rows].tolist()
    ours = LogisticRegression(make())
    river = linear_model.LogisticRegression(make())
    bound = numba_bound(make(), X, y_float)
    exact_bound = numba_bound(make(), X, y_float, river_pow=True)
    results: dict[str, tuple[np.ndarray, float]] = {}

    def fresh_pass() -> None:
        ours.__init__(make())  # type: ignore[misc]
        ours.learn_many(frame, labels)

    def bound_pass() -> None:
        results["bound"] = bound()

    def exact_bound_pass() -> None:
        results["exact"] = exact_bound()

    def river_pass() -> None:
        river.__init__(make())  # type: ignore[misc]
        river_learn(river, river_dicts, river_labels)

    t_ours, t_bound, t_exact, t_river = best_of(5, fresh_pass, bound_pass, exact_bound_pass, river_pass)
    bound_diff, exact_diff = (
        weight_diff(dict(zip(frame.columns, coef.tolist(), strict=True)), intercept, ours)
        for coef, intercept in (results["bound"], results["exact"])
    )
    check = LogisticRegression(make())
    check.learn_many(frame.iloc[:river_rows], labels.iloc[:river_rows])
    river_diff = weight_diff(check.weights, check.intercept, river)
    row("stream_logreg learn_many (DataFrame in)", rows, t_ours)
    row("bound: plain numba loop, the same step (sqrt, x * x, 1 / x)", rows, t_bound, t_ours, bound_diff)
    row("the same loop with river's pow (its step to the bit)", rows, t_exact, t_ours, exact_diff)
    row(f"river learn_one ({river_rows:,} rows)", river_rows, t_river, t_ours * river_rows / rows, river_diff)
    print(
        f"\nstream_logreg's distance from the bound (its time / the bound's): {t_ours / t_bound:.2f}x;"
        f" from the loop with river's pow: {t_ours / t_exact:.2f}x"
    )
    return (f"{FEATURES}-column DataFrame, learn_many", title, rows / t_ours, river_rows / t_river, river_diff,
            t_ours / t_bound, t_ours / t_exact)  # fmt: skip


def print_summary(summary: Summary, command: str) -> None:
    print(f"\nSummary (`{command}`; examples/s, the best of the rounds):\n")
    print("| input, stream_logreg call | optimizer | stream_logreg | river learn_one | speed-up vs river "
          "| max abs weight diff vs river | time / plain numba bound | time / the same with river's pow |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for what, title, ours, river, diff, distance, exact_distance in summary:
        away = "" if distance is None else f"{distance:.2f}x"
        exact_away = "" if exact_distance is None else f"{exact_distance:.2f}x"
        print(f"| {what} | {title} | {ours:,.0f} | {river:,.0f} | {ours / river:.1f}x | {diff:.1e} | {away} "
              f"| {exact_away} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--river-rows", type=int, default=100_000)
    args = parser.parse_args()
    river_rows = min(args.river_rows, args.rows)
    warm_up()
    summary: Summary = []
    dict_section(args.rows, river_rows, summary)
    dense_section(args.rows, river_rows, summary)
    print_summary(summary, f"python benchmarks/bench_optimizers.py --rows {args.rows} --river-rows {river_rows}")


if __name__ == "__main__":
    main()
