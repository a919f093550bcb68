"""Replay: metrics equal river's progressive validation, bad rows, resume, CLI errors, the plot."""

import bz2
import gzip
import json
import math
import random

import numpy as np
import pytest
import zstandard
from river import datasets, evaluate, metrics, optim, stream
from sklearn.metrics import roc_auc_score

from stream_logreg import LogisticRegression
from stream_logreg.cli import main
from stream_logreg.decode import SchemaError
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.features import Features
from stream_logreg.replay import ReplayState, replay
from stream_logreg.sources import Row, iter_csv, iter_jsonl, iter_parquet, read_rows


def river_scores(data, model):
    log_loss, accuracy, roc_auc = metrics.LogLoss(), metrics.Accuracy(), metrics.ROCAUC()
    evaluate.progressive_val_score(data, model, metrics.base.Metrics([log_loss, accuracy, roc_auc]))
    return log_loss.get(), accuracy.get(), roc_auc.get()


def probas_and_labels(data, model):
    probas, labels = [], []
    for x, y in data:
        probas.append(model.predict_proba_one(x)[True])
        labels.append(float(y))
        model.learn_one(x, y)
    return np.array(probas), np.array(labels)


def test_phishing_metrics_equal_rivers_progressive_val_score():
    model = LogisticRegression()
    rows = (Row(i, {**x, "label": y}, None) for i, (x, y) in enumerate(datasets.Phishing()))
    ours = ProgressiveMetrics()
    state = replay(rows, model, Features("label"), ours, ReplayState())
    log_loss, accuracy, roc_auc = river_scores(datasets.Phishing(), LogisticRegression())
    assert state.learned == 1250
    assert abs(ours.log_loss - log_loss) <= 1e-12 and abs(ours.accuracy - accuracy) <= 1e-12
    assert abs(ours.roc_auc - roc_auc) <= 1e-12
    assert round(accuracy, 4) == 0.7304 and round(log_loss, 4) == 0.5256  # river's documented defaults
    probas, labels = probas_and_labels(datasets.Phishing(), LogisticRegression())
    assert abs(ours.roc_auc - roc_auc_score(labels, probas)) <= 0.02  # river's 10-threshold approximation
    assert abs(ours.rolling()["roc_auc"] - roc_auc_score(labels[-1000:], probas[-1000:])) <= 1e-12


def write_synthetic_csv(path, n=3000, seed=0):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("a,b,c,label\n")
        for _ in range(n):
            a, b, c = rng.gauss(0, 1), rng.gauss(0, 3), rng.uniform(-1, 1)
            label = int(rng.random() < 1 / (1 + math.exp(-(a - 0.5 * b + c))))
            f.write(f"{a!r},{b!r},{c!r},{label}\n")


def test_synthetic_file_metrics_equal_river_reading_the_same_file(tmp_path, capsys):
    path = tmp_path / "synthetic.csv"
    write_synthetic_csv(path)
    report = tmp_path / "report.json"
    assert (
        main(["replay", str(path), "--target", "label", "--lr", "0.05", "--report", str(report), "--every", "500"]) == 0
    )
    summary = json.loads(report.read_text())["summary"]
    converters: dict = {"a": float, "b": float, "c": float, "label": lambda v: v == "1"}
    data = stream.iter_csv(str(path), target="label", converters=converters)
    log_loss, accuracy, roc_auc = river_scores(data, LogisticRegression(optim.SGD(0.05)))
    assert abs(summary["log_loss"] - log_loss) <= 1e-12 and abs(summary["accuracy"] - accuracy) <= 1e-12
    assert abs(summary["roc_auc"] - roc_auc) <= 1e-12
    assert summary["records_learned"] == 3000 and summary["records_skipped"] == 0
    curve = json.loads(report.read_text())["curve"]
    assert [point["records"] for point in curve] == [500, 1000, 1500, 2000, 2500, 3000]
    assert "records learned  3,000" in capsys.readouterr().out


