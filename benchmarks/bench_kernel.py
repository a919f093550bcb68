"""The compiled kernel against scikit-learn and river, side by side in one run.

    python benchmarks/bench_kernel.py [--rows 1000000] [--river-rows 1000000]

1. 1,000,000 x 20 dense float64, one pass: learn_many (DataFrame in) versus scikit-learn
   SGDClassifier(log_loss, constant eta0=lr, alpha=0, shuffle=False, max_iter=1).fit and
   versus river's learn_one on the same rows; plus a bound: a plain numba pass that only
   computes each row's dot product (no update), the least any exact per-row SGD must do.
2. 1,000,000 rows x 30 non-zeros out of 2**20 columns (CSR): learn_many of a hashed model
   (n_features=2**20: no names) and of a model of named features versus scikit-learn's fit
   on the same matrix, and a bound: a dot-product pass over the matrix.
3. learn_batch on lists of 10-feature dicts (batches of 1000) versus river's learn_one on
   the same dicts.
Each line prints examples/second (for stream_logreg, scikit-learn and the bounds: the best
of 7 rounds (3 for section 3), each round running each of them once from a fresh model, in turn; one pass for
river), the ratio, and the max |difference| of the weights. Timings on a shared virtual
machine vary by up to 2x from run to run; the rounds make a slow spell hit all alike.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse
from numba import njit
from river import linear_model, optim
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from stream_logreg import LogisticRegression
from stream_logreg._kernel import _prefetch

LR = 0.01


def timed(fn, repeat: int = 1) -> float:
    """The best of ``repeat`` timings of fn() (fn must start from a fresh state each call)."""
    return best_of(repeat, fn)[0]


def best_of(rounds: int, *fns) -> list[float]:
    """The best time of each fn over ``rounds`` rounds, each round running every fn once in
    turn, so that a slow spell of a shared machine hits every contender alike."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def sklearn_sgd() -> SGDClassifier:
    return SGDClassifier(
        loss="log_loss", learning_rate="constant", eta0=LR, alpha=0.0, penalty=None,
        shuffle=False, max_iter=1, tol=None,
    )  # fmt: skip


@njit(cache=True)
def csr_dot_pass(indptr, indices, data, coef):
    """Each row's dot product, asking for the weights of the row 4 ahead early (as the kernel
    does: without it, the scattered loads of this pass take twice as long)."""
    total = 0.0
    n = indptr.shape[0] - 1
    for i in range(n):
        if i + 4 < n:
            for k in range(indptr[i + 4], indptr[i + 5]):
                _prefetch(coef, indices[k])
        z = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            z += coef[indices[k]] * data[k]
        total += z
    return total


@njit(cache=True)
def dot_pass(X, coef):
    total = 0.0
    for i in range(X.shape[0]):
        z = 0.0
        for j in range(X.shape[1]):
            z += coef[j] * X[i, j]
        total += z
    return total


