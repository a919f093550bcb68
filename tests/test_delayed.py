"""Labels that arrive later (``replay --labels``): each event predicted on arrival, learned
when its label comes, scored with the prediction made at event time. Checked against river's
``progressive_val_score(delay=...)`` and against a plain in-memory pass."""

import csv
import json
import math
import os
import random

import pytest
from river import datasets, evaluate, metrics, optim
from river import linear_model as river_linear

from stream_logreg import LogisticRegression
from stream_logreg.cli import main
from stream_logreg.delayed import DelayHistogram, LabelJoin

from reference import assert_same_model


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("delay", [1, 25, 400])
def test_labels_delayed_by_a_fixed_number_of_events_score_as_rivers_progressive_val_score(tmp_path, capsys, delay):
    data = list(datasets.Phishing())
    events = [{"id": f"e{i}", "timestamp": i, **x} for i, (x, _) in enumerate(data)]
    labels = [{"id": f"e{i}", "timestamp": i + delay, "label": y} for i, (_, y) in enumerate(data)]
    write_jsonl(tmp_path / "events.jsonl", events)
    write_jsonl(tmp_path / "labels.jsonl", sorted(labels, key=lambda r: r["timestamp"]))
    saved, report = tmp_path / "m.json", tmp_path / "r.json"
    flags = ["--labels", str(tmp_path / "labels.jsonl"), "--join-key", "id", "--label-timeout", "1e9",
             "--target", "label", "--lr", "0.1", "--save", str(saved), "--report", str(report)]  # fmt: skip
    assert main(["replay", str(tmp_path / "events.jsonl"), *flags]) == 0
    out = capsys.readouterr().out
    assert f"labels joined    {len(data):,}   (100.0% of {len(data):,} events; label delay p50 " in out
    river_model = river_linear.LogisticRegression(optim.SGD(0.1))
    log_loss = metrics.LogLoss()
    accuracy = metrics.Accuracy()
    evaluate.progressive_val_score(datasets.Phishing(), river_model, log_loss + accuracy, delay=delay)
    summary = json.loads(report.read_text())["summary"]
    assert summary["records_learned"] == len(data) and summary["join"]["joined"] == len(data)
    assert abs(summary["log_loss"] - log_loss.get()) <= 1e-12
    assert abs(summary["accuracy"] - accuracy.get()) <= 1e-12
    model = LogisticRegression.load(saved)
    assert max(abs(river_model.weights[k] - w) for k, w in model.weights.items()) <= 1e-12
    assert sorted(model.weights) == sorted(river_model.weights)
    assert summary["join"]["delay_p50"] == pytest.approx(delay, rel=0.01)


def plain_pass(events, labels, timeout, on_timeout):
    """The reference: every record in time order (a label first at one moment), the expiries
    checked before each, written out plainly; returns the model, the (proba, y) scored in
    order and the counts."""
    model = LogisticRegression(optim.AdaGrad(0.2))
    happenings = sorted([(e["timestamp"], 1, k, e) for k, e in enumerate(events)]
                        + [(label["timestamp"], 0, k, label) for k, label in enumerate(labels)])  # fmt: skip
    waiting_events: dict = {}
    waiting_labels: dict = {}
    scored, counts = [], {"joined": 0, "expired": 0, "unmatched": 0}

    def features(event):
        return {k: float(v) for k, v in event.items() if k not in ("id", "timestamp")}

    for moment, kind, _, record in happenings:
        for key, (x, p, t) in list(waiting_events.items()):
            if t + timeout < moment:
                del waiting_events[key]
                counts["expired"] += 1
                if on_timeout == "negative":
                    model.learn_one(x, False)
                    scored.append((p, False))
        for key, (_, t) in list(waiting_labels.items()):
            if t + timeout < moment:
                del waiting_labels[key]
                counts["unmatched"] += 1
        key = str(record["id"])
        if kind == 1:
            x = features(record)
            p = model.predict_proba_one(x)[True]
            if key in waiting_labels:
                y, _ = waiting_labels.pop(key)
                model.learn_one(x, y)
                scored.append((p, y))
                counts["joined"] += 1
            else:
                waiting_events[key] = (x, p, moment)
        elif key in waiting_events:
            x, p, _ = waiting_events.pop(key)
            model.learn_one(x, record["clicked"])
            scored.append((p, record["clicked"]))
            counts["joined"] += 1
        else:
            waiting_labels[key] = (record["clicked"], moment)
    return model, scored, counts


def stream(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """n events, one every 0.5 s; labels after random delays, some before their event, 15%
    never, and 20 for no event; both in time order."""
    rng = random.Random(seed)
    events_, labels = [], []
    for i in range(n):
        moment = i * 0.5
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)}
        events_.append({"id": i, "timestamp": moment, **x})
        clicked = rng.random() < 1 / (1 + math.exp(-(x["a"] - x["b"])))
        draw = rng.random()
        if draw < 0.15:
            continue
        delay = -0.25 if draw < 0.2 else rng.expovariate(1 / 20.0)
        labels.append({"id": i, "timestamp": moment + delay, "clicked": clicked})
    labels += [{"id": 10**7 + k, "timestamp": k * 7.0, "clicked": True} for k in range(20)]
    labels.sort(key=lambda r: r["timestamp"])
    return events_, labels


