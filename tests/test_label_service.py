"""``consume --labels-topic`` against a real broker: events predicted on arrival, learned when
their labels come, checked against a plain in-memory pass (tests/test_delayed.py) and
``replay --labels`` on the same data, across SIGKILLs."""

import json
import random
import signal
import urllib.request

from kafka import KafkaProducer
from river import metrics
from test_delayed import plain_pass, stream, write_jsonl
from test_exactly_once import events, exchanged_models, kill_after_a_checkpoint, read_committed, start

from stream_logreg import LogisticRegression
from stream_logreg.broker import free_port
from stream_logreg.cli import main
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.kafka_admin import ensure_topic

from test_service import produce, wait_until

POISON = [b"not json", b'{"id": 5, "a": 1.0}']  # undecodable; no timestamp


def produce_with_poison(bootstrap: str, topic: str, records: list[dict], partitions: int = 1) -> int:
    """Produce the records keyed by their id, to partition id % ``partitions``, and a poison
    record after every 100th; returns how many poison."""
    ensure_topic(bootstrap, topic, partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    poison = 0
    for i, record in enumerate(records):
        partition = record["id"] % partitions
        producer.send(topic, json.dumps(record).encode(), str(record["id"]).encode(), partition=partition)
        if i % 100 == 50:
            producer.send(topic, POISON[i % 2], b"poison", partition=partition)
            poison += 1
    producer.flush()
    producer.close()
    return poison


def labelled(bootstrap: str, topic: str, group: str, instance: str, log, *extra: str):
    flags = ["--labels-topic", f"{topic}-labels", "--join-key", "id", "--label-timeout", "60", "--target", "clicked",
             "--optimizer", "adagrad", "--lr", "0.2"]  # fmt: skip
    return start(bootstrap, topic, group, instance, log, *flags, *extra)


def assert_plain_pass(bootstrap: str, topic: str, group: str, events_, labels, on_timeout: str, poison: int) -> None:
    """The group's model, counters and metrics are the plain pass's; every prediction and
    dead letter is published once."""
    want, scored, counts = plain_pass(events_, labels, 60.0, on_timeout)
    # (The broker writes a transaction's commit markers after the commit returns: a reader
    # right after the service's exit may see the snapshot before the last, for a moment.)
    wait_until(lambda: [m.n_steps for m, _ in exchanged_models(bootstrap, group, topic).values()] == [want.n_steps])
    ((model, progress),) = exchanged_models(bootstrap, group, topic).values()
    assert model.weights == want.weights and model.intercept == want.intercept  # bit for bit
    assert model.n_steps == want.n_steps == progress["counters"]["learned"] == len(scored)
    join = progress["counters"]["join"]
    assert (join["joined"], join["events_expired"], join["labels_unmatched"]) == (
        counts["joined"], counts["expired"], counts["unmatched"])  # fmt: skip
    assert join["events"] == len(events_) and counts["unmatched"] >= 20 and counts["expired"] > 100
    assert progress["counters"]["dead_lettered"] == poison + counts["unmatched"]
    loss = metrics.LogLoss()
    for p, y in scored:
        loss.update(y, {False: 1 - p, True: p})
    assert abs(ProgressiveMetrics.from_state(progress["metrics"]).log_loss - loss.get()) <= 1e-12
    predictions = [json.loads(r.value) for r in read_committed(bootstrap, f"{topic}-predictions")]
    assert sorted(int(p["join_key"]) for p in predictions) == [e["id"] for e in events_]  # each event once
    versions = [p["model_version"] for p in sorted(predictions, key=lambda p: p["offset"])]
    assert versions[0] == 0 and versions == sorted(versions) and versions[-1] <= model.n_steps
    dead = read_committed(bootstrap, f"{topic}-dead")
    assert len(dead) == poison + counts["unmatched"]
    sources = [(dict(r.headers)["source_topic"], int(dict(r.headers)["source_offset"])) for r in dead]
    assert len(set(sources)) == len(sources)  # each dead letter once
    reasons = [dict(r.headers)["reason"].decode() for r in dead]
    assert sum("came within the timeout" in r for r in reasons) == counts["unmatched"]


def test_labels_that_come_later_are_learned_as_a_plain_pass_and_replay_learn_them(
    kafka_bootstrap, topic, tmp_path, capsys
):
    events_, labels = stream(3000, seed=11)
    poison = produce_with_poison(kafka_bootstrap, topic, events_)
    poison += produce_with_poison(kafka_bootstrap, f"{topic}-labels", labels)
    port = free_port()
    flags = ["--idle-timeout", "5", "--on-timeout", "negative", "--checkpoint-every", "1000"]
    process = labelled(kafka_bootstrap, topic, "late", "a", tmp_path / "a.log", *flags, "--metrics-port", str(port))

    def scrape() -> dict[str, float]:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            return {}
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("stream_logreg_")}  # fmt: skip

    every = len(events_) + len(labels) + poison
    wait_until(lambda: scrape().get("stream_logreg_records_consumed_total") == every)
    shown = scrape()
    assert process.wait(timeout=180) == 0
    _, _, counts = plain_pass(events_, labels, 60.0, "negative")
    join = {key.split('"')[1]: value for key, value in shown.items() if key.startswith("stream_logreg_label_join")}
    assert (join["joined"], join["events_expired"]) == (counts["joined"], counts["expired"])
    assert join["join_rate"] == counts["joined"] / len(events_)
    assert join["labels_waiting"] >= 1  # the last labels, within their timeout
    assert 5 < join["delay_p50"] < join["delay_p99"] <= 60 * 1.01
    assert_plain_pass(kafka_bootstrap, topic, "late", events_, labels, "negative", poison)
    capsys.readouterr()
    assert main(["inspect", "--bootstrap-servers", kafka_bootstrap, "--state-topic", f"late-{topic}-state"]) == 0
    assert f"labels joined     {counts['joined']:,} of 3,000 events (" in capsys.readouterr().out
    # The same data as files, replayed: the same model and metrics.
    write_jsonl(tmp_path / "events.jsonl", events_)
    write_jsonl(tmp_path / "labels.jsonl", labels)
    saved, report = tmp_path / "replayed.json", tmp_path / "report.json"
    flags = ["--labels", str(tmp_path / "labels.jsonl"), "--join-key", "id", "--label-timeout", "60", "--on-timeout",
             "negative", "--target", "clicked", "--optimizer", "adagrad", "--lr", "0.2", "--save", str(saved),
             "--report", str(report)]  # fmt: skip
    assert main(["replay", str(tmp_path / "events.jsonl"), *flags]) == 0
    ((model, progress),) = exchanged_models(kafka_bootstrap, "late", topic).values()
    replayed = LogisticRegression.load(saved)
    assert replayed.weights == model.weights and replayed.intercept == model.intercept
    assert json.loads(report.read_text())["summary"]["log_loss"] == progress["metrics"]["log_loss"]