def row(name: str, n: int, seconds: float, ours_seconds: float | None = None, diff: float | None = None):
    """One table line; ``ours_seconds`` is stream_logreg's time for the same n rows."""
    rate = f"{n / seconds:,.0f}"
    ratio = f"{seconds / ours_seconds:.1f}x" if ours_seconds else ""
    print(f"| {name} | {rate} | {ratio} | {'' if diff is None else f'{diff:.1e}'} |")


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel once, outside the timings."""
    model = LogisticRegression()
    model.learn_many(pd.DataFrame(np.ones((2, 20))), pd.Series([True, False]))
    model.learn_many(scipy.sparse.csr_matrix(np.eye(2)), pd.Series([True, False]))
    model.learn_batch([{"a": 1.0}], [True])
    dot_pass(np.ones((2, 2)), np.ones(2))
    csr_dot_pass(np.array([0, 1], dtype=np.int32), np.array([0], dtype=np.int32), np.ones(1), np.ones(1))


def dense(rows: int, river_rows: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20))
    y = rng.random(rows) < 1.0 / (1.0 + np.exp(-X @ rng.normal(size=20)))
    frame, labels = pd.DataFrame(X, columns=[f"f{j}" for j in range(20)]), pd.Series(y)
    print(f"\n1. dense, {rows:,} x 20, one pass\n")
    print("| what | examples/s | its time / stream_logreg's | max abs weight diff vs stream_logreg |")
    print("|---|---|---|---|")
    ours = LogisticRegression(optim.SGD(LR), intercept_lr=LR)

    def fresh_pass() -> None:
        ours.__init__(optim.SGD(LR), intercept_lr=LR)  # type: ignore[misc]
        ours.learn_many(frame, labels)

    coef = np.ones(20)
    sk = sklearn_sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_ours, t_sk, t_bound = best_of(7, fresh_pass, lambda: sk.fit(X, y), lambda: dot_pass(X, coef))
    coef = np.array(list(ours.weights.values()))
    sk_diff = max(np.max(np.abs(sk.coef_[0] - coef)), abs(sk.intercept_[0] - ours.intercept))
    dicts = frame.iloc[:river_rows].to_dict("records")
    river = linear_model.LogisticRegression()

    def river_pass() -> None:
        for x, label in zip(dicts, y[:river_rows].tolist(), strict=True):
            river.learn_one(x, label)

    t_river = timed(river_pass, repeat=2)
    check = LogisticRegression(optim.SGD(LR), intercept_lr=LR)
    check.learn_many(frame.iloc[:river_rows], labels.iloc[:river_rows])
    river_diff = max(abs(river.weights[k] - v) for k, v in check.weights.items())
    row("stream_logreg learn_many (DataFrame in)", rows, t_ours)
    row("bound: numba dot-product pass, no update", rows, t_bound, t_ours)
    row("scikit-learn SGDClassifier.fit", rows, t_sk, t_ours, sk_diff)
    row(f"river learn_one ({river_rows:,} rows)", river_rows, t_river, t_ours * river_rows / rows, river_diff)


def sparse(rows: int) -> None:
    rng = np.random.default_rng(1)
    columns, nnz = 2**20, 30
    indices = np.sort(rng.integers(0, columns, size=(rows, nnz)), axis=1).ravel()
    data = rng.normal(size=rows * nnz)
    X = scipy.sparse.csr_matrix((data, indices, np.arange(0, rows * nnz + 1, nnz)), shape=(rows, columns))
    y = rng.random(rows) < 0.5
    print(f"\n2. sparse, {rows:,} rows x {nnz} non-zeros of 2**20 columns, one pass\n")
    print("| what | examples/s | its time / stream_logreg's | max abs weight diff vs stream_logreg |")
    print("|---|---|---|---|")
    # scikit-learn damps the intercept's step by 0.01 on sparse input (SPARSE_INTERCEPT_DECAY).
    ours = LogisticRegression(optim.SGD(LR), intercept_lr=LR * 0.01, n_features=columns)
    named = LogisticRegression(optim.SGD(LR), intercept_lr=LR * 0.01)
    series = pd.Series(y)

    def fresh_pass() -> None:
        ours.__init__(optim.SGD(LR), intercept_lr=LR * 0.01, n_features=columns)  # type: ignore[misc]
        ours.learn_many(X, series)

    def named_pass() -> None:
        named.__init__(optim.SGD(LR), intercept_lr=LR * 0.01)  # type: ignore[misc]
        named.learn_many(X, series)

    sk = sklearn_sgd()
    ones = np.ones(columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_ours, t_named, t_sk, t_bound = best_of(
            7, fresh_pass, named_pass, lambda: sk.fit(X, y), lambda: csr_dot_pass(X.indptr, X.indices, X.data, ones)
        )
    coef = ours._state.coef
    sk_diff = max(np.max(np.abs(sk.coef_[0] - coef)), abs(sk.intercept_[0] - ours.intercept))
    named_diff = max(abs(coef[j] - w) for j, w in named.weights.items())
    row("stream_logreg learn_many, hashed model (n_features=2**20, scipy CSR in)", rows, t_ours)
    row("stream_logreg learn_many, named features (a dict of the columns seen)", rows, t_named, t_ours, named_diff)
    row("bound: numba dot-product pass over the CSR, prefetching as the kernel does, no update", rows, t_bound, t_ours)
    row("scikit-learn SGDClassifier.fit (same CSR)", rows, t_sk, t_ours, sk_diff)


def dict_batches(rows: int) -> None:
    rng = np.random.default_rng(2)
    names = [f"f{j}" for j in range(10)]
    dicts = [dict(zip(names, r, strict=True)) for r in rng.normal(size=(rows, 10)).tolist()]
    labels = (rng.random(rows) < 0.5).tolist()
    print(f"\n3. {rows:,} dicts of 10 features\n")
    print("| what | examples/s | its time / stream_logreg's | max abs weight diff vs stream_logreg |")
    print("|---|---|---|---|")
    ours, one, river = LogisticRegression(), LogisticRegression(), linear_model.LogisticRegression()

    def batches() -> None:
        ours.__init__()  # type: ignore[misc]
        for start in range(0, rows, 1000):
            ours.learn_batch(dicts[start : start + 1000], labels[start : start + 1000])

    def one_by_one() -> None:
        one.__init__()  # type: ignore[misc]
        for x, label in zip(dicts, labels, strict=True):
            one.learn_one(x, label)

    def river_pass() -> None:
        river.__init__()  # type: ignore[misc]
        for x, label in zip(dicts, labels, strict=True):
            river.learn_one(x, label)

    t_ours, t_one, t_river = best_of(3, batches, one_by_one, river_pass)
    diff = max(abs(river.weights[k] - v) for k, v in ours.weights.items())
    row("stream_logreg learn_batch (1000 dicts per batch)", rows, t_ours)
    row("stream_logreg learn_one", rows, t_one, t_ours, 0.0 if one.weights == ours.weights else None)
    row("river learn_one", rows, t_river, t_ours, diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--river-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    warm_up()
    dense(args.rows, args.river_rows)
    sparse(args.rows)
    dict_batches(args.rows)


if __name__ == "__main__":
    main()