@pytest.mark.parametrize(("on_timeout", "join_memory"), [("drop", "100"), ("negative", "100"), ("negative", "0.002")])
def test_random_delays_out_of_order_labels_and_missing_ones_give_a_plain_passs_model(
    tmp_path, capsys, on_timeout, join_memory
):
    events, labels = stream(3000, seed=11)
    with (tmp_path / "events.csv").open("w", newline="") as f:  # a CSV and a JSON file join on "17" == 17
        writer = csv.DictWriter(f, ["id", "timestamp", "a", "b"])
        writer.writeheader()
        writer.writerows(events)
    write_jsonl(tmp_path / "labels.jsonl", labels)
    saved, report = tmp_path / "m.json", tmp_path / "r.json"
    flags = ["--labels", str(tmp_path / "labels.jsonl"), "--join-key", "id", "--label-timeout", "60",
             "--on-timeout", on_timeout, "--target", "clicked", "--optimizer", "adagrad", "--lr", "0.2",
             "--save", str(saved), "--report", str(report), "--join-memory", join_memory]  # fmt: skip
    assert main(["replay", str(tmp_path / "events.csv"), *flags]) == 0
    csv_events = [{k: float(v) if k != "id" else v for k, v in e.items()} for e in events]  # as the CSV reads
    model, scored, counts = plain_pass(csv_events, labels, 60.0, on_timeout)
    assert_same_model(LogisticRegression.load(saved), model)
    summary = json.loads(report.read_text())["summary"]
    join = summary["join"]
    assert (join["joined"], join["events_expired"], join["labels_unmatched"]) == (
        counts["joined"], counts["expired"], counts["unmatched"])  # fmt: skip
    assert join["labels_unmatched"] >= 20 and join["events_expired"] > 300
    assert summary["records_learned"] == len(scored)
    loss = metrics.LogLoss()
    for p, y in scored:
        loss.update(y, {False: 1 - p, True: p})
    assert abs(summary["log_loss"] - loss.get()) <= 1e-12
    out = capsys.readouterr().out
    assert "no event with the join key" in out and "events expired" in out
    # 2 kB hold about 5 events: the rest waited in the spill file, with the same result
    assert (join["spilled_bytes"] > 0) == (join_memory == "0.002") and ("spilled " in out) == (join_memory == "0.002")


def test_what_replay_with_labels_refuses_is_named(tmp_path, capsys):
    write_jsonl(tmp_path / "events.jsonl", [{"id": 1, "timestamp": 5, "a": 1.0}, {"id": 2, "timestamp": 3, "a": 1.0}])
    write_jsonl(tmp_path / "labels.jsonl", [{"id": 1, "timestamp": 6, "y": 1}])
    base = ["replay", str(tmp_path / "events.jsonl"), "--labels", str(tmp_path / "labels.jsonl"), "--target", "y"]
    assert main([*base, "--label-timeout", "9"]) == 2
    assert "--labels needs --join-key" in capsys.readouterr().err
    assert main([*base, "--join-key", "id", "--label-timeout", "9", "--scale", "all"]) == 2
    assert "--scale does not work with --labels yet" in capsys.readouterr().err
    assert main([*base, "--join-key", "id", "--label-timeout", "-1"]) == 2
    assert "timeout must be a number of seconds >= 0" in capsys.readouterr().err
    assert main([*base, "--join-key", "id", "--label-timeout", "9", "--join-memory", "0"]) == 2
    assert "--join-memory must be a number of MB > 0, got 0.0" in capsys.readouterr().err
    assert main([*base, "--join-key", "id", "--label-timeout", "9"]) == 2  # the events go back in time
    assert "timestamp 3.0 of line 2 is before the one before it, 5.0; sort the file" in capsys.readouterr().err


def test_the_join_hands_back_early_labels_duplicates_and_expiries_as_documented():
    join = LabelJoin(timeout=5.0)
    assert join.label("k", True, time=1.0, where=3) is None  # before its event: it waits
    assert join.event("k", {"a": 1.0}, proba=0.5, time=2.0) == ("k", {"a": 1.0}, True, 0.5)
    join.event("e", {"a": 2.0}, proba=0.1, time=3.0)
    with pytest.raises(ValueError, match="join key 'e' is waiting for its label already"):
        join.event("e", {"a": 2.0}, proba=0.1, time=3.5)
    assert join.advance(8.0) == ([], [])  # 3 + 5 >= 8: still in time
    join.label("lost", False, time=8.0, where=9)
    assert join.advance(13.5) == ([], [("lost", 9)])  # e dropped, the label unmatched
    assert join.counts() | {"delay_p50": 0} == {
        "events": 3, "join_rate": 1 / 3, "joined": 1, "events_expired": 1, "labels_unmatched": 1, "duplicates": 1,
        "events_waiting": 0, "labels_waiting": 0, "delay_p50": 0, "delay_p90": 0.0, "delay_p99": 0.0,
        "spilled_bytes": 0}  # fmt: skip


