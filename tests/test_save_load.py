"""save/load: exact round trip, atomic writes, and one clear error per kind of bad file."""

import json
import os

import pytest
from river import datasets, optim

from stream_logreg import LogisticRegression, ModelFileError


@pytest.fixture
def model() -> LogisticRegression:
    model = LogisticRegression(optim.SGD(optim.schedulers.InverseScaling(0.3, 0.4)), l2=1e-3, intercept_lr=0.02)
    for x, y in datasets.Phishing().take(300):
        model.learn_one(x, y)
    model.learn_one({7: 0.25, 'odd name \u00e9"': -1e-300}, True)  # int and unusual names
    return model


def test_round_trip_is_bit_exact_and_keeps_learning_identically(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    loaded = LogisticRegression.load(path)
    assert loaded.weights == model.weights  # == on floats: bit for bit
    assert list(loaded.weights) == list(model.weights)
    assert loaded.intercept == model.intercept and loaded.n_steps == model.n_steps
    assert loaded._get_params()["l2"] == model.l2
    for x, y in list(datasets.Phishing())[300:600]:
        model.learn_one(x, y)
        loaded.learn_one(x, y)
    assert loaded.weights == model.weights and loaded.intercept == model.intercept
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temporary left behind


def test_saving_over_an_existing_file_replaces_it(model, tmp_path):
    path = tmp_path / "model.json"
    LogisticRegression().save(path)
    model.save(path)
    assert LogisticRegression.load(path).weights == model.weights


def corrupt(path, how):
    text = path.read_text()
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "empty":
        path.write_text("")
    elif how == "checksum":
        document = json.loads(text)
        document["payload"]["intercept"] += 1e-12
        path.write_text(json.dumps(document))
    elif how == "version":
        document = json.loads(text)
        document["format_version"] = 99
        path.write_text(json.dumps(document))
    elif how == "not_a_model":
        path.write_text('{"name": "something else"}')
    elif how == "csv":
        path.write_text("a,b,c\n1,2,3\n")
    elif how == "missing":
        os.unlink(path)


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("truncated", "truncated or is not JSON"),
        ("empty", "truncated or is not JSON"),
        ("csv", "truncated or is not JSON"),
        ("checksum", "checksum does not match"),
        ("version", "unknown format version 99"),
        ("not_a_model", "is not a stream_logreg.model file"),
        ("missing", "cannot be read"),
    ],
)
def test_each_bad_file_raises_one_clear_error(model, tmp_path, how, problem):
    path = tmp_path / "model.json"
    model.save(path)
    corrupt(path, how)
    with pytest.raises(ModelFileError, match=f"cannot load {path}: .*{problem}") as error:
        LogisticRegression.load(path)
    assert error.value.path == str(path)


def test_a_model_with_an_unsaveable_schedule_says_so(tmp_path):
    model = LogisticRegression(optim.SGD(optim.schedulers.Optimal(optim.losses.Log())))
    with pytest.raises(TypeError, match="cannot be saved"):
        model.save(tmp_path / "m.json")
    assert not list(tmp_path.iterdir())


def resigned(path, change) -> None:
    """Change the payload with ``change`` and write it back with a valid checksum."""
    import hashlib

    document = json.loads(path.read_text())
    change(document["payload"])
    canonical = json.dumps(document["payload"], sort_keys=True, separators=(",", ":"))
    document["checksum"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("optimizer.lr", {"scheduler": "constant", "learning_rate": -0.5},
         "the optimizer's lr's learning_rate must be > 0.0, got -0.5"),
        ("optimizer.lr", {"scheduler": "constant", "learning_rate": "abc"},
         "the optimizer's lr's learning_rate must be a real number"),
        ("optimizer.lr", {"scheduler": "inverse_scaling", "learning_rate": 0.1, "power": -1},
         "the optimizer's lr's power must be >= 0.0"),
        ("intercept_lr", {"scheduler": "constant", "learning_rate": -1.0}, "must be >= 0.0, got -1.0"),
        ("optimizer.lr", -0.5, "the optimizer's lr must be > 0.0, got -0.5"),
        ("optimizer.name", "Pickle", "unknown optimizer 'Pickle'"),
        ("optimizer.name", "Scheduler", "unknown optimizer 'Scheduler'"),
        ("loss.name", "Squared", "unknown loss 'Squared'"),
        ("loss.weight_pos", "1", "loss's weight_pos must be a real number"),
        ("optimizer", "SGD", "optimizer must be a name and parameters"),
        ("l1", -1.0, "l1 must be >= 0.0"),
        ("n_steps", 10**400, r"n_steps must be an int in \[0, 2\*\*63\)"),
        ("n_steps", -1, r"n_steps must be an int in \[0, 2\*\*63\)"),
    ],
)  # fmt: skip
def test_a_model_file_with_a_bad_value_under_a_valid_checksum_is_refused(model, tmp_path, field, value, problem):
    path = tmp_path / "model.json"
    model.save(path)

    def change(payload: dict) -> None:
        where = payload if field == "n_steps" else payload["params"]
        *parents, name = field.split(".")
        for parent in parents:
            where = where[parent]
        where[name] = value

    resigned(path, change)
    with pytest.raises(ModelFileError, match=problem):
        LogisticRegression.load(path)


def test_the_step_count_stays_exact_past_2_to_the_53(tmp_path):
    import pandas as pd

    model = LogisticRegression()
    path = tmp_path / "model.json"
    model.save(path)
    resigned(path, lambda payload: payload.update(n_steps=2**53 + 1))
    model = LogisticRegression.load(path)
    model.learn_batch([{"a": 1.0}], [True])
    model.learn_many(pd.DataFrame({"a": [1.0, 2.0]}), pd.Series([True, False]))
    assert model.n_steps == 2**53 + 4
