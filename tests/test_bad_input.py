"""Bad input raises a clear error and leaves the model exactly as it was."""

import math

import numpy as np
import pandas as pd
import pytest
from river import datasets, optim

from stream_logreg import LogisticRegression


def trained(optimizer: str = "sgd") -> LogisticRegression:
    """A model after 100 Phishing steps: SGD with l2 (compiled), or AdaGrad with the Hinge
    loss (the exact path, its g2 in the model's slots)."""
    if optimizer == "sgd":
        model = LogisticRegression(optim.SGD(0.1), l2=0.01)
    else:
        model = LogisticRegression(optim.AdaGrad(0.1), loss=optim.losses.Hinge())
    for x, y in datasets.Phishing().take(100):
        model.learn_one(x, y)
    return model


def state(model: LogisticRegression):
    return model.weights, model.intercept, model.n_steps


GOOD_X = {"empty_server_form_handler": 0.5, "popup_window": 1.0, "brand_new": 2.0}


@pytest.mark.parametrize("label", [2, -1, "yes", None, math.nan, 0.5, "1", np.int64(3)])
def test_invalid_label_raises_and_changes_nothing(label):
    model = trained()
    before = state(model)
    with pytest.raises(ValueError, match=r"label y=.*" + repr(label).replace("(", r"\(").replace(")", r"\)")):
        model.learn_one(GOOD_X, label)
    assert state(model) == before


@pytest.mark.parametrize("label", [True, False, 0, 1, 0.0, 1.0, np.bool_(True), np.float64(1.0), np.int64(0)])
def test_valid_labels_are_accepted(label):
    model = LogisticRegression()
    model.learn_one({"a": 1.0}, label)
    reference = LogisticRegression()
    reference.learn_one({"a": 1.0}, bool(label))
    assert state(model) == state(reference)


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("abc", TypeError, "not a real number"),
        (None, TypeError, "not a real number"),
        ([1.0], TypeError, "not a real number"),
        (1 + 2j, TypeError, "not a real number"),
        (math.nan, ValueError, "not finite"),
        (math.inf, ValueError, "not finite"),
        (-math.inf, ValueError, "not finite"),
        (np.float64("nan"), ValueError, "not finite"),
    ],
)
def test_bad_feature_value_names_the_feature_and_changes_nothing(value, error, words):
    model = trained()
    before = state(model)
    # The bad feature comes last, after good and brand-new features.
    x = {**GOOD_X, "the_bad_one": value}
    with pytest.raises(error, match=f"feature 'the_bad_one' has the value .*{words}"):
        model.learn_one(x, True)
    assert state(model) == before
    with pytest.raises(error, match="the_bad_one"):
        model.predict_proba_one(x)
    assert state(model) == before


@pytest.mark.parametrize("w", [-1.0, math.nan, math.inf, "2", None])
def test_bad_sample_weight_changes_nothing(w):
    model = trained()
    before = state(model)
    with pytest.raises(ValueError, match="sample weight w="):
        model.learn_one(GOOD_X, True, w)
    assert state(model) == before


def test_overflowing_margin_is_refused():
    model = LogisticRegression(optim.SGD(1.0))
    for _ in range(20):
        model.learn_one({"a": 1.0}, True)
    assert model.weights["a"] > 2.0
    before = state(model)
    with pytest.raises(ValueError, match="margin theta"):
        model.learn_one({"a": 1e308}, True)
    assert state(model) == before


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"optimizer": optim.SGD(0.0)}, ValueError, r"the optimizer's lr must be > 0.0, got 0.0"),
        ({"optimizer": optim.Adam(-1.0)}, ValueError, r"the optimizer's lr must be > 0.0, got -1.0"),
        (
            {"optimizer": optim.SGD("0.1")},  # type: ignore[arg-type]
            TypeError,
            r"the optimizer's lr must be a float or a river.optim.schedulers scheduler, got '0.1'",
        ),
        ({"optimizer": optim.AdaGrad(math.nan)}, ValueError, r"the optimizer's lr must be finite, got nan"),
        ({"optimizer": "sgd"}, TypeError, r"optimizer must be None or an instance of Optimizer from river.optim"),
        ({"loss": optim.losses.Squared()}, TypeError, r"loss must be None or an instance of BinaryLoss"),
        ({"l1": -0.1}, ValueError, r"l1 must be >= 0.0, got -0.1"),
        (
            {"optimizer": optim.FTRLProximal(), "l1": 0.1},
            ValueError,
            r"l1=0.1 with FTRLProximal: .* pass the penalty to the optimizer instead, FTRLProximal\(l1=...\)",
        ),
        ({"l2": -0.1}, ValueError, r"l2 must be >= 0.0, got -0.1"),
        ({"l2": None}, TypeError, r"l2 must be a real number, got None"),
        ({"intercept_lr": -0.01}, ValueError, r"intercept_lr must be >= 0.0, got -0.01"),
        ({"clip_gradient": 0.0}, ValueError, r"clip_gradient must be > 0.0, got 0.0"),
        ({"clip_gradient": True}, TypeError, r"clip_gradient must be a real number, got True"),
        ({"intercept_init": math.inf}, ValueError, r"intercept_init must be finite, got inf"),
    ],
)
def test_invalid_parameters_are_refused_at_construction(params, error, message):
    with pytest.raises(error, match=message):
        LogisticRegression(**params)


