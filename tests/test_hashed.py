"""The hashed model (``LogisticRegression(n_features=n)``): its weights and optimizer state
are arrays of n entries from the start and feature j is column j. It must learn exactly what
a model of named features learns on the same buckets, keep its memory whatever the stream's
cardinality, save only what is not zero, and refuse what is not a bucket."""

import base64
import json
import math
import random
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from river import optim
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from consumers.group_sync import GroupSync
from stream_logreg import Features, LogisticRegression
from stream_logreg.exceptions import MarginError

from reference import assert_same_model

N = 2**10
OPTIMIZERS: dict[str, Callable[[], dict[str, Any]]] = {
    "sgd": lambda: {"optimizer": optim.SGD(0.1)},
    "sgd-l1-l2": lambda: {"optimizer": optim.SGD(0.1), "l1": 0.001, "l2": 0.01},
    "adagrad": lambda: {"optimizer": optim.AdaGrad(0.1)},
    "rmsprop": lambda: {"optimizer": optim.RMSProp(0.05)},
    "adam": lambda: {"optimizer": optim.Adam(0.05)},
    "ftrl": lambda: {"optimizer": optim.FTRLProximal(alpha=0.1, l1=0.5)},
    "momentum (exact path)": lambda: {"optimizer": optim.Momentum(0.05)},
}


