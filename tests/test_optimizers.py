"""Every river optimizer, loss and initializer gives river's model; the compiled ones equal
the exact path (river's own step) and stay the same across batch sizes, input forms and a
save and load; l1 and l2 together are the elastic net of a slow reference and scikit-learn."""

import math
import random
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from river import datasets, linear_model, optim
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from stream_logreg import LogisticRegression, _exact

from reference import max_abs_diff, shifting_stream

STREAMS = {
    "phishing": lambda: list(datasets.Phishing()),
    "bananas": lambda: list(datasets.Bananas()),
    "shifting": lambda: list(shifting_stream(4000, seed=7)),
}

# Each a function, so that every model gets its own optimizer object (river's step theirs).
COMPILED: dict[str, Callable[[], Any]] = {
    "sgd": lambda: optim.SGD(0.1),
    "sgd_inverse_scaling": lambda: optim.SGD(optim.schedulers.InverseScaling(0.3, 0.4)),
    "adagrad": lambda: optim.AdaGrad(0.1),
    "rmsprop": lambda: optim.RMSProp(0.05),
    "adam": lambda: optim.Adam(optim.schedulers.InverseScaling(0.05, 0.2)),
    "ftrl": lambda: optim.FTRLProximal(alpha=0.1, l1=0.2, l2=0.5),
}
EXACT: dict[str, Callable[[], Any]] = {
    "momentum": lambda: optim.Momentum(0.05),
    "nesterov": lambda: optim.NesterovMomentum(0.05),
    "adadelta": lambda: optim.AdaDelta(),
    "adamax": lambda: optim.AdaMax(0.05),
    "amsgrad": lambda: optim.AMSGrad(0.05),
    "nadam": lambda: optim.Nadam(0.05),
    "adabound": lambda: optim.AdaBound(0.05),
    "averager": lambda: optim.Averager(optim.SGD(0.1)),
    "sgd_optimal": lambda: optim.SGD(optim.schedulers.Optimal(optim.losses.Log())),
}


def learn_both(make: Callable[[], Any], data: list, **params: Any) -> tuple[LogisticRegression, Any]:
    ours = LogisticRegression(make(), **params)
    theirs = linear_model.LogisticRegression(make(), **params)
    rng = random.Random(3)
    for x, y in data:
        w = rng.uniform(0.0, 2.0)
        ours.learn_one(x, y, w)
        theirs.learn_one(x, y, w)
    return ours, theirs


def assert_rivers(ours: LogisticRegression, theirs: Any, tol: float = 1e-9) -> None:
    """Our weights are river's (a feature river never gave a weight is 0 here)."""
    assert set(theirs.weights) <= set(ours.weights)
    assert max(abs(v - theirs.weights.get(k, 0.0)) for k, v in ours.weights.items()) <= tol
    assert abs(ours.intercept - theirs.intercept) <= tol


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("optimizer", [*COMPILED, *EXACT])
def test_every_river_optimizer_gives_rivers_weights(optimizer, stream):
    make = {**COMPILED, **EXACT}[optimizer]
    ours, theirs = learn_both(make, STREAMS[stream]())
    assert (ours._rule() is not None) == (optimizer in COMPILED)
    assert_rivers(ours, theirs)


@pytest.mark.parametrize(
    "params",
    [
        {"loss": optim.losses.Log(weight_pos=2.0, weight_neg=0.5), "l2": 0.01},
        {"loss": optim.losses.Hinge(threshold=0.5)},
        {"loss": optim.losses.BinaryFocalLoss(gamma=2.0, beta=0.5)},
        {"initializer": optim.initializers.Constant(0.1)},
        {"l1": 0.001},
        {"intercept_lr": optim.schedulers.Optimal(optim.losses.Log())},
    ],
    ids=["weighted_log_l2", "hinge", "focal", "constant_init", "l1", "optimal_intercept_rate"],
)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad"])
def test_losses_initializers_penalties_and_rates_give_rivers_weights(optimizer, params):
    ours, theirs = learn_both(COMPILED[optimizer], list(shifting_stream(3000, seed=5)), **params)
    assert_rivers(ours, theirs)