def test_sigkilled_three_times_with_events_and_labels_in_flight_it_ends_as_a_plain_pass(
    kafka_bootstrap, topic, tmp_path
):
    events_, labels = stream(16_000, seed=12)
    poison = produce_with_poison(kafka_bootstrap, topic, events_)
    poison += produce_with_poison(kafka_bootstrap, f"{topic}-labels", labels)
    log = tmp_path / "killed.log"
    options = ("--idle-timeout", "6", "--checkpoint-every", "200", "--join-memory", "0.005")  # most waits on disk
    rng = random.Random(4)
    process = labelled(kafka_bootstrap, topic, "killed", "k", log, *options)
    for run in range(1, 4):
        kill_after_a_checkpoint(log, run, rng)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        process = labelled(kafka_bootstrap, topic, "killed", "k", log, *options)
    assert process.wait(timeout=300) == 0
    assert len(events(log, "restored")) >= 4
    # Each restart read its join back: the events waiting for their labels at its checkpoint.
    restored = [e["join_changes_read"] for e in events(log, "assigned") if e["topic"] == topic]
    assert len(restored) >= 4 and sum(restored[1:]) > 0
    assert_plain_pass(kafka_bootstrap, topic, "killed", events_, labels, "drop", poison)


def test_a_partition_that_moves_to_a_new_instance_takes_its_join_along(kafka_bootstrap, topic, tmp_path):
    events_, labels = stream(8000, seed=13)
    poison = produce_with_poison(kafka_bootstrap, topic, events_, partitions=2)
    poison += produce_with_poison(kafka_bootstrap, f"{topic}-labels", labels, partitions=2)
    logs = {name: tmp_path / f"{name}.log" for name in "ab"}
    # a checkpoints (one transaction) every 20 records: slow enough to be mid-stream when b joins
    a = labelled(kafka_bootstrap, topic, "moved", "a", logs["a"], "--idle-timeout", "8", "--checkpoint-every", "20")
    kill_after_a_checkpoint(logs["a"], 1, random.Random(6))  # (not killed: b joins then)
    b = labelled(kafka_bootstrap, topic, "moved", "b", logs["b"], "--idle-timeout", "8", "--checkpoint-every", "100")
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    # The joins' outcomes are each partition's own: a plain pass over each partition's records.
    want = {"joined": 0, "expired": 0, "unmatched": 0}
    for partition in range(2):
        _, _, counts = plain_pass([e for e in events_ if e["id"] % 2 == partition],
                                  [x for x in labels if x["id"] % 2 == partition], 60.0, "drop")  # fmt: skip
        want = {k: want[k] + counts[k] for k in want}
    models = exchanged_models(kafka_bootstrap, "moved", topic)
    tallies = [progress["counters"]["join"] for _, progress in models.values()]
    got = {k: sum(t[name] for t in tallies) for k, name in
           [("joined", "joined"), ("expired", "events_expired"), ("unmatched", "labels_unmatched")]}  # fmt: skip
    assert got == want and sum(t["events"] for t in tallies) == len(events_)
    learned = sum(progress["counters"]["learned"] for _, progress in models.values())
    assert learned == want["joined"]
    assert sum(progress["counters"]["dead_lettered"] for _, progress in models.values()) == poison + want["unmatched"]
    first = models["a"][0]
    for model, _ in models.values():  # one model, shared
        assert model.n_steps == learned
        assert max(abs(model.weights[n] - first.weights[n]) for n in first.weights) <= 1e-9
    predictions = [json.loads(r.value) for r in read_committed(kafka_bootstrap, f"{topic}-predictions")]
    assert sorted(int(p["join_key"]) for p in predictions) == [e["id"] for e in events_]  # each event once
    # b was given a partition a was half-way through: it read its join back from the changelog
    ends = {p: sum((e["id"] % 2 == p) * (1 + (i % 100 == 50)) for i, e in enumerate(events_)) for p in range(2)}
    moved = [e for e in events(logs["b"], "assigned") if e["topic"] == topic]
    assert moved and all(0 < e["start"] < ends[e["partition"]] and e.get("join_changes_read") for e in moved[:1])


def test_events_and_labels_of_other_partition_counts_are_refused_naming_both(kafka_bootstrap, topic, tmp_path):
    produce(kafka_bootstrap, topic, [b'{"id": 1, "timestamp": 0, "a": 1}'], partitions=2)
    produce(kafka_bootstrap, f"{topic}-labels", [b'{"id": 1, "timestamp": 1, "clicked": true}'], partitions=3)
    process = labelled(kafka_bootstrap, topic, "mismatch", "m", tmp_path / "m.log", "--idle-timeout", "5")
    assert process.wait(timeout=120) == 2
    said = (tmp_path / "m.log").read_text()
    assert "must be co-partitioned by the join key" in said
    assert f"{topic} has 2, {topic}-labels has 3" in said