MALFORMED = (
    "\ufeffa,b,label\r\n"  # a UTF-8 BOM and CRLF line endings
    '1.5,"2.5",1\r\n'  # line 2: fine, a quoted number
    "1,2\r\n"  # line 3: too few fields
    "1,abc,0\r\n"  # line 4: a non-numeric value in a numeric column
    "1,2,\r\n"  # line 5: a missing label
    "1,2,7\r\n"  # line 6: an invalid label
    "nan,2,1\r\n"  # line 7: NaN
    "1,inf,0\r\n"  # line 8: infinity
    "1,2,3,4\r\n"  # line 9: too many fields
    '"-0.5","1e-3",0\r\n'  # line 10: fine
    "\r\n\r\n"  # blank lines at the end
)


def test_each_kind_of_malformed_row_is_skipped_with_its_line_and_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(MALFORMED.encode())
    report = tmp_path / "report.json"
    strict = ["--categorical", "none"]  # "abc" is then a bad value, not the one-hot feature b=abc
    assert main(["replay", str(path), "--target", "label", *strict, "--report", str(report)]) == 0
    summary = json.loads(report.read_text())["summary"]
    assert summary["records_learned"] == 2 and summary["records_skipped"] == 7
    skipped = [(item["line"], item["reason"]) for item in summary["first_skipped"]]
    assert skipped == [
        (3, "the row has the wrong number of fields (2; the header has 3)"),
        (
            4,
            "field 'b' has the non-numeric value 'abc'; declare it categorical to one-hot encode it, or fix the "
            "producer",
        ),
        (5, "the label 'label' has the value '', which is not binary (0/1 or false/true)"),
        (6, "the label 'label' has the value '7', which is not binary (0/1 or false/true)"),
        (7, "field 'a' has the value 'nan', which is not finite"),
        (8, "field 'b' has the value 'inf', which is not finite"),
        (9, "the row has the wrong number of fields (4; the header has 3)"),
    ]
    expected = LogisticRegression()
    expected.learn_one({"a": 1.5, "b": 2.5}, True)
    expected.learn_one({"a": -0.5, "b": 1e-3}, False)
    saved = tmp_path / "model.json"
    assert main(["replay", str(path), "--target", "label", *strict, "--save", str(saved)]) == 0
    model = LogisticRegression.load(saved)
    assert model.weights == expected.weights and model.intercept == expected.intercept