def test_a_random_initializer_draws_rivers_values_in_rivers_order():
    data = list(shifting_stream(2000, seed=8))
    ours = LogisticRegression(initializer=optim.initializers.Normal(sigma=0.1, seed=4))
    theirs = linear_model.LogisticRegression(initializer=optim.initializers.Normal(sigma=0.1, seed=4))
    for x, y in data:
        ours.learn_one(x, y)
        theirs.learn_one(x, y)
    assert_rivers(ours, theirs, tol=0.0)
    assert list(ours.weights) == list(theirs.weights)


PENALTIES: dict[str, dict[str, Any]] = {
    "plain": {},
    "l2": {"l2": 0.01},
    "l1": {"l1": 0.002},
    "elastic_net": {"l1": 0.002, "l2": 0.01},
    "clipped": {"l2": 0.001, "clip_gradient": 0.3},
}


def fresh_data(n: int = 3000, seed: int = 12) -> tuple[list[tuple[dict, bool]], list[float]]:
    data = list(shifting_stream(n, seed=seed))
    rng = random.Random(seed)
    return data, [rng.uniform(0.0, 2.0) for _ in data]


# FTRLProximal takes its own l1; the model refuses l1= with it (test_bad_input).
@pytest.mark.parametrize(
    ("optimizer", "penalty"),
    [(o, p) for o in COMPILED for p in PENALTIES if not (o == "ftrl" and "l1" in PENALTIES[p])],
)
def test_the_kernel_equals_the_exact_path(optimizer, penalty):
    """The compiled step and river's own step (the exact path) on the same model, with and
    without sample weights: the same weights, intercept and optimizer state."""
    params: dict[str, Any] = PENALTIES[penalty]
    data, weights = fresh_data()
    for sample_weights in (False, True):
        compiled = LogisticRegression(COMPILED[optimizer](), **params)
        exact = LogisticRegression(COMPILED[optimizer](), **params)
        for (x, y), w in zip(data, weights, strict=True):
            w = w if sample_weights else 1.0
            compiled.learn_one(x, y, w)
            _exact.learn_one(exact, x, float(y), w)
        assert max_abs_diff(compiled.weights, exact.weights) <= 1e-9
        assert abs(compiled.intercept - exact.intercept) <= 1e-9
        n = len(compiled._space)
        slots = compiled._state.slots[:, :n], exact._state.slots[:, :n]
        assert slots[0].shape == slots[1].shape and np.max(np.abs(slots[0] - slots[1]), initial=0.0) <= 1e-9
        assert abs(compiled._state.l1_total - exact._state.l1_total) <= 1e-12


def model_state(model: LogisticRegression) -> tuple:
    n = len(model._space)
    return (model.weights, model.intercept, model.n_steps, model._state.slots[:, :n].tolist(), model._state.l1_total)