def buckets(seed: int, n: int, width: int = N) -> list[tuple[dict, bool]]:
    """Examples of 1 to 8 hashed features (ints below width), features coming and going."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {rng.randrange(width): rng.gauss(0, 1.5) for _ in range(rng.randint(1, 8))}
        out.append((x, rng.random() < 1 / (1 + math.exp(-sum(x.values()) / 3))))
    return out


def as_named(hashed: LogisticRegression, named: LogisticRegression) -> None:
    """Assert the hashed model holds, bucket by bucket, what the named model holds."""
    state, space = hashed._state, hashed._space
    coef, slots = np.zeros(len(space)), np.zeros((len(state.slots), len(space)))
    for column, name in enumerate(named._space.names()):
        assert type(name) is int
        coef[name], slots[:, name] = named._state.coef[column], named._state.slots[:, column]
    assert np.array_equal(state.coef, coef) and np.array_equal(state.slots, slots)
    assert (hashed.intercept, hashed.n_steps, state.l1_total) == (named.intercept, named.n_steps, named._state.l1_total)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_a_hashed_model_learns_what_a_model_of_named_buckets_learns_bit_for_bit(kind):
    data = buckets(1, 3000)
    xs, ys = [x for x, _ in data], [y for _, y in data]
    named = LogisticRegression(**OPTIMIZERS[kind]())
    one, batch = (LogisticRegression(**OPTIMIZERS[kind](), n_features=N) for _ in range(2))
    for x, y in data:
        named.learn_one(x, y)
        one.learn_one(x, y)
    for start in range(0, len(data), 700):
        batch.learn_batch(xs[start : start + 700], ys[start : start + 700])
    as_named(one, named)
    assert_same_model(batch, one)
    assert one._state.coef.shape == (N,) and type(one._space.index) is int
    assert one.weights == {k: v for k, v in named.weights.items() if v != 0.0}
    x = xs[0]
    assert one.predict_proba_one(x) == named.predict_proba_one(x)


@pytest.mark.parametrize("kind", ["sgd", "adagrad", "ftrl", "momentum (exact path)"])
def test_learn_many_on_a_csr_matrix_whose_column_j_is_bucket_j_equals_learn_one(kind):
    data = buckets(2, 2000)
    rows, cols, values = zip(*[(i, j, v) for i, (x, _) in enumerate(data) for j, v in x.items()], strict=True)
    X = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(data), N))
    X.sort_indices()
    y = pd.Series([label for _, label in data])
    many, one = (LogisticRegression(**OPTIMIZERS[kind](), n_features=N) for _ in range(2))
    many.learn_many(X, y)
    for i in range(len(data)):  # the CSR's order of a row's entries: by column
        row = X.getrow(i)
        one.learn_one(dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)), bool(y[i]))
    assert_same_model(many, one)


def test_hashed_learn_many_equals_scikit_learns_sgd_classifier_on_the_same_csr():
    rng = np.random.default_rng(3)
    rows, width, nnz = 20_000, 2**12, 10
    indices = np.concatenate([np.sort(rng.choice(width, size=nnz, replace=False)) for _ in range(rows)])
    X = scipy.sparse.csr_matrix((rng.normal(size=rows * nnz), indices, np.arange(0, rows * nnz + 1, nnz)),
                                shape=(rows, width))  # fmt: skip
    y = rng.random(rows) < 0.5
    # scikit-learn damps the intercept's step by 0.01 on sparse input (SPARSE_INTERCEPT_DECAY).
    ours = LogisticRegression(optim.SGD(0.01), intercept_lr=0.01 * 0.01, n_features=width)
    ours.learn_many(X, y)
    sk = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0, penalty=None, shuffle=False,
                       max_iter=1, tol=None)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    assert np.abs(sk.coef_[0] - ours._state.coef).max() <= 1e-9
    assert abs(sk.intercept_[0] - ours.intercept) <= 1e-9


def test_memory_is_fixed_whatever_the_streams_cardinality():
    features = Features("clicked", categorical=["user_id"], hash_bits=10)
    model = LogisticRegression(optim.AdaGrad(0.1), n_features=2**10)
    coef, slots = model._state.coef, model._state.slots
    rng = random.Random(4)
    records = [{"user_id": f"u{i}", "price": rng.random(), "clicked": rng.random() < 0.3} for i in range(30_000)]
    for start in range(0, len(records), 1000):
        xs, ys = zip(*(features.decode(r) for r in records[start : start + 1000]), strict=True)
        model.learn_batch(list(xs), list(ys))
    assert model._state.coef is coef and model._state.slots is slots  # never grown nor copied
    assert coef.shape == (2**10,) and slots.shape == (1, 2**10) and model._space.index == 2**10
    assert model.n_steps == 30_000 and 900 < len(model.weights) <= 2**10  # 30,000 ids in 1,024 buckets


def test_a_saved_hashed_model_keeps_only_what_is_not_zero_and_loads_bit_for_bit(tmp_path):
    # FTRL with a strong l1: most weights are 0 while their z and n are not.
    model = LogisticRegression(optim.FTRLProximal(alpha=0.1, l1=2.0), n_features=2**16)
    data = buckets(5, 1500, width=2**16)
    for x, y in data[:1000]:
        model.learn_one(x, y)
    stored = np.count_nonzero((model._state.coef != 0) | (model._state.slots != 0).any(axis=0))
    assert len(model.weights) < stored < 2**16
    path = tmp_path / "m.json"
    model.save(path)
    assert len(base64.b64decode(model.to_payload()["buckets"])) == 4 * stored  # one int32 per bucket kept
    loaded, from_parts = LogisticRegression.load(path), LogisticRegression.from_parts(*model.to_parts())
    assert_same_model(loaded, model)
    assert_same_model(from_parts, model)
    assert loaded.n_features == 2**16
    for x, y in data[1000:]:
        for m in (model, loaded, from_parts):
            m.learn_one(x, y)
    assert_same_model(loaded, model)
    assert_same_model(from_parts, model)


def test_what_is_not_a_bucket_is_refused_naming_it_and_changes_nothing():
    model = LogisticRegression(n_features=16)
    model.learn_one({3: 1.0}, True)
    before = LogisticRegression.from_parts(*model.to_parts())
    refused: list[tuple[dict, str]] = [({"country=DE": 1.0}, "'country=DE'"), ({16: 1.0}, "16"), ({-1: 1.0}, "-1"),
                                       ({True: 1.0}, "True"), ({np.int64(3): 1.0}, r"np.int64\(3\)")]  # fmt: skip
    for x, bad in refused:
        with pytest.raises(ValueError, match=rf"feature {bad} is not a bucket of this hashed model.*FeatureHasher"):
            model.learn_one(x, True)
        with pytest.raises(ValueError, match=rf"feature {bad} is not a bucket"):
            model.learn_batch([{1: 1.0}, x], [True, False])
        with pytest.raises(ValueError, match=rf"feature {bad} is not a bucket"):
            model.predict_proba_one(x)
    with pytest.raises(ValueError, match="X has 17 columns, more than this hashed model's n_features=16"):
        model.learn_many(scipy.sparse.csr_matrix(np.ones((2, 17))), [True, False])
    for bad_n in (0, 2.0, True, 2**31 + 1, "1024"):
        with pytest.raises(ValueError, match=r"n_features=.* is not an int in \[1, 2\*\*31\]"):
            LogisticRegression(n_features=bad_n)  # type: ignore[arg-type]
    assert_same_model(model, before)


def test_a_row_that_overflows_or_holds_nan_in_a_csr_batch_changes_nothing_and_is_named():
    model = LogisticRegression(optim.AdaGrad(0.1), n_features=64)
    model.learn_many(scipy.sparse.csr_matrix(np.eye(64)), [True, False] * 32)
    before = LogisticRegression.from_parts(*model.to_parts())
    dense = np.random.default_rng(6).normal(size=(100, 64))  # 6,400 entries >= 64: every column is saved
    dense[70] = np.copysign(1e308, model._state.coef)  # theta^T x overflows
    with pytest.raises(MarginError):
        model.learn_many(scipy.sparse.csr_matrix(dense), [True] * 100)
    dense[70, 5] = math.nan
    with pytest.raises(ValueError, match=r"feature 5 has the value nan in row 70, which is not finite"):
        model.learn_many(scipy.sparse.csr_matrix(dense), [True] * 100)
    assert_same_model(model, before)


def test_hashed_instances_exchange_only_the_buckets_they_changed_and_end_with_one_model():
    models = [LogisticRegression(optim.AdaGrad(0.1), n_features=2**14) for _ in range(2)]
    syncs = [GroupSync(model, f"i{k}", {}) for k, model in enumerate(models)]
    streams = [buckets(7 + k, 300, width=2**14) for k in range(2)]
    for model, data in zip(models, streams, strict=True):
        for x, y in data:
            model.learn_one(x, y)
    changes = [change for sync in syncs if (change := sync.take()) is not None]
    assert len(changes) == 2 and all(0 < len(change.names) < 2**11 for change in changes)
    syncs[0].fold(changes[1])
    syncs[1].fold(changes[0])
    summed = np.zeros((2, 2**14))
    for change in changes:
        summed[:, np.array(change.names, dtype=np.int64)] += change.values
    for model in models:
        assert np.abs(model._state.coef - summed[0]).max() <= 1e-12
        assert np.abs(model._state.slots[0] - summed[1]).max() <= 1e-12
        assert model.n_steps == 600


def test_inspect_names_a_hashed_models_buckets_by_the_scalers_names_and_a_files_records(tmp_path, capsys):
    from river.preprocessing import FeatureHasher

    from consumers.checkpoints import CheckpointStore
    from stream_logreg.cli import main
    from stream_logreg.evaluate import ProgressiveMetrics
    from stream_logreg.scaling import Scaler

    rng = random.Random(9)
    records = [{"country": rng.choice(["DE", "FR", "US"]), "device": {"os": rng.choice(["ios", "android"])},
                "price": rng.uniform(1, 500), "clicked": rng.random() < 0.3} for _ in range(400)]  # fmt: skip
    features = Features("clicked", categorical="auto", hash_bits=12, hash_seed=2)
    model, scaler = LogisticRegression(optim.AdaGrad(0.1), n_features=2**12), Scaler()
    for record in records:
        x, y, numeric = features.named(record)
        _, after, _ = scaler.step(x, numeric)
        model.learn_one(features.hash(after), y)
    counters = {"consumed": 400, "learned": 400, "dead_lettered": 0, "by_partition": {}}
    progress = {"instance": "i", "topic": "t", "offsets": {}, "metrics": ProgressiveMetrics().to_state(),
                "counters": counters, "features": {"settings": {**features.settings(), "scale": "all"},
                                                   "scaler": scaler.to_state()}}  # fmt: skip
    CheckpointStore(tmp_path / "c").write(model, progress)
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"country": {"a": {"b": {"c": {}}}}}\n')
    river_hasher = FeatureHasher(n_features=2**12, seed=2)  # the reference for which bucket a name falls in
    names = ["price", "country=DE", "country=FR", "country=US", "device.os=ios", "device.os=android"]
    where = {name: next(iter(river_hasher.transform_one({name.split("=")[0]: name.split("=")[1]} if "=" in name
                                                        else {name: 1.0}))) for name in names}  # fmt: skip

    def shown() -> dict[int, str]:
        assert main(["inspect", str(tmp_path / "c"), "--top", "20", *flags]) == 0
        lines = [line.split(None, 3) for line in capsys.readouterr().out.splitlines() if "  bucket " in line]
        assert len(lines) == len(model.weights) == 6  # six features and nothing else
        return {int(bucket): label for _, _, bucket, label in lines}

    flags: list[str] = []
    assert shown() == {bucket: "price" if bucket == where["price"] else "?" for bucket in model.weights}
    flags = ["--names-from", str(path)]  # the last line is too deep: it names nothing
    assert shown() == {bucket: name for name, bucket in where.items()}
    flags = ["--names-from", str(tmp_path / "missing.csv")]
    assert main(["inspect", str(tmp_path / "c"), *flags]) == 2
    assert "--names-from" in capsys.readouterr().err


def test_a_constant_initializer_starts_every_bucket_and_a_random_one_is_refused(tmp_path):
    data = buckets(10, 500)
    named = LogisticRegression(optim.SGD(0.1), initializer=optim.initializers.Constant(0.3))
    hashed = LogisticRegression(optim.SGD(0.1), initializer=optim.initializers.Constant(0.3), n_features=N)
    for x, y in data:
        named.learn_one(x, y)
        hashed.learn_one(x, y)
    seen = [int(k) for k in named._space.names()]  # type: ignore[call-overload]
    assert hashed._state.coef[seen].tolist() == named._state.coef[: len(seen)].tolist()
    assert all(hashed._state.coef[k] == 0.3 for k in set(range(N)) - set(seen))  # never seen: the constant
    hashed.save(tmp_path / "m.json")
    assert_same_model(LogisticRegression.load(tmp_path / "m.json"), hashed)
    with pytest.raises(ValueError, match="only Zeros and Constant initializers apply"):
        LogisticRegression(initializer=optim.initializers.Normal(seed=1), n_features=N)
