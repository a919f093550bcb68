"""learn_many, predict_proba_many and predict_many take every data frame river's
LogisticRegression takes (pandas with NumPy, nullable or pyarrow dtypes, polars, pyarrow
tables) and give the model of learn_one, and river's outputs, of the same kind."""

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from river import datasets, linear_model, optim

from stream_logreg import LogisticRegression

DATA = list(datasets.Phishing())
FRAME = pd.DataFrame([x for x, _ in DATA], index=pd.RangeIndex(100, 100 + len(DATA)))
LABELS = pd.Series([y for _, y in DATA], name="is_phishing", index=FRAME.index)
WEIGHTS = np.random.default_rng(2).uniform(0.0, 2.0, len(DATA))

BACKENDS = {
    "pandas": lambda: (FRAME, LABELS, pd.Series(WEIGHTS, index=FRAME.index)),
    "pandas_nullable": lambda: (FRAME.convert_dtypes(), LABELS.astype("boolean"), pd.Series(WEIGHTS).astype("Float64")),
    "pandas_pyarrow": lambda: (FRAME.convert_dtypes(dtype_backend="pyarrow"), LABELS, WEIGHTS),
    "polars": lambda: (pl.from_pandas(FRAME), pl.Series("is_phishing", LABELS.tolist()), pl.Series(WEIGHTS)),
    "pyarrow": lambda: (pa.Table.from_pandas(FRAME, preserve_index=False), pa.chunked_array([LABELS.tolist()]),
                        pa.chunked_array([WEIGHTS])),
}  # fmt: skip


def learn_one_model() -> LogisticRegression:
    model = LogisticRegression(optim.Adam(0.05), l2=0.001)
    for (x, y), w in zip(DATA, WEIGHTS.tolist(), strict=True):
        model.learn_one(x, y, w)
    return model


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_learns_the_model_of_learn_one_and_predicts_like_river(backend):
    X, y, w = BACKENDS[backend]()
    model = LogisticRegression(optim.Adam(0.05), l2=0.001)
    model.learn_many(X, y, w)
    one = learn_one_model()
    assert model.weights == one.weights and model.intercept == one.intercept

    theirs = linear_model.LogisticRegression(optim.Adam(0.05), l2=0.001)
    theirs.learn_many(X, y)  # river's mean-gradient step: only to give its predict_many a name
    theirs._weights = type(theirs._weights)(one.weights)
    theirs.intercept = one.intercept
    ours_p: Any = model.predict_proba_many(X)
    their_p: Any = theirs.predict_proba_many(X)
    assert type(ours_p) is type(their_p)
    names = (ours_p.column_names, their_p.column_names) if backend == "pyarrow" else (ours_p.columns, their_p.columns)
    assert list(names[0]) == list(names[1])
    values = [np.column_stack([np.asarray(frame[c]) for c in names[0]]) for frame in (ours_p, their_p)]
    assert np.max(np.abs(values[0] - values[1])) <= 1e-12
    if backend.startswith("pandas"):
        assert ours_p.index.equals(X.index)
    ours_y, their_y = model.predict_many(X), theirs.predict_many(X)
    assert type(ours_y) is type(their_y)
    assert np.array_equal(np.asarray(ours_y), np.asarray(their_y))
    assert getattr(ours_y, "name", None) == getattr(their_y, "name", None)


def test_a_missing_value_in_any_backend_is_named_and_changes_nothing():
    frame = pl.DataFrame({"a": [1.0, None, 3.0], "b": [1.0, 2.0, 3.0]})
    model = LogisticRegression()
    with pytest.raises(ValueError, match=r"feature 'a' has the value nan in row 1, which is not finite"):
        model.learn_many(frame, pl.Series([True, False, True]))
    assert model.weights == {} and model.n_steps == 0


def test_a_string_column_in_any_backend_is_refused_with_its_name():
    frame = pa.table({"a": [1.0, 2.0], "city": ["Oslo", "Lima"]})
    with pytest.raises(TypeError, match="feature 'city' has dtype String, which is not numeric"):
        LogisticRegression().learn_many(frame, [True, False])