@pytest.mark.parametrize("optimizer", COMPILED)
def test_batches_of_any_size_and_every_input_form_give_the_model_of_learn_one(optimizer):
    params: dict[str, Any] = {"l1": 0.001, "l2": 0.01} if optimizer != "ftrl" else {"l2": 0.01}
    data, weights = fresh_data(2500, seed=21)
    xs, ys = [x for x, _ in data], [y for _, y in data]
    one = LogisticRegression(COMPILED[optimizer](), **params)
    for x, y, w in zip(xs, ys, weights, strict=True):
        one.learn_one(x, y, w)
    for size in (1, 7, 1000, len(data)):
        batched = LogisticRegression(COMPILED[optimizer](), **params)
        for start in range(0, len(data), size):
            end = start + size
            batched.learn_batch(xs[start:end], ys[start:end], weights[start:end])
        assert model_state(batched) == model_state(one), size

    dense_rows = [{**{f"c{j}": 0.0 for j in range(4)}, **{k: v for k, v in x.items() if k in ("c0", "c1")}}
                  for x in xs]  # fmt: skip
    frame = pd.DataFrame(dense_rows)
    one_dense = LogisticRegression(COMPILED[optimizer](), **params)
    for x, y, w in zip(dense_rows, ys, weights, strict=True):
        one_dense.learn_one(x, y, w)
    many = LogisticRegression(COMPILED[optimizer](), **params)
    for start in range(0, len(frame), 7):
        rows = slice(start, start + 7)
        many.learn_many(frame.iloc[rows], pd.Series(ys[rows]), pd.Series(weights[rows]))
    assert model_state(many) == model_state(one_dense)

    sparse = LogisticRegression(COMPILED[optimizer](), **params)
    sparse.learn_many(scipy.sparse.csr_array(frame.to_numpy()), np.array(ys), np.array(weights))
    renamed = {f"c{j}": j for j in range(4)}
    one_sparse = LogisticRegression(COMPILED[optimizer](), **params)
    for x, y, w in zip(dense_rows, ys, weights, strict=True):
        one_sparse.learn_one({renamed[k]: v for k, v in x.items() if v != 0.0}, y, w)
    assert model_state(sparse) == model_state(one_sparse)


@pytest.mark.parametrize("optimizer", COMPILED)
def test_save_load_and_go_on_equals_one_uninterrupted_run(optimizer, tmp_path):
    params: dict[str, Any] = {"l1": 0.001, "l2": 0.01} if optimizer != "ftrl" else {"l2": 0.01}
    data, weights = fresh_data(2000, seed=31)
    whole = LogisticRegression(COMPILED[optimizer](), **params)
    for (x, y), w in zip(data, weights, strict=True):
        whole.learn_one(x, y, w)
    part = LogisticRegression(COMPILED[optimizer](), **params)
    for (x, y), w in zip(data[:900], weights[:900], strict=True):
        part.learn_one(x, y, w)
    part.save(tmp_path / "model.json")
    resumed = LogisticRegression.load(tmp_path / "model.json")
    from_parts = LogisticRegression.from_parts(*part.to_parts())
    assert repr(resumed) == repr(part) and type(resumed.optimizer) is type(part.optimizer)
    for model in (resumed, from_parts):
        for (x, y), w in zip(data[900:], weights[900:], strict=True):
            model.learn_one(x, y, w)
        assert model_state(model) == model_state(whole)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"optimizer": optim.Momentum()}, "keeps its state in itself, which has no file form"),
        ({"initializer": optim.initializers.Normal(seed=1)}, "its random state has no file form"),
        ({"optimizer": optim.SGD(optim.schedulers.Optimal(optim.losses.Log()))}, "only floats, Constant and"),
    ],
)
def test_a_model_whose_parts_have_no_file_form_says_so(params, problem, tmp_path):
    model = LogisticRegression(**params)
    model.learn_one({"a": 1.0}, True)
    with pytest.raises(TypeError, match=problem):
        model.save(tmp_path / "m.json")
    assert not list(tmp_path.iterdir())