def test_learn_many_with_one_bad_row_changes_nothing():
    model = trained()
    before = state(model)
    X = pd.DataFrame({"popup_window": [0.1, 0.2, np.nan, 0.4], "brand_new": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="feature 'popup_window' has the value nan in row 2"):
        model.learn_many(X, pd.Series([True, False, True, False]))
    assert state(model) == before
    with pytest.raises(ValueError, match="label y=2"):
        model.learn_many(X.fillna(0.0), pd.Series([True, False, 2, False]))
    assert state(model) == before
    with pytest.raises(TypeError, match="feature 'text' has dtype"):
        model.learn_many(X.assign(text=["a", "b", "c", "d"]).fillna(0.0), pd.Series([True] * 4))
    assert state(model) == before


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_learn_many_names_a_late_non_finite_value_by_its_row_label_and_changes_nothing(bad):
    # The kernel finds the value after learning 900 rows; all of them are undone.
    model = trained()
    before = state(model)
    values = np.random.default_rng(0).normal(size=(1000, 3))
    values[900, 1] = bad
    X = pd.DataFrame(values, columns=["popup_window", "new_a", "new_b"], index=[f"r{i}" for i in range(1000)])
    with pytest.raises(ValueError, match=f"feature 'new_a' has the value {bad!r} in row 'r900', which is not finite"):
        model.learn_many(X, pd.Series([True, False] * 500))
    assert state(model) == before


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad_hinge"])
def test_a_model_loaded_read_only_predicts_and_copies_its_weights_on_the_first_step(tmp_path, optimizer):
    """scikit-learn's estimator checks load models with joblib's mmap_mode="r"."""
    import joblib
    import scipy.sparse

    path = tmp_path / "model.joblib"
    joblib.dump(trained(optimizer), path)
    reference = trained(optimizer)
    x = {**GOOD_X, "new_feature": 1.0}
    read_only = joblib.load(path, mmap_mode="r")
    assert read_only.predict_proba_one(x) == reference.predict_proba_one(x)
    learners = {
        "learn_one": lambda m: m.learn_one(x, True),
        "learn_batch": lambda m: m.learn_batch([x, GOOD_X], [True, False]),
        "learn_many": lambda m: m.learn_many(pd.DataFrame([x, x]), pd.Series([True, False])),
        "learn_many (CSR)": lambda m: m.learn_many(scipy.sparse.csr_matrix(np.eye(2)), pd.Series([True, False])),
    }
    for name, learn in learners.items():
        read_only, reference = joblib.load(path, mmap_mode="r"), trained(optimizer)
        learn(read_only)
        learn(reference)
        assert state(read_only) == state(reference), name
    assert joblib.load(path, mmap_mode="r").weights == trained(optimizer).weights  # file untouched


def test_complex_values_are_refused_by_every_input_form():
    import scipy.sparse

    model = trained()
    before = state(model)
    with pytest.raises(TypeError, match=r"feature 'a' has the value \(1\+2j\) of type complex"):
        model.learn_one({"a": 1 + 2j}, True)
    with pytest.raises(TypeError, match="feature 'a' has dtype complex128, which is not real"):
        model.learn_many(pd.DataFrame({"a": np.array([1 + 2j, 1.0])}), pd.Series([True, False]))
    with pytest.raises(TypeError, match="X has dtype complex128, which is not real"):
        model.learn_many(scipy.sparse.csr_matrix(np.array([[1 + 2j]])), pd.Series([True]))
    assert state(model) == before