def test_on_error_fail_stops_at_the_first_bad_row(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes(MALFORMED.encode())
    saved = tmp_path / "model.json"
    assert main(["replay", str(path), "--target", "label", "--on-error", "fail", "--save", str(saved)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "stream-logreg replay: line 3 is malformed: the row has the wrong number of fields (2; the header has 3); "
        "stopped (--on-error fail)"
    )
    assert LogisticRegression.load(saved).n_steps == 1  # only line 2 was learned


def test_an_interrupted_replay_resumed_equals_one_uninterrupted_replay(tmp_path):
    path = tmp_path / "synthetic.csv"
    write_synthetic_csv(path, n=2500, seed=4)
    base = ["replay", str(path), "--target", "label", "--lr", "0.1", "--l2", "0.001", "--every", "100"]
    whole, part, rest = tmp_path / "whole.json", tmp_path / "part.json", tmp_path / "rest.json"
    assert main([*base, "--save", str(whole)]) == 0
    assert main([*base, "--max-records", "1234", "--save", str(part)]) == 0
    assert LogisticRegression.load(part).n_steps == 1234
    assert main([*base, "--resume", str(part), "--save", str(rest)]) == 0
    (a, pa), (b, pb) = LogisticRegression.load_with_progress(whole), LogisticRegression.load_with_progress(rest)
    assert max(abs(a.weights[k] - b.weights[k]) for k in a.weights) <= 1e-12
    assert abs(a.intercept - b.intercept) <= 1e-12 and a.n_steps == b.n_steps == 2500
    assert pa is not None and pb is not None
    assert abs(pa["metrics"]["log_loss"] - pb["metrics"]["log_loss"]) <= 1e-12
    assert pa["metrics"]["correct"] == pb["metrics"]["correct"]
    assert pa["metrics"]["curve"] == pb["metrics"]["curve"]


def test_optimizer_flags_give_that_river_optimizer_and_a_resume_keeps_its_state(tmp_path, capsys):
    path = tmp_path / "synthetic.csv"
    write_synthetic_csv(path, n=2000, seed=6)
    rows = [({k: float(v) for k, v in x.items()}, y == "1") for x, y in stream.iter_csv(path, target="label")]
    for name, optimizer in [("adagrad", optim.AdaGrad(0.2)), ("ftrl", optim.FTRLProximal(alpha=0.2))]:
        base = ["replay", str(path), "--target", "label", "--optimizer", name, "--lr", "0.2"]
        whole, part, rest = (tmp_path / f"{name}-{kind}.json" for kind in ("whole", "part", "rest"))
        assert main([*base, "--save", str(whole)]) == 0
        expected = LogisticRegression(optimizer)
        for x, y in rows:
            expected.learn_one(x, y)
        model = LogisticRegression.load(whole)
        assert type(model.optimizer) is type(optimizer) and model.weights == expected.weights
        assert main([*base, "--max-records", "700", "--save", str(part)]) == 0
        assert main(["replay", str(path), "--target", "label", "--resume", str(part), "--save", str(rest)]) == 0
        resumed = LogisticRegression.load(rest)
        assert resumed.weights == expected.weights and resumed.intercept == expected.intercept
    capsys.readouterr()
    assert main(["replay", str(path), "--target", "label", "--optimizer", "adam", "--resume", str(part)]) == 2
    assert "--optimizer adam differs from the ftrl that" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["missing.csv", "--target", "y"], "missing.csv does not exist; check the path"),
        ("data.xlsx", ["data.xlsx", "--target", "y"], "unknown format .xlsx"),
        ("data.csv", ["data.csv", "--target", "nope"], "has no column 'nope' (columns: a, y)"),
        ("empty.csv", ["empty.csv", "--target", "y"], "has no data rows"),
        ("data.csv", ["data.csv"], "--target is required with a file"),
        ("data.csv", ["data.csv", "--target", "y", "--lr", "-1"], "the optimizer's lr must be > 0.0, got -1.0"),
        ("data.csv", ["data.csv", "--target", "y", "--resume", "data.csv"], "truncated or is not JSON"),
        ("dup.csv", ["dup.csv", "--target", "y"], "the header repeats the column 'a'"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys, monkeypatch, setup, args, message):
    monkeypatch.chdir(tmp_path)
    if setup == "data.csv" or setup == "data.xlsx":
        (tmp_path / setup).write_text("a,y\n1,0\n")
    elif setup == "dup.csv":
        (tmp_path / setup).write_text("a,a,y\n1,2,0\n")
    elif setup == "empty.csv":
        (tmp_path / setup).write_text("")
    assert main(["replay", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stream-logreg replay: ") and message in err
    assert "Traceback" not in err


def test_the_plot_is_a_valid_png(tmp_path):
    import matplotlib.image

    png = tmp_path / "curve.png"
    assert main(["replay", "--dataset", "phishing", "--plot", str(png), "--every", "100"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert (width, height) == (800, 600)


def test_every_file_format_and_compression_gives_the_same_stream(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records: list[dict] = [{"a": 0.1 * i, "color": ["red", "blue"][i % 2], "y": i % 3 == 0} for i in range(50)]
    csv_text = "a,color,y\n" + "".join(f"{r['a']!r},{r['color']},{int(r['y'])}\n" for r in records)
    jsonl_text = "".join(json.dumps(r) + "\n" for r in records)
    (tmp_path / "d.csv").write_text(csv_text)
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(csv_text.encode()))
    (tmp_path / "d.jsonl.bz2").write_bytes(bz2.compress(jsonl_text.encode()))
    (tmp_path / "d.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl_text.encode()))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "d.parquet")
    expected = [({"a": r["a"], f"color={r['color']}": 1.0}, r["y"]) for r in records]
    options: dict = {"target": "y", "categorical": ["color"]}
    assert list(iter_csv(tmp_path / "d.csv", **options)) == expected
    assert list(iter_csv(tmp_path / "d.csv.gz", **options)) == expected
    assert list(iter_jsonl(tmp_path / "d.jsonl.bz2", **options)) == expected
    assert list(iter_jsonl(tmp_path / "d.jsonl.zst", **options)) == expected
    assert list(iter_parquet(tmp_path / "d.parquet", **options)) == expected
    assert list(iter_csv(tmp_path / "d.csv", target="y", drop=["color"]))[1] == ({"a": 0.1}, False)
    with pytest.raises(SchemaError, match="line 2: field 'color' has the non-numeric value 'red'"):
        list(iter_csv(tmp_path / "d.csv", target="y", categorical=[]))
    assert list(iter_csv(tmp_path / "d.csv", target="y")) == expected  # categorical="auto", the files' default
    assert [row.line for row in read_rows(tmp_path / "d.csv")][:3] == [2, 3, 4]


def test_the_fast_path_hands_over_to_the_row_path_at_a_bad_row_with_the_same_result(tmp_path):
    """A file bigger than one columnar block (4 MiB) whose bad row is in its second block."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(120_000, 3))
    y = (rng.random(120_000) < 0.5).astype(int)
    lines = ["a,b,c,label"] + [f"{a!r},{b!r},{c!r},{t}" for (a, b, c), t in zip(X.tolist(), y, strict=True)]
    bad = 110_000  # data row index; its line number is bad + 2
    lines[bad + 1] = "1.0,oops,2.0,1"
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert sum(len(line) + 1 for line in lines[: bad + 1]) > (1 << 22)  # the bad row is past the first block
    report, saved = tmp_path / "report.json", tmp_path / "model.json"
    strict = ["--categorical", "none"]  # "oops" is then a bad value, not the one-hot feature b=oops
    assert main(["replay", str(path), "--target", "label", *strict, "--report", str(report), "--save", str(saved)]) == 0
    summary = json.loads(report.read_text())["summary"]
    assert summary["records_skipped"] == 1 and summary["first_skipped"][0]["line"] == bad + 2
    expected = LogisticRegression()
    ours_metrics = ProgressiveMetrics()
    for i, ((a, b, c), t) in enumerate(zip(X.tolist(), y, strict=True)):
        if i != bad:
            p = expected.predict_proba_one({"a": a, "b": b, "c": c})[True]
            ours_metrics.update(np.array([p]), np.array([float(t)]))
            expected.learn_one({"a": a, "b": b, "c": c}, bool(t))
    model = LogisticRegression.load(saved)
    assert model.weights == expected.weights and model.intercept == expected.intercept
    assert abs(summary["log_loss"] - ours_metrics.log_loss) <= 1e-12


def test_a_long_running_curve_keeps_only_its_newest_points():
    metrics = ProgressiveMetrics(window=10, every=10, curve_limit=3)
    rng = np.random.default_rng(0)
    metrics.update(rng.random(100), (rng.random(100) < 0.5).astype(float))
    assert [point["records"] for point in metrics.curve] == [80, 90, 100]
    restored = ProgressiveMetrics.from_state(metrics.to_state())
    restored.update(rng.random(10), np.ones(10))
    assert [point["records"] for point in restored.curve] == [90, 100, 110]


def reference_model(rows, lr: float = 0.01) -> LogisticRegression:
    """learn_one on each (x, y), the slow obvious way."""
    model = LogisticRegression(optim.SGD(lr))
    for x, y in rows:
        model.learn_one(x, y)
    return model


def colors_csv(path, n: int, stray_at: int | None = None) -> list[tuple[dict, bool]]:
    """A CSV with a numeric column, a string column and the label; returns the expected (x, y)
    with categorical="auto" (the stray: a=oops)."""
    rng = random.Random(13)
    lines, expected = ["a,color,label"], []
    for i in range(n):
        a, color, label = round(rng.gauss(0, 1), 4), rng.choice(["red", "green", "blue"]), rng.random() < 0.4
        lines.append(f"{'oops' if i == stray_at else a},{color},{int(label)}")
        expected.append(({"a=oops" if i == stray_at else "a": 1.0 if i == stray_at else a,
                          f"color={color}": 1.0}, label))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return expected


def test_strings_are_one_hot_with_auto_and_only_in_the_fields_named_otherwise(tmp_path, capsys):
    path, report = tmp_path / "colors.csv", tmp_path / "report.json"
    expected = colors_csv(path, 3000, stray_at=2000)  # a stray string in the numeric column, after the first block
    saved = tmp_path / "auto.json"
    assert main(["replay", str(path), "--target", "label", "--save", str(saved), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "categorical      auto   (any string that is not a number is one-hot encoded)" in out
    summary = json.loads(report.read_text())["summary"]
    assert summary["categorical"] == "auto" and summary["records_learned"] == 3000
    reference = reference_model(expected)
    model = LogisticRegression.load(saved)
    assert model.weights == reference.weights and model.intercept == reference.intercept
    named, report = tmp_path / "named.json", tmp_path / "named-report.json"
    assert main(["replay", str(path), "--target", "label", "--categorical", "color", "--save", str(named),
                 "--report", str(report)]) == 0  # fmt: skip
    summary = json.loads(report.read_text())["summary"]
    assert summary["records_learned"] == 2999 and summary["first_skipped"] == [
        {"line": 2002, "reason": "field 'a' has the non-numeric value 'oops'; declare it categorical to one-hot "
                                 "encode it, or fix the producer"}
    ]  # fmt: skip
    without_stray = reference_model([*expected[:2000], *expected[2001:]])
    assert LogisticRegression.load(named).weights == without_stray.weights


def test_when_nothing_is_learned_it_says_why_prints_n_a_and_exits_1(tmp_path, capsys):
    path = tmp_path / "colors.csv"
    colors_csv(path, 300)
    assert main(["replay", str(path), "--target", "label", "--categorical", "none"]) == 1
    captured = capsys.readouterr()
    assert "records learned  0\n" in captured.out and "records skipped  300\n" in captured.out
    for line in ("log loss         n/a   (last 1,000: n/a)", "accuracy         n/a   (last 1,000: n/a)",
                 "ROC AUC          n/a   (last 1,000: n/a)"):  # fmt: skip
        assert line in captured.out
    assert captured.err == (
        "stream-logreg replay: no record was learned; the most frequent reason, for 300 rows: field 'color' holds "
        "non-numeric strings; declare it categorical (--categorical color)\n"
    )


COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": lambda data: bz2.compress(data, compresslevel=1),  # 100 kB blocks: the cut leaves whole blocks
    ".zst": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_a_cut_short_file_exits_2_naming_it_saves_what_was_learned_and_resumes_after_a_fix(tmp_path, capsys, suffix):
    rng = random.Random(3)
    rows = [(round(rng.gauss(0, 1), 5), round(rng.gauss(0, 1), 5), int(rng.random() < 0.5)) for _ in range(40_000)]
    data = ("a,b,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows)).encode()
    packed = COMPRESSORS[suffix](data)
    path, saved = tmp_path / f"data.csv{suffix}", tmp_path / "model.json"
    path.write_bytes(packed[: len(packed) // 2])
    assert main(["replay", str(path), "--target", "label", "--save", str(saved)]) == 2
    err = capsys.readouterr().err
    learned = LogisticRegression.load(saved).n_steps
    assert 0 < learned < len(rows)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"stream-logreg replay: {path} cannot be read after line {learned + 1}: ")
    assert err.endswith(f"what was learned is saved in {saved}, --resume goes on after a fix\n")
    examples = [({"a": a, "b": b}, bool(y)) for a, b, y in rows]
    partial = reference_model(examples[:learned])
    assert LogisticRegression.load(saved).weights == partial.weights
    path.write_bytes(packed)  # the fix: the whole file
    assert main(["replay", str(path), "--target", "label", "--resume", str(saved), "--save", str(saved)]) == 0
    whole, reference = LogisticRegression.load(saved), reference_model(examples)
    assert whole.weights == reference.weights and whole.intercept == reference.intercept


def test_a_closed_stdout_loses_nothing(tmp_path):
    import subprocess
    import sys

    path, saved = tmp_path / "colors.csv", tmp_path / "model.json"
    expected = colors_csv(path, 500)
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_logreg.cli", "replay", str(path), "--target", "label", "--save", str(saved)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read what it wanted before the summary is printed
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, err
    assert err == ""
    assert LogisticRegression.load(saved).weights == reference_model(expected).weights


@pytest.mark.parametrize(
    ("change", "flags", "message"),
    [
        ("longer", [], "its size ({before:,} bytes then, {after:,} now), its last 64 KiB differ"),
        ("shorter", [], "its size ({before:,} bytes then, {after:,} now), its last 64 KiB differ"),
        ("edited", [], "its first 64 KiB differ"),
        (None, ["--lr", "5"], "--lr 5.0 differs from the 0.05 that"),
        (None, ["--target", "a"], "--target a differs from the label that"),
        (None, ["--categorical", "none"], "--categorical [] differs from the auto that"),
        (None, ["--hash-bits", "12"], "--hash-bits 12 differs from the None that"),
        (None, ["--window", "10"], "--window 10 differs from the 1000 that"),
    ],
)
def test_a_resume_that_does_not_match_the_save_exits_2_naming_the_difference(tmp_path, capsys, change, flags, message):
    path, saved = tmp_path / "colors.csv", tmp_path / "model.json"
    colors_csv(path, 10_000)
    before = path.stat().st_size
    assert before > 2 * 64 * 1024
    first = ["replay", str(path), "--target", "label", "--lr", "0.05", "--max-records", "100", "--save", str(saved)]
    assert main(first) == 0
    text = path.read_text()
    if change == "longer":
        path.write_text(text + "0.5,red,1\n")
    elif change == "shorter":
        path.write_text(text[: text.rindex("\n", 0, -1) + 1])  # the last row is gone
    elif change == "edited":
        path.write_text(text.replace("red", "RED", 1))
    capsys.readouterr()
    assert main(["replay", str(path), "--resume", str(saved), *flags]) == 2
    err = capsys.readouterr().err
    message = message.format(before=before, after=path.stat().st_size)
    assert err.startswith("stream-logreg replay: ") and message in err and err.count("\n") == 1
    assert main(["replay", str(path), "--resume", str(saved), "--lr", "0.05"]) == (2 if change else 0)


def test_a_row_whose_margin_overflows_is_skipped_and_the_rest_learned_as_learn_one_would(tmp_path):
    rng = random.Random(8)
    rows = [(round(rng.gauss(0, 1), 4), int(rng.random() < 0.5)) for _ in range(3000)]
    rows[1500] = (1e200, 1)  # makes the weight of a huge...
    rows[1501] = (1e200, 0)  # ...so that this margin overflows
    path, saved, report = tmp_path / "huge.csv", tmp_path / "model.json", tmp_path / "report.json"
    path.write_text("a,label\n" + "".join(f"{a!r},{y}\n" for a, y in rows))
    assert main(["replay", str(path), "--target", "label", "--save", str(saved), "--report", str(report)]) == 0
    reference, refused = LogisticRegression(), []
    for line, (a, y) in enumerate(rows, start=2):
        try:
            reference.learn_one({"a": a}, bool(y))
        except ValueError:
            refused.append(line)
    assert refused == [1503]  # the line of rows[1501]
    model = LogisticRegression.load(saved)
    assert model.weights == reference.weights and model.intercept == reference.intercept
    summary = json.loads(report.read_text())["summary"]
    assert [item["line"] for item in summary["first_skipped"]] == refused
    assert summary["skipped_by_reason"] == {"the margin is not finite (the features are too large)": 1}
