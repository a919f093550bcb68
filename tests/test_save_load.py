"""save/load: exact round trip, atomic writes, and one clear error per kind of bad file."""

import json
import os

import pytest
from river import datasets, optim

from stream_logreg import LogisticRegression, ModelFileError


@pytest.fixture
def model() -> LogisticRegression:
    model = LogisticRegression(lr=optim.schedulers.InverseScaling(0.3, 0.4), l2=1e-3, intercept_lr=0.02)
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
    model = LogisticRegression(lr=optim.schedulers.Optimal(optim.losses.Log()))
    with pytest.raises(TypeError, match="cannot be saved"):
        model.save(tmp_path / "m.json")
    assert not list(tmp_path.iterdir())
