"""save/load: exact round trip, atomic writes, and one clear error per kind of bad file."""

import base64
import hashlib
import json
import os

import numpy as np
import pytest
from river import datasets, optim

from stream_logreg import LogisticRegression, ModelFileError

from reference import assert_same_model


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


def nan_values(payload: dict) -> None:
    values = np.frombuffer(base64.b64decode(payload["values"]), "<f8").copy()
    values[0] = np.nan
    payload["values"] = base64.b64encode(values.tobytes()).decode()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p.update(values="not base64!"), "values is not base64"),
        (lambda p: p.update(values=p["values"][:-4]), "values holds .* bytes, not a whole number of <f8"),
        (lambda p: p.update(values=base64.b64encode(b"\0" * 8).decode()), "1 numbers for .* names"),
        (nan_values, "not a finite number"),
        (lambda p: p.update(slot_rows=["z", "n"]), r"state rows \['z', 'n'\] are not this optimizer's"),
        (lambda p: p.update(names=p["names"][:1] * len(p["names"])), "repeated"),
        (lambda p: p.update(buckets="AAAA"), "no n_features"),
    ],
)
def test_a_model_file_with_bad_arrays_under_a_valid_checksum_is_refused(model, tmp_path, change, problem):
    path = tmp_path / "model.json"
    model.save(path)
    resigned(path, change)
    with pytest.raises(ModelFileError, match=problem):
        LogisticRegression.load(path)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p.update(buckets=base64.b64encode(np.array([5, 5], "<i4").tobytes()).decode()), "repeated"),
        (lambda p: p.update(buckets=base64.b64encode(np.array([1, 64], "<i4").tobytes()).decode()),
         r"outside \[0, 64\)"),
    ],
)  # fmt: skip
def test_a_hashed_model_file_with_bad_buckets_is_refused(tmp_path, change, problem):
    model = LogisticRegression(optim.AdaGrad(0.1), n_features=64)
    model.learn_one({1: 1.0, 9: -2.0}, True)
    path = tmp_path / "model.json"
    model.save(path)
    resigned(path, change)
    with pytest.raises(ModelFileError, match=problem):
        LogisticRegression.load(path)


def test_a_version_2_model_file_still_loads_bit_for_bit(tmp_path):
    """Version 2 (before weights were arrays): [name, value] pairs and one list per row of
    the optimizer's state, written here by hand from a model's own weights and g2."""
    model = LogisticRegression(optim.AdaGrad(0.1), l2=1e-3)
    for x, y in datasets.Phishing().take(200):
        model.learn_one(x, y)
    names = list(model.weights)
    g2 = model._state.slots[0, : len(names)].tolist()
    payload = {**{k: v for k, v in model.to_payload().items() if k in ("params", "n_steps", "intercept", "l1_total")},
               "weights": [[name, model.weights[name]] for name in names], "slots": {"g2": g2}}  # fmt: skip
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    document = {"format": "stream_logreg.model", "format_version": 2, "payload": payload,
                "checksum": "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()}  # fmt: skip
    (tmp_path / "v2.json").write_text(json.dumps(document))
    loaded = LogisticRegression.load(tmp_path / "v2.json")
    assert_same_model(loaded, model)
    for x, y in list(datasets.Phishing())[200:400]:
        model.learn_one(x, y)
        loaded.learn_one(x, y)
    assert_same_model(loaded, model)
