"""Features: each kind of field, the same through every entry point; hashing equal to river's
FeatureHasher; the limits named; the service and replay learning the same event stream."""

import json
import math
import random
import signal
import string
import subprocess
import sys
import time

import numpy as np
import pytest
from river import linear_model as river_linear
from river import metrics as river_metrics
from river import optim, preprocessing

from stream_logreg import Features, LogisticRegression
from stream_logreg._hashing import murmur3
from stream_logreg.cli import main
from stream_logreg.decode import JsonRows, SchemaError, decode_value, make_decoder
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.scaling import Scaler
from stream_logreg.sources import iter_csv, iter_jsonl, iter_parquet, iter_records

from reference import assert_same_model

COUNTRIES, OSES = ["DE", "FR", "US", "BR", "JP"], ["ios", "android", "web"]
TAGS = ["sale", "new", "gift", "bulk", "promo"]


def events(n: int, seed: int, users: int = 50) -> list[dict]:
    """Click-like records: strings, a nested object, lists, a bool, unscaled numbers, nulls."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        country, os_ = rng.choice(COUNTRIES), rng.choice(OSES)
        price, dwell = round(rng.uniform(1, 300), 2), rng.randrange(0, 60_000)
        z = 0.8 * (os_ == "ios") - 0.5 * (country == "BR") + price / 300 - 0.5
        out.append({
            "user_id": f"u{rng.randrange(users)}",
            "country": country,
            "device": {"os": os_, "version": rng.choice(["17.2", "16.0", None])},
            "tags": rng.sample(TAGS, rng.randrange(0, 3)),
            "scores": [round(rng.gauss(0, 1), 3) for _ in range(2)],
            "price": price,
            "dwell_ms": dwell,
            "new_user": rng.random() < 0.3,
            "coupon": rng.choice([None, "", "SPRING"]),
            "clicked": int(rng.random() < 1 / (1 + math.exp(-z))),
        })  # fmt: skip
    return out


def by_hand(record: dict) -> dict:
    """The features of an :func:`events` record with categorical="auto", written out."""
    x: dict = {"user_id=" + record["user_id"]: 1.0, "country=" + record["country"]: 1.0,
               "device.os=" + record["device"]["os"]: 1.0}  # fmt: skip
    if record["device"]["version"] is not None:
        x["device.version"] = float(record["device"]["version"])
    x.update({f"tags={tag}": 1.0 for tag in record["tags"]})
    x.update({f"scores[{i}]": float(v) for i, v in enumerate(record["scores"])})
    x.update({"price": float(record["price"]), "dwell_ms": float(record["dwell_ms"])})
    x["new_user"] = 1.0 if record["new_user"] else 0.0
    if record["coupon"]:
        x["coupon=SPRING"] = 1.0
    return x


def test_each_kind_of_field_becomes_the_features_written_out_by_hand():
    data = events(300, seed=1)
    got = list(iter_records(data, "clicked", categorical="auto"))
    assert got == [(by_hand(r), bool(r["clicked"])) for r in data]
    assert all(list(x) == list(by_hand(r)) for (x, _), r in zip(got, data, strict=True))  # the order too


def test_every_entry_point_gives_the_same_features_bit_for_bit(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = events(400, seed=2)
    expected = list(iter_records(data, "clicked", categorical="auto", hash_bits=None))
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    pq.write_table(pa.Table.from_pylist(data), tmp_path / "e.parquet")
    assert list(iter_jsonl(tmp_path / "e.jsonl", "clicked")) == expected  # files: categorical="auto"
    assert list(iter_parquet(tmp_path / "e.parquet", "clicked")) == expected
    features = Features("clicked", categorical="auto")
    decode = make_decoder("json")
    assert [decode_value(json.dumps(r).encode(), decode, features) for r in data] == expected  # Kafka's path
    # CSV has no nesting, lists or booleans: its flat fields (booleans as 0/1) give the same.
    flat = [{k: v for k, v in r.items() if k not in ("device", "tags", "scores")} for r in data]
    columns = list(flat[0])
    cell = {None: "", True: "1", False: "0"}
    lines = [",".join(columns)] + [",".join(cell.get(r[c], str(r[c])) if not isinstance(r[c], float) else repr(r[c])
                                            for c in columns) for r in flat]  # fmt: skip
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    assert list(iter_csv(tmp_path / "e.csv", "clicked")) == list(iter_records(flat, "clicked", categorical="auto"))


def test_hashed_features_are_the_same_through_every_entry_point(tmp_path):
    data = events(300, seed=3)
    features = Features("clicked", categorical="auto", hash_bits=10, hash_seed=7)
    expected = list(iter_records(data, features))
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    assert list(iter_jsonl(tmp_path / "e.jsonl", features)) == expected
    assert all(isinstance(k, int) and 0 <= k < 1024 for x, _ in expected for k in x)
    river_hasher = preprocessing.FeatureHasher(n_features=1024, seed=7)
    named = list(iter_records(data, "clicked", categorical="auto"))
    assert [river_hasher.transform_one(x) for x, _ in named] == [x for x, _ in expected]


@pytest.mark.parametrize("alternate_sign", [True, False])
def test_buckets_and_signs_equal_rivers_feature_hasher_on_10000_random_names(alternate_sign):
    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits + "._=[]- éü☃😀"
    for seed in (0, 1, 42, 2**31 + 5):
        hasher = preprocessing.FeatureHasher(n_features=2**18, seed=seed, alternate_sign=alternate_sign)
        features = Features("_y", categorical="auto", hash_bits=18, hash_seed=seed, alternate_sign=alternate_sign)
        for _ in range(2500):
            name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 20)))
            text = "v" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 9)))  # never reads as a number
            value = rng.choice([rng.uniform(-10, 10), text])
            x, _ = features.decode({name: value, "_y": 1})
            assert x == hasher.transform_one({name: value}), (seed, name, value)


def test_murmur3_matches_the_reference_vectors():
    # Published test vectors of MurmurHash3_x86_32 (as unsigned 32-bit), read here as signed.
    vectors = [("", 0, 0), ("", 1, 0x514E28B7), ("", 0xFFFFFFFF, 0x81F16F39), ("a", 0x9747B28C, 0x7FA09EA6),
               ("abcd", 0x9747B28C, 0xF0478627), ("Hello, world!", 0x9747B28C, 0x24884CBA),
               ("The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD)]  # fmt: skip
    for text, seed, unsigned in vectors:
        assert murmur3(text, seed) == unsigned - (1 << 32 if unsigned >= 1 << 31 else 0), text


@pytest.mark.parametrize("optimizer", ["sgd", "ftrl"])
def test_feature_hasher_then_logistic_regression_equals_rivers_pipeline(optimizer):
    data = events(2000, seed=5, users=500)
    # Moderate margins: river cuts the sigmoid at |z| > 18, where ours is exact (the README says so).
    flat = [{"user_id": r["user_id"], "country": r["country"], "price": r["price"] / 100, "new_user": r["new_user"],
             "clicked": r["clicked"]} for r in data]  # fmt: skip

    def make(name: str):
        return optim.SGD(0.05) if name == "sgd" else optim.FTRLProximal(alpha=0.1, l1=0.01)

    river_model = preprocessing.FeatureHasher(n_features=2**12, seed=3) | river_linear.LogisticRegression(
        make(optimizer)
    )
    ours = LogisticRegression(make(optimizer), n_features=2**12)  # fixed memory: 2**12 weights, no names
    features = Features("clicked", categorical="auto", hash_bits=12, hash_seed=3)
    for record in flat:
        x_river = {k: float(v) if isinstance(v, (bool, int)) else v for k, v in record.items() if k != "clicked"}
        x, y = features.decode(record)
        assert abs(river_model.predict_proba_one(x_river)[True] - ours.predict_proba_one(x)[True]) <= 1e-9
        river_model.learn_one(x_river, y)
        ours.learn_one(x, y)
    theirs = river_model["LogisticRegression"]
    assert ours._state.coef.shape == (2**12,) and len(theirs._weights) > 400
    assert max(abs(theirs._weights.get(k, 0.0) - ours._state.coef[k]) for k in range(2**12)) <= 1e-9
    assert abs(theirs.intercept - ours.intercept) <= 1e-9


def test_the_c_reader_hashes_plain_records_as_the_careful_path_does():
    rng = random.Random(6)
    values: list[bytes | None] = [
        json.dumps({"a": rng.gauss(0, 1), "bb": rng.randrange(-5, 5), "label": rng.randrange(2)}).encode()
        for _ in range(200)
    ]
    features = Features("label", hash_bits=8, hash_seed=1)
    rows = JsonRows(features).decode(values)
    decode = make_decoder("json")
    assert rows.ok.all()
    for i, value in enumerate(values):
        x, y = decode_value(value, decode, features)
        assert dict(zip(rows.features, rows.values[i].tolist(), strict=True)) == x and list(x) == rows.features
        assert rows.labels[i] == float(y)
    # Two fields in one bucket: their values must be added, so the careful path takes them.
    tiny = Features("label", hash_bits=1)
    names = list("abcdefgh")
    buckets = [next(iter(tiny.hash({n: 1.0}))) for n in names]
    pair = [n for n, b in zip(names, buckets, strict=True) if b == buckets[0]][:2]
    record = json.dumps({pair[0]: 1.0, pair[1]: 2.0, "label": 1}).encode()
    assert not JsonRows(tiny).decode([record]).ok.any()
    assert decode_value(record, decode, tiny)[0] == tiny.hash({pair[0]: 1.0, pair[1]: 2.0})


def test_what_breaks_the_declared_schema_is_an_error_naming_the_field():
    deep = {"a": {"b": {"c": {"d": {"e": 1}}}}, "y": 1}
    with pytest.raises(SchemaError, match=r"field 'a.b.c.d' nests deeper than --max-depth 4"):
        Features("y").decode(deep)
    assert Features("y", max_depth=5).decode(deep)[0] == {"a.b.c.d.e": 1.0}
    with pytest.raises(SchemaError, match=r"field 'tags' holds a list of 101 items, beyond --max-list-length 100"):
        Features("y", categorical="auto").decode({"tags": ["t"] * 101, "y": 0})
    with pytest.raises(SchemaError, match=r"field 'device.os' has the non-numeric value 'ios'; declare it categorical"):
        Features("y").decode({"device": {"os": "ios"}, "y": 0})
    assert Features("y", categorical=["device"]).decode({"device": {"os": "ios"}, "y": 0})[0] == {"device.os=ios": 1.0}
    assert Features("y", categorical=["zip"]).decode({"zip": 75001, "y": 0})[0] == {"zip=75001": 1.0}
    assert Features("y", categorical=["zip"]).decode({"zip": 75001.0, "y": 0})[0] == {"zip=75001.0": 1.0}
    with pytest.raises(SchemaError, match=r"field 'price' has the value 'inf', which is not finite"):
        Features("y", categorical="auto").decode({"price": "inf", "y": 0})
    with pytest.raises(SchemaError, match=r"field 'n\[1\]' has the value 1e\+300, beyond the limit 1e\+09"):
        Features("y", max_abs_value=1e9).decode({"n": [1, 1e300], "y": 0})
    assert Features("y").decode({"a": None, "b": "", "c": [None, ""], "y": 1}) == ({}, True)
    wrong: list[tuple[dict, str]] = [({"hash_bits": 0}, "hash_bits must be an integer from 1 to 30"),
                         ({"hash_seed": -1}, "hash_seed must be an integer from 0"),
                         ({"max_depth": 0}, "max_depth must be an integer >= 1"),
                         ({"categorical": "color"}, "categorical must be 'auto' or a list of fields")]  # fmt: skip
    for bad, message in wrong:
        with pytest.raises(ValueError, match=message):
            Features("y", **bad)


def test_settings_round_trip_through_json():
    features = Features("y", ["a", "b"], ["c"], "auto", 1e6, 12, 9, False, 3, 7)
    assert Features(**json.loads(json.dumps(features.settings()))) == features
    assert Features(**Features("y").settings()) == Features("y")


def test_replay_with_hashing_learns_the_hashed_stream_and_resumes_with_the_same_settings(tmp_path, capsys):
    data = events(1500, seed=8, users=300)
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    flags = ["--target", "clicked", "--optimizer", "ftrl", "--hash-bits", "14", "--hash-seed", "5"]
    whole, part, rest = tmp_path / "whole.json", tmp_path / "part.json", tmp_path / "rest.json"
    assert main(["replay", str(path), *flags, "--save", str(whole)]) == 0
    assert "(features hashed into 2**14 buckets)" in capsys.readouterr().out
    reference = LogisticRegression(optim.FTRLProximal(), n_features=2**14)
    for x, y in iter_jsonl(path, "clicked", hash_bits=14, hash_seed=5):
        reference.learn_one(x, y)
    model = LogisticRegression.load(whole)
    assert_same_model(model, reference)
    assert main(["replay", str(path), *flags, "--max-records", "700", "--save", str(part)]) == 0
    assert main(["replay", str(path), "--resume", str(part), "--save", str(rest)]) == 0
    assert_same_model(LogisticRegression.load(rest), model)
    assert main(["replay", str(path), "--resume", str(part), "--hash-bits", "12"]) == 2
    assert "--hash-bits 12 differs from the 14 that" in capsys.readouterr().err


def test_feature_flags_reach_the_featurizer_and_bad_values_are_usage_errors(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"a": {"b": [1, 2]}, "label": 1}) + "\n")
    result = subprocess.run([sys.executable, "-m", "stream_logreg.cli", "replay", str(path), "--target", "label",
                             "--hash-bits", "0"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "stream-logreg replay: --hash-bits must be an integer from 1 to 30, got 0"
    report = tmp_path / "r.json"
    assert main(["replay", str(path), "--target", "label", "--max-depth", "1", "--report", str(report)]) == 1
    summary = json.loads(report.read_text())["summary"]
    assert summary["first_skipped"][0]["reason"].startswith("field 'a' nests deeper than --max-depth 1")


@pytest.mark.kafka
def test_the_service_learns_nested_hashed_events_as_replay_learns_the_file(kafka_bootstrap, topic, tmp_path):
    from test_service import latest, produce, start

    data = events(1200, seed=9, users=400)
    values = [json.dumps(r).encode() for r in data]
    values[100] = b'{"device": {"os": {"a": {"b": {"c": 1}}}}, "clicked": 1}'  # too deep: a dead letter
    produce(kafka_bootstrap, topic, values, partitions=1)
    flags = ["--categorical", "auto", "--hash-bits", "12", "--optimizer", "adagrad"]
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "events", folder, *flags, "--target", "clicked", "--idle-timeout", "3")
    assert process.wait(timeout=180) == 0
    checkpoint = latest(folder)
    assert checkpoint is not None and checkpoint.progress["counters"]["dead_lettered"] == 1
    path, saved = tmp_path / "e.jsonl", tmp_path / "replayed.json"
    path.write_bytes(b"".join(v + b"\n" for v in values))
    assert main(["replay", str(path), "--target", "clicked", *flags, "--save", str(saved)]) == 0
    replayed = LogisticRegression.load(saved)
    assert_same_model(checkpoint.model, replayed)
    assert replayed.n_steps == 1199 and replayed.n_features == 2**12
    _, progress = LogisticRegression.load_with_progress(saved)
    assert progress is not None
    assert abs(checkpoint.progress["metrics"]["log_loss"] - progress["metrics"]["log_loss"]) <= 1e-12


def clean_pass(data: list[dict], features: Features, scaler: Scaler, model: LogisticRegression):
    """An uninterrupted in-memory pass: predict scaled with the statistics before, learn after."""
    metrics = ProgressiveMetrics()
    for record in data:
        x, y, numeric = features.named(record)
        before, after, _ = scaler.step(x, numeric)
        metrics.update(np.array([model.predict_proba_one(features.hash(before))[True]]), np.array([float(y)]))
        model.learn_one(features.hash(after), y)
    return model, scaler, metrics


def test_replay_with_scaling_equals_rivers_standard_scaler_pipeline(tmp_path):
    data = events(2500, seed=12)
    flat = [
        {"price": r["price"], "dwell_ms": r["dwell_ms"], "s": r["scores"][0], "clicked": r["clicked"]} for r in data
    ]
    path, saved, report = tmp_path / "f.jsonl", tmp_path / "m.json", tmp_path / "r.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in flat))
    flags = ["--target", "clicked", "--scale", "all", "--lr", "0.1", "--save", str(saved), "--report", str(report)]
    assert main(["replay", str(path), *flags]) == 0
    pipeline = preprocessing.StandardScaler() | river_linear.LogisticRegression(optim.SGD(0.1))
    loss = river_metrics.LogLoss()
    for record in flat:
        x = {k: float(v) for k, v in record.items() if k != "clicked"}
        loss.update(bool(record["clicked"]), pipeline.predict_proba_one(x))
        pipeline.learn_one(x, bool(record["clicked"]))
    model, progress = LogisticRegression.load_with_progress(saved)
    theirs = pipeline["LogisticRegression"]
    assert max(abs(theirs._weights[k] - w) for k, w in model.weights.items()) <= 1e-9
    assert abs(theirs.intercept - model.intercept) <= 1e-9
    assert abs(json.loads(report.read_text())["summary"]["log_loss"] - loss.get()) <= 1e-9
    scaler = pipeline["StandardScaler"]
    assert progress is not None
    for name, (count, mean, variance) in progress["scaler"]["stats"].items():
        assert (count, mean, variance) == (scaler.counts[name], scaler.means[name], scaler.vars[name])


@pytest.mark.kafka
def test_sigkills_with_hashing_and_scaling_end_with_the_model_statistics_and_metrics_of_a_clean_pass(
    kafka_bootstrap, topic, tmp_path
):
    from test_service import latest, learned, produce_slowly, start

    data = events(6000, seed=13, users=3000)
    stream = produce_slowly(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data], rate=700)
    folder = tmp_path / "checkpoints"
    options = ("--target", "clicked", "--categorical", "auto", "--hash-bits", "16", "--scale", "all",
               "--optimizer", "ftrl", "--checkpoint-every", "250", "--idle-timeout", "5")  # fmt: skip
    rng = random.Random(14)
    began, kills = time.monotonic(), []
    process = start(kafka_bootstrap, topic, "scaled", folder, *options)
    for moment in sorted(rng.uniform(1.5, 7.0) for _ in range(3)):
        time.sleep(max(began + moment - time.monotonic(), 0.0))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        kills.append(learned(folder))
        process = start(kafka_bootstrap, topic, "scaled", folder, *options)
    stream.join()
    assert process.wait(timeout=180) == 0
    assert kills[-1] < len(data), f"the stream was over before the last kill: {kills}"
    checkpoint = latest(folder)
    assert checkpoint is not None
    features = Features("clicked", categorical="auto", hash_bits=16)
    hashed = LogisticRegression(optim.FTRLProximal(), n_features=2**16)
    model, scaler, metrics = clean_pass(data, features, Scaler(), hashed)
    assert_same_model(checkpoint.model, model)
    assert model.n_steps == len(data)
    assert checkpoint.progress["features"]["scaler"] == scaler.to_state()
    assert checkpoint.progress["metrics"]["log_loss"] == metrics.log_loss
    assert checkpoint.progress["metrics"]["correct"] == metrics.correct


@pytest.mark.parametrize("optimizer", [optim.SGD(0.1), optim.AdaGrad(0.1), optim.Momentum()])
def test_learn_batch_predicting_from_other_values_equals_predict_then_learn_one(optimizer):
    rng = random.Random(15)
    after = [{k: rng.gauss(0, 1) for k in rng.sample("abcdef", 3)} for _ in range(300)]
    before = [{k: v * 0.5 + 0.1 for k, v in x.items()} for x in after]
    ys = [rng.random() < 0.5 for _ in after]
    ours, reference = LogisticRegression(optimizer.clone()), LogisticRegression(optimizer.clone())
    probas = ours.learn_batch(after, ys, predict=before)
    for x, p, y, want in zip(after, before, ys, probas.tolist(), strict=True):
        assert reference.predict_proba_one(p)[True] == want
        reference.learn_one(x, y)
    assert ours.weights == reference.weights and ours.intercept == reference.intercept
    with pytest.raises(ValueError, match="the keys of the one learned"):
        ours.learn_batch([{"a": 1.0}], [True], predict=[{"zz": 1.0}])
    with pytest.raises(ValueError, match="predict holds 2 dicts for 1 examples"):
        ours.learn_batch([{"a": 1.0}], [True], predict=[{"a": 1.0}, {"a": 2.0}])
    assert ours.weights == reference.weights and "zz" not in ours.weights  # refused: nothing changed
