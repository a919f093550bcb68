"""The compiled kernel equals the plain reference and looping learn_one, to <= 1e-12."""

import itertools
import math
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from river import datasets, optim
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from stream_logreg import LogisticRegression, _dictstep, _kernel

from reference import max_abs_diff, reference_csr, reference_dense, reference_fit, shifting_stream


def dense_stream(n: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12)) * rng.uniform(0.1, 5.0, size=12)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-X @ rng.normal(size=12)))
    names = [f"c{j}" for j in range(12)]
    return [(dict(zip(names, row, strict=True)), bool(t)) for row, t in zip(X.tolist(), y, strict=True)]


STREAMS = {
    "phishing": lambda: list(datasets.Phishing()),
    "bananas": lambda: list(datasets.Bananas()),
    "dense": lambda: dense_stream(3000, seed=1),
    "sparse_shifting": lambda: list(shifting_stream(4000, seed=2)),
}

CONFIGS: dict[str, dict[str, Any]] = {
    "constant": {"optimizer": optim.SGD(0.05)},
    "inverse_scaling_l2": {
        "optimizer": optim.SGD(optim.schedulers.InverseScaling(0.5, 0.6)),
        "intercept_lr": optim.schedulers.InverseScaling(0.2, 0.3),
        "l2": 0.01,
    },
    "small_clip": {"optimizer": optim.SGD(0.2), "clip_gradient": 0.05, "l2": 0.001},
}


def learn_one_loop(model, data, weights):
    probas = []
    for (x, y), w in zip(data, weights, strict=True):
        probas.append(model.predict_proba_one(x)[True])
        model.learn_one(x, y, w)
    return np.array(probas)


def assert_same(a: LogisticRegression, b: LogisticRegression, tol: float = 1e-12):
    assert max_abs_diff(a.weights, b.weights) <= tol
    assert list(a.weights) == list(b.weights)
    assert abs(a.intercept - b.intercept) <= tol and a.n_steps == b.n_steps


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("stream", STREAMS)
def test_kernel_equals_reference_and_learn_one(stream, config, weighted):
    data = STREAMS[stream]()
    params = CONFIGS[config]
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.0, 3.0, len(data)) if weighted else np.ones(len(data))

    one = LogisticRegression(**params)
    one_probas = learn_one_loop(one, data, weights.tolist())

    batch = LogisticRegression(**params)
    batch_probas = batch.learn_batch([x for x, _ in data], [y for _, y in data], weights)
    assert_same(batch, one)
    assert np.max(np.abs(batch_probas - one_probas)) <= 1e-12

    # The plain reference on the same packed arrays.
    index: dict = {}
    nnz = sum(len(x) for x, _ in data)
    indptr, indices, values = np.empty(len(data) + 1, np.int64), np.empty(nnz, np.int64), np.empty(nnz)
    _dictstep.pack(index, [x for x, _ in data], indptr, indices, values)
    rule = batch._rule()
    assert rule is not None and isinstance(rule.optimizer, _kernel.SGD)
    rates = (*rule.optimizer.lr, *rule.intercept_lr)
    coef, state, ref_probas = np.zeros(len(index)), np.zeros(2), np.empty(len(data))
    labels = np.array([float(y) for _, y in data])
    clip = float(params.get("clip_gradient", 1e12))
    reference_csr(
        indptr, indices, values, labels, weights, coef, state, *rates, params.get("l2", 0.0), clip, ref_probas
    )
    assert max_abs_diff(dict(zip(index, coef.tolist(), strict=True)), one.weights) <= 1e-12
    assert abs(state[0] - one.intercept) <= 1e-12
    assert np.max(np.abs(ref_probas - one_probas)) <= 1e-12

    # The dense form, where every row has the same features.
    if stream != "sparse_shifting":
        dense = LogisticRegression(**params)
        dense.learn_many(pd.DataFrame([x for x, _ in data]), pd.Series([y for _, y in data]), pd.Series(weights))
        assert_same(dense, one)


def test_learn_one_matches_the_dict_reference_of_the_derivation():
    data = list(shifting_stream(2000, seed=9))
    model = LogisticRegression(optim.SGD(0.1), l2=0.01)
    probas = learn_one_loop(model, data, [1.0] * len(data))
    theta, b, ref_probas = reference_fit(data, lr=0.1, l2=0.01)
    assert max_abs_diff(model.weights, theta) <= 1e-12 and abs(model.intercept - b) <= 1e-12
    assert np.max(np.abs(probas - np.array(ref_probas))) <= 1e-12


