"""The single-sample gradient (g(theta^T x) - y) x_j checked numerically, and stable numerics."""

import math
import random
import warnings

import pytest
from river import optim

from stream_logreg import LogisticRegression
from stream_logreg._math import log_loss, log_loss_gradient, sigmoid


def naive_loss(theta: dict, b: float, x: dict, y: float) -> float:
    """The textbook per-example log loss, -[y log h + (1 - y) log(1 - h)]."""
    z = sum(theta[k] * x[k] for k in x) + b
    h = 1.0 / (1.0 + math.exp(-z))
    return -(y * math.log(h) + (1.0 - y) * math.log(1.0 - h))


def central_difference(f, at: float, h: float = 1e-6) -> float:
    return (f(at + h) - f(at - h)) / (2.0 * h)


@pytest.mark.parametrize("seed", range(20))
def test_analytic_gradient_matches_finite_differences(seed):
    rng = random.Random(seed)
    theta = {f"f{j}": rng.uniform(-1, 1) for j in range(5)}
    x = {f"f{j}": rng.uniform(-2, 2) for j in range(5)}
    b, y = rng.uniform(-1, 1), float(rng.random() < 0.5)
    z = sum(theta[k] * x[k] for k in x) + b
    for j in x:
        numeric = central_difference(lambda v, j=j: naive_loss({**theta, j: v}, b, x, y), theta[j])
        analytic = (sigmoid(z) - y) * x[j]
        assert abs(analytic - numeric) <= 1e-6 * max(abs(numeric), 1e-3)
    numeric_b = central_difference(lambda v: naive_loss(theta, v, x, y), b)
    assert abs(log_loss_gradient(z, y) - numeric_b) <= 1e-6 * max(abs(numeric_b), 1e-3)


@pytest.mark.parametrize("z", [-8.0, -1.5, -0.1, 0.0, 0.3, 2.0, 7.5])
def test_sigmoid_derivative_is_g_times_one_minus_g(z):
    numeric = central_difference(sigmoid, z)
    g = sigmoid(z)
    assert abs(g * (1.0 - g) - numeric) <= 1e-6 * numeric


@pytest.mark.parametrize("seed", range(5))
def test_learn_one_moves_weights_by_lr_times_the_gradient(seed):
    rng = random.Random(seed)
    model = LogisticRegression(optim.SGD(0.05), intercept_lr=0.05)
    for _ in range(50):
        model.learn_one({f"f{j}": rng.gauss(0, 1) for j in range(4)}, rng.random() < 0.5)
    theta, b = model.weights, model.intercept
    x = {f"f{j}": rng.gauss(0, 1) for j in range(4)}
    y = float(rng.random() < 0.5)
    model.learn_one(x, y)
    for j in x:
        numeric = central_difference(lambda v, j=j: naive_loss({**theta, j: v}, b, x, y), theta[j])
        step = (theta[j] - model.weights[j]) / 0.05
        assert abs(step - numeric) <= 1e-6 * max(abs(numeric), 1e-3)
    numeric_b = central_difference(lambda v: naive_loss(theta, v, x, y), b)
    assert abs((b - model.intercept) / 0.05 - numeric_b) <= 1e-6 * max(abs(numeric_b), 1e-3)


def test_log_loss_matches_the_textbook_form():
    for z in (-20.0, -3.0, 0.0, 0.7, 15.0):
        for y in (0.0, 1.0):
            # The textbook form loses digits to cancellation as |z| grows, hence rel=1e-9.
            assert log_loss(z, y) == pytest.approx(naive_loss({}, z, {}, y), rel=1e-9)


@pytest.mark.parametrize("margin", [1e6, -1e6, 745.0, -745.0, 710.0, -710.0, 1e3, -1e3])
@pytest.mark.parametrize("y", [False, True])
def test_huge_margins_give_no_warning_and_no_nan(margin, y):
    model = LogisticRegression(optim.SGD(1e-12), intercept_init=margin, intercept_lr=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = model.predict_proba_one({"a": 1.0})
        model.learn_one({"a": 1.0}, y)
        loss = log_loss(margin, float(y))
        grad = log_loss_gradient(margin, float(y))
    assert p[True] == (1.0 if margin > 0 else 0.0) or 0.0 < p[True] < 1e-300
    assert math.isfinite(model.weights["a"]) and math.isfinite(loss)
    assert loss == pytest.approx(max(-margin if y else margin, 0.0), abs=1e-300)
    assert grad == pytest.approx(sigmoid(margin) - float(y), abs=1e-300)