def test_the_delay_histogram_is_within_one_percent_and_fixed_in_size():
    rng = random.Random(3)
    delays = sorted(rng.lognormvariate(2, 2) for _ in range(20_000))
    histogram = DelayHistogram()
    for d in delays:
        histogram.add(d)
    for q in (50, 90, 99):
        exact = delays[math.ceil(len(delays) * q / 100) - 1]
        assert exact <= histogram.percentile(q) <= exact * 1.0101
    assert len(histogram.counts) == DelayHistogram.N + 2


def test_the_join_store_spills_its_oldest_to_disk_and_answers_as_an_ordered_dict():
    """Random puts, pops by key and expiries from the oldest end, against an OrderedDict,
    with memory for about four records: most of the time most of them are on disk."""
    from collections import OrderedDict

    from stream_logreg.join_store import ENTRY_OVERHEAD, JoinStore, spill_folder

    rng = random.Random(5)
    store, reference = JoinStore(memory_bytes=4 * (ENTRY_OVERHEAD + 30)), OrderedDict()
    store.HEAD_ROWS = 7  # the file's oldest rows come back in many small batches
    spilled_at_most = 0
    for step in range(6000):
        draw = rng.random()
        if draw < 0.5:
            key = f"k{step}"
            payload = rng.randbytes(rng.randrange(1, 60))
            store.put(key, float(step), payload)
            reference[key] = (float(step), payload)
        elif draw < 0.8:
            key = f"k{rng.randrange(step + 1)}"  # often one that is gone, or never was
            assert store.pop(key) == reference.pop(key, None)
        elif reference:
            key, value = next(iter(reference.items()))
            assert store.oldest() == (key, *value)
            del reference[key]
            assert store.pop(key) == value
        probe = f"k{rng.randrange(step + 1)}"
        assert len(store) == len(reference) and (probe in store) == (probe in reference)
        assert store.recent_bytes <= store.memory_bytes
        spilled_at_most = max(spilled_at_most, store.spilled)
    assert spilled_at_most > 100 and all(key in store for key in reference)
    assert store.oldest() == (next(iter(reference)), *next(iter(reference.values())))
    assert store.disk_bytes() > 0
    # SQLite unlinked its temporary file as it opened it: nothing to find, even now
    assert not [name for name in os.listdir(spill_folder()) if name.startswith("etilqs_")]
    store.close()
    assert store.disk_bytes() == 0 and len(store) == 0


def test_an_events_features_go_to_bytes_and_back_bit_for_bit():
    from stream_logreg.join_store import decode_event, encode_event

    rng = random.Random(8)
    specials = [0.0, -0.0, 5e-324, -1.7976931348623157e308, 1 / 3]
    for _ in range(500):
        x = {(rng.randrange(2**20) if rng.random() < 0.5 else f"f{rng.randrange(100)}=\u00e9"): rng.choice(
            [rng.gauss(0, 1e6), rng.choice(specials)]) for _ in range(rng.randrange(0, 30))}  # fmt: skip
        proba = rng.random()
        back, back_proba = decode_event(encode_event(x, proba))
        assert list(back) == list(x) and all(type(a) is type(b) for a, b in zip(back, x, strict=True))
        assert [v.hex() for v in back.values()] == [v.hex() for v in x.values()] and back_proba == proba


def test_a_spill_file_that_cannot_be_written_stops_the_replay_naming_the_fix(tmp_path, capsys, monkeypatch):
    """A full disk (or a folder not writable) under the join's spill file: one line naming
    the folder and the fix, exit 2, what was learned before it reported; the file closed."""
    import sqlite3

    from stream_logreg import join_store

    connect = sqlite3.connect
    made = []

    class FullDisk:
        """A connection whose inserts find the disk full."""

        def __init__(self, *args, **kwargs) -> None:
            self.real = connect(*args, **kwargs)
            self.closed = False
            made.append(self)

        def execute(self, *args):
            return self.real.execute(*args)

        def executemany(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

        def close(self) -> None:
            self.real.close()
            self.closed = True

    monkeypatch.setattr(join_store.sqlite3, "connect", FullDisk)
    events = [{"id": i, "timestamp": i, "a": 1.0} for i in range(50)]
    write_jsonl(tmp_path / "events.jsonl", events)
    write_jsonl(tmp_path / "labels.jsonl", [{"id": i, "timestamp": i + 0.5, "y": i % 2} for i in range(50)])
    flags = ["--labels", str(tmp_path / "labels.jsonl"), "--join-key", "id", "--label-timeout", "10",
             "--target", "y", "--join-memory", "0.0001"]  # fmt: skip
    assert main(["replay", str(tmp_path / "events.jsonl"), *flags]) == 2
    captured = capsys.readouterr()
    assert f"the label join's spill file (a temporary file in {join_store.spill_folder()}) failed: " in captured.err
    assert "database or disk is full" in captured.err
    assert "free disk space there, point SQLITE_TMPDIR at a larger disk, or give the join more memory" in captured.err
    assert "labels joined" in captured.out
    assert made and all(connection.closed for connection in made)