def test_dense_kernel_equals_its_reference():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 6))
    y = (rng.random(500) < 0.4).astype(np.float64)
    w = rng.uniform(0, 2, 500)
    cols = np.array([3, 0, 5, 1, 4, 2], dtype=np.int64)
    rule = _kernel.Rule(_kernel.SGD(_kernel.Rate(0.3, 0.5)), _kernel.Log(), _kernel.Rate(0.1, 0.0), 0.001, None, 0.5)
    results = []
    coef, state, probas = np.zeros(6), np.array([0.1, 10.0, 0.0]), np.empty(500)
    assert _kernel.learn_dense(X, cols, y, w, coef, np.zeros((0, 6)), state, rule, probas) == -1
    results.append((coef, state[:2], probas))
    coef, state, probas = np.zeros(6), np.array([0.1, 10.0]), np.empty(500)
    assert reference_dense(X, y, w, cols, coef, state, 0.3, 0.5, 0.1, 0.0, 0.001, 0.5, probas) == -1
    results.append((coef, state, probas))
    (c1, s1, p1), (c2, s2, p2) = results
    assert np.max(np.abs(c1 - c2)) <= 1e-12 and np.max(np.abs(s1 - s2)) <= 1e-12
    assert np.max(np.abs(p1 - p2)) <= 1e-12 and s1[1] == 510


@pytest.mark.parametrize("size", [1, 7, 1000, None])
def test_micro_batch_size_does_not_change_the_model(size):
    data = list(shifting_stream(3000, seed=11))
    whole = LogisticRegression(optim.SGD(optim.schedulers.InverseScaling(0.3)), l2=0.001)
    whole.learn_batch([x for x, _ in data], [y for _, y in data])
    split = LogisticRegression(optim.SGD(optim.schedulers.InverseScaling(0.3)), l2=0.001)
    step = size or len(data)
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        split.learn_batch([x for x, _ in chunk], [y for _, y in chunk])
    assert_same(split, whole)
    one = LogisticRegression(optim.SGD(optim.schedulers.InverseScaling(0.3)), l2=0.001)
    learn_one_loop(one, data, [1.0] * len(data))
    assert_same(one, whole)


def test_a_scheduler_the_kernel_cannot_express_falls_back_with_identical_results():
    data = list(itertools.islice(datasets.Phishing(), 600))
    lr = optim.schedulers.Optimal(optim.losses.Log(), alpha=1e-3)
    batch = LogisticRegression(optim.SGD(lr))
    assert batch._rule() is None
    probas = batch.learn_batch([x for x, _ in data], [y for _, y in data])
    one = LogisticRegression(optim.SGD(lr))
    assert np.array_equal(probas, learn_one_loop(one, data, [1.0] * len(data)))
    assert_same(batch, one, tol=0.0)
    frame = LogisticRegression(optim.SGD(lr))
    frame.learn_many(pd.DataFrame([x for x, _ in data]), pd.Series([y for _, y in data]))
    assert_same(frame, one, tol=0.0)


def snapshot(model):
    return model.weights, model.intercept, model.n_steps


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"new_name": "x"}, TypeError),
        ({"a": float("nan")}, ValueError),
        ({"a": 1e308, "b": 1e308}, ValueError),
    ],
)
@pytest.mark.parametrize("fallback", [False, True])
def test_a_bad_example_in_a_batch_changes_nothing(bad, error, fallback):
    lr: Any = optim.schedulers.Optimal(optim.losses.Log()) if fallback else 1.0
    model = LogisticRegression(optim.SGD(lr))
    model.learn_batch([{"a": 1.0, "b": 1.0}] * 30, [True] * 30)
    before = snapshot(model)
    xs = [{"a": 0.5, "c": 1.0}, {"d": 2.0}, bad, {"e": 1.0}]
    with pytest.raises(error):
        model.learn_batch(xs, [True, False, True, False])
    assert snapshot(model) == before
    with pytest.raises(ValueError, match="label y=5"):
        model.learn_batch([{"a": 1.0}, {"z": 1.0}], [True, 5])
    assert snapshot(model) == before
    model.learn_batch([{"a": 1.0}], [True])  # still usable, and consistent
    reference = LogisticRegression(optim.SGD(lr))
    reference.learn_batch([{"a": 1.0, "b": 1.0}] * 30 + [{"a": 1.0}], [True] * 31)
    assert snapshot(model) == snapshot(reference)


