"""After one pass, our weights equal river's LogisticRegression with optim.SGD."""

import itertools
import random
from typing import Any

import pytest
from river import datasets, evaluate, linear_model, metrics, optim, preprocessing

from stream_logreg import LogisticRegression

from reference import exact_gradient, max_abs_diff, reference_fit, river_gradient, shifting_stream

STREAMS = {
    "phishing": lambda: list(datasets.Phishing()),
    "bananas": lambda: list(datasets.Bananas()),
    "shifting": lambda: list(shifting_stream(5000, seed=7)),
}

CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "lr0.1_l2": {"optimizer": lambda: optim.SGD(0.1), "l2": 0.01},
    "intercept_lr0": {"intercept_lr": 0.0},
    "inverse_scaling": {
        "optimizer": lambda: optim.SGD(optim.schedulers.InverseScaling(0.5, power=0.5)),
        "intercept_lr": optim.schedulers.InverseScaling(0.5, power=0.5),
    },
    "sample_weights": {"optimizer": lambda: optim.SGD(0.05)},
    "small_clip": {"optimizer": lambda: optim.SGD(0.1), "clip_gradient": 0.05},
}


def fresh(params: dict) -> dict:
    """The parameters, with a new optimizer object for each model (river's models step theirs)."""
    return {name: value() if callable(value) else value for name, value in params.items()}


def river_model(params: dict) -> linear_model.LogisticRegression:
    return linear_model.LogisticRegression(**fresh(params))


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("stream", STREAMS)
def test_one_pass_equals_river(stream, config):
    params = CONFIGS[config]
    ours, theirs = LogisticRegression(**fresh(params)), river_model(params)
    rng = random.Random(3)
    for x, y in STREAMS[stream]():
        w = rng.uniform(0.0, 3.0) if config == "sample_weights" else 1.0
        ours.learn_one(x, y, w)
        theirs.learn_one(x, y, w)
    assert max_abs_diff(ours.weights, theirs.weights) <= 1e-9
    assert abs(ours.intercept - theirs.intercept) <= 1e-9
    assert ours.n_steps == theirs.optimizer.n_iterations


@pytest.mark.parametrize("intercept_lr", [0.1, 0.01])
def test_pipeline_in_progressive_validation_matches_river(intercept_lr):
    def score(classifier):
        metric = metrics.base.Metrics([metrics.Accuracy(), metrics.LogLoss(), metrics.ROCAUC()])
        model = preprocessing.StandardScaler() | classifier
        evaluate.progressive_val_score(datasets.Phishing(), model, metric)
        return [m.get() for m in metric]

    ours = score(LogisticRegression(optim.SGD(0.1), intercept_lr=intercept_lr))
    theirs = score(linear_model.LogisticRegression(optim.SGD(0.1), intercept_lr=intercept_lr))
    assert ours == theirs
    if intercept_lr == 0.01:
        assert round(ours[0], 4) == 0.8896  # the figure in river's LogisticRegression docstring


def test_shuttle_huge_margins_differ_only_by_rivers_tail_cut():
    """Unscaled Shuttle drives |z| far past 18, where river cuts the sigmoid's tails.

    We use the exact gradient; river replaces it by exp(-|z|) or 0 beyond |z| > 18. The
    measured difference after one pass is ~2.1e-3 on weights of size ~40 (~5e-5 relative).
    A slow reference with each gradient reproduces each model, so that cut is the only cause.
    """
    data = list(datasets.Shuttle())
    ours, theirs = LogisticRegression(), river_model({})
    for x, y in data:
        ours.learn_one(x, y)
        theirs.learn_one(x, y)
    assert max_abs_diff(ours.weights, theirs.weights) < 5e-3
    assert abs(ours.intercept - theirs.intercept) < 1e-4
    exact, exact_b, _ = reference_fit(data, gradient=exact_gradient)
    cut, cut_b, _ = reference_fit(data, gradient=river_gradient)
    assert max_abs_diff(ours.weights, exact) <= 1e-9 and abs(ours.intercept - exact_b) <= 1e-9
    assert max_abs_diff(theirs.weights, cut) <= 1e-9 and abs(theirs.intercept - cut_b) <= 1e-9


def test_reference_agrees_on_ordinary_data():
    data = list(itertools.islice(datasets.Phishing(), 500))
    model = LogisticRegression(optim.SGD(0.1), l2=0.01)
    for x, y in data:
        model.learn_one(x, y)
    theta, b, _ = reference_fit(data, lr=0.1, l2=0.01)
    assert max_abs_diff(model.weights, theta) <= 1e-12 and abs(model.intercept - b) <= 1e-12
