"""learn_many / predict_*_many agree with their one-at-a-time counterparts."""

import itertools
import random

import numpy as np
import pandas as pd
import pytest
from river import datasets, optim

from stream_logreg import LogisticRegression


def test_learn_many_equals_looping_learn_one_bit_for_bit():
    data = list(itertools.islice(datasets.Phishing(), 1000))
    X = pd.DataFrame([x for x, _ in data])
    y = pd.Series([y for _, y in data])
    w = pd.Series(np.random.default_rng(0).uniform(0, 2, len(data)))
    one, many = LogisticRegression(optim.SGD(0.1), l2=0.01), LogisticRegression(optim.SGD(0.1), l2=0.01)
    for (x, label), weight in zip(data, w, strict=True):
        one.learn_one(x, label, weight)
    for start in range(0, len(data), 128):
        rows = slice(start, start + 128)
        many.learn_many(X[rows], y[rows], w[rows])
    assert many.weights == one.weights and many.intercept == one.intercept


def test_predict_many_agrees_with_predict_one():
    rng = random.Random(1)
    model = LogisticRegression(optim.SGD(0.3))
    rows: list[dict] = [{"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)} for _ in range(200)]
    for x in rows:
        model.learn_one(x, x["a"] + 0.3 * x["b"] > 0)
    X = pd.DataFrame(rows, index=range(100, 300))
    proba = model.predict_proba_many(X)
    assert list(proba.columns) == [False, True] and list(proba.index) == list(X.index)
    for i, x in enumerate(rows):
        one = model.predict_proba_one(x)
        assert proba.iloc[i][True] == pytest.approx(one[True], abs=1e-15)
        assert proba.iloc[i][False] == pytest.approx(one[False], abs=1e-15)
    assert model.predict_many(X).tolist() == [model.predict_one(x) for x in rows]