def test_a_version_1_model_file_loads_as_sgd(tmp_path):
    import hashlib
    import json

    payload = {"params": {"lr": 0.05, "l2": 0.0, "intercept_init": 0.0, "intercept_lr": 0.01, "clip_gradient": 1e12},
               "n_steps": 2, "intercept": 0.25, "weights": [["a", 0.5], ["b", -1.5]]}  # fmt: skip
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    document = {"format": "stream_logreg.model", "format_version": 1, "payload": payload,
                "checksum": "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()}  # fmt: skip
    (tmp_path / "v1.json").write_text(json.dumps(document))
    model = LogisticRegression.load(tmp_path / "v1.json")
    assert type(model.optimizer) is optim.SGD and model.optimizer.learning_rate == 0.05
    assert model.weights == {"a": 0.5, "b": -1.5} and model.intercept == 0.25 and model.n_steps == 2


def elastic_net_reference(data, lr: float, l1: float, l2: float, intercept_lr: float) -> tuple[dict, float]:
    """Plain SGD with river's cumulative L1 after each step, written from Tsuruoka et al.
    (2009), "Stochastic gradient descent training for L1-regularized log-linear models":
    u grows by l1 * lr each step; each present weight is shrunk towards 0 by what it has not
    yet paid of u (q holds what it has paid), never across 0."""
    theta: dict[str, float] = {}
    q: dict[str, float] = {}
    b, u = 0.0, 0.0
    for x, y in data:
        z = sum(theta.get(k, 0.0) * v for k, v in x.items()) + b
        s = 1.0 if y else -1.0
        g = -s / (math.exp(s * z) + 1.0)
        b -= intercept_lr * g
        for k, v in x.items():
            w = theta.get(k, 0.0)
            theta[k] = w - lr * (g * v + l2 * w)
        u += l1 * lr
        for k in x:
            w = theta[k]
            if w > 0:
                theta[k] = max(0.0, w - (u + q.get(k, 0.0)))
            elif w < 0:
                theta[k] = min(0.0, w + (u - q.get(k, 0.0)))
            q[k] = q.get(k, 0.0) + theta[k] - w
    return theta, b


def test_elastic_net_equals_the_slow_reference():
    data = list(shifting_stream(3000, seed=40))
    model = LogisticRegression(optim.SGD(0.1), l1=0.001, l2=0.01, intercept_lr=0.05)
    for x, y in data:
        model.learn_one(x, y)
    theta, b = elastic_net_reference(data, lr=0.1, l1=0.001, l2=0.01, intercept_lr=0.05)
    assert max_abs_diff(model.weights, theta) <= 1e-12 and abs(model.intercept - b) <= 1e-12
    assert sum(weight == 0.0 for weight in model.weights.values()) > 0  # L1 zeroed some weights


def test_elastic_net_equals_scikit_learn_where_they_define_the_same_step():
    """scikit-learn's plain SGD (constant eta0, penalty='elasticnet', alpha * l1_ratio = l1,
    alpha * (1 - l1_ratio) = l2) takes the same steps on dense data, where every feature is
    present in every row (it shrinks all weights by L2, we those present)."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4000, 8))
    y = rng.random(4000) < 1.0 / (1.0 + np.exp(-X @ np.array([2.0, -1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 1.0])))
    alpha, l1_ratio, lr = 0.004, 0.25, 0.05
    sk = SGDClassifier(loss="log_loss", penalty="elasticnet", alpha=alpha, l1_ratio=l1_ratio, learning_rate="constant",
                       eta0=lr, shuffle=False, max_iter=1, tol=None)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    ours = LogisticRegression(optim.SGD(lr), l1=alpha * l1_ratio, l2=alpha * (1 - l1_ratio), intercept_lr=lr)
    ours.learn_many(pd.DataFrame(X), pd.Series(y))
    assert np.max(np.abs(np.array(list(ours.weights.values())) - sk.coef_[0])) <= 1e-9
    assert abs(ours.intercept - sk.intercept_[0]) <= 1e-9
    assert sum(weight == 0.0 for weight in ours.weights.values()) >= 2


@pytest.mark.parametrize("how", ["mutate", "assign"])
def test_a_changed_optimizer_or_penalty_starts_with_fresh_state_as_in_river(how):
    ours, theirs = LogisticRegression(optim.Adam(0.1)), linear_model.LogisticRegression(optim.Adam(0.1))
    for model in (ours, theirs):
        model.learn_one({"a": 1.0, "b": -2.0}, True)
        if how == "mutate":
            model.mutate({"optimizer": optim.AdaGrad(0.1), "l2": 0.1})
        else:
            model.optimizer, model.l2 = optim.AdaGrad(0.1), 0.1
        model.learn_one({"a": 0.5, "c": 1.0}, False)
    assert ours._state.slots.shape[0] == 1  # AdaGrad's g2, where Adam kept m and v
    assert_rivers(ours, theirs, tol=0.0)