def test_importing_the_package_compiles_nothing():
    code = "import sys, stream_logreg; print('numba' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_sparse_learn_many_equals_learn_one_on_the_rows():
    rng = np.random.default_rng(8)
    dense = rng.normal(size=(400, 50)) * (rng.random((400, 50)) < 0.1)
    dense[:, 7] = 0.0  # a column that never appears
    X = scipy.sparse.csr_matrix(dense)
    X.data[::17] = 0.0  # explicit zeros are present features (decayed by l2, like river)
    y = rng.random(400) < 0.5
    model = LogisticRegression(optim.SGD(0.2), l2=0.01)
    model.learn_many(X[:150], pd.Series(y[:150]))
    model.learn_many(X[150:], pd.Series(y[150:]))
    one = LogisticRegression(optim.SGD(0.2), l2=0.01)
    for i in range(400):
        span = slice(X.indptr[i], X.indptr[i + 1])
        one.learn_one(dict(zip(X.indices[span].tolist(), X.data[span].tolist(), strict=True)), bool(y[i]))
    assert 7 not in model.weights
    assert model.weights == one.weights and model.intercept == one.intercept


def test_dense_one_pass_equals_scikit_learn_sgd():
    """scikit-learn's plain SGD with eta0 = lr = intercept_lr takes river's steps too."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 8))
    y = rng.random(5000) < 1.0 / (1.0 + np.exp(-X @ rng.normal(size=8)))
    sk = SGDClassifier(
        loss="log_loss", learning_rate="constant", eta0=0.05, alpha=0.0, penalty=None,
        shuffle=False, max_iter=1, tol=None,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    ours = LogisticRegression(optim.SGD(0.05), intercept_lr=0.05)
    ours.learn_many(pd.DataFrame(X), pd.Series(y))
    assert np.max(np.abs(np.array(list(ours.weights.values())) - sk.coef_[0])) <= 1e-12
    assert abs(ours.intercept - sk.intercept_[0]) <= 1e-12


@pytest.mark.parametrize(("helper", "exponent"), [("_root", 0.5), ("_square", 2), ("_inverse", -1)])
def test_the_kernels_powers_equal_cpythons_bit_for_bit(helper, exponent):
    """x ** 0.5, x ** 2 and x ** -1 as CPython computes them (the C library's pow), which
    differ from sqrt, x * x and 1 / x in about one case in 1,200: on a million random values
    over 35 decades each side, the exact extremes, and the values where the plain forms
    differ from pow."""
    from numba import njit

    compute = getattr(_kernel, helper)
    powers = _kernel.Powers()

    @njit
    def apply(xs, out, powers):
        for i in range(xs.shape[0]):
            out[i] = compute(xs[i], powers)

    rng = np.random.default_rng(17)
    xs = rng.standard_normal(1_000_000) * np.exp(rng.uniform(-80.0, 80.0, 1_000_000))
    tiny, huge = np.finfo(np.float64).smallest_subnormal, np.finfo(np.float64).max
    xs = np.concatenate([xs, [tiny, 1e-300, 1e-281, 1e-141, 1e-139, 0.5, 1.0, 2.0, 1e139, 1e141, 1e279, 1e281, huge]])
    xs = np.abs(xs) if helper == "_root" else np.concatenate([xs, -xs[-13:]])

    def cpython(x: float) -> float:
        try:
            return x**exponent
        except OverflowError:  # where C's pow returns an infinity
            return math.copysign(math.inf, x) if exponent == -1 else math.inf

    expected = np.array([cpython(x) for x in xs.tolist()])
    plain = {"_root": np.sqrt, "_square": np.square, "_inverse": np.reciprocal}[helper]
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        assert (plain(xs) != expected).sum() > 500  # the plain forms do differ from pow
    got = np.empty_like(xs)
    apply(xs, got, powers)
    assert np.array_equal(got, expected)


def test_packing_reuses_columns_only_for_the_same_key_object_at_the_same_place():
    """learn_batch remembers the column of each row's k-th key for the next row; rows whose
    keys change order, are equal but distinct objects, or number more than it remembers (64)
    must still get the columns of their names."""
    rng = np.random.default_rng(8)
    names = [f"f{j}" for j in range(100)]
    xs = []
    for i in range(600):
        chosen = list(rng.choice(names, size=int(rng.integers(1, 100)), replace=False))
        if i % 3 == 0:
            chosen = ["".join(list(name)) for name in chosen]  # equal names, other str objects
        if i % 5 == 0:
            chosen = names[:70]  # the same objects in the same order, past 64 of them
        xs.append({name: float(rng.normal()) for name in chosen})
    ys = [bool(v) for v in rng.random(600) < 0.5]
    batch, one = LogisticRegression(optim.Adam(0.05)), LogisticRegression(optim.Adam(0.05))
    batch.learn_batch(xs, ys)
    for x, y in zip(xs, ys, strict=True):
        one.learn_one(x, y)
    assert_same(batch, one, tol=0.0)
