"""The live consumer service against a real broker: crashes, signals, poison, restarts, groups."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from river import optim

from consumers.checkpoints import CheckpointStore
from stream_logreg import LogisticRegression
from stream_logreg.broker import LocalKafka, free_port
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.kafka_admin import ensure_topic
from stream_logreg.options import settings_of

from processes import STARTED


def records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(5)}
        out.append({**x, "label": int(rng.random() < 1 / (1 + pow(2.718281828, -(x["f0"] - x["f1"]))))})
    return out


def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int = 1, keys=None) -> None:
    ensure_topic(bootstrap, topic, partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for i, value in enumerate(values):
        producer.send(topic, value=value, key=None if keys is None else keys[i])
    producer.flush()
    producer.close()


def produce_slowly(bootstrap: str, topic: str, values: list[bytes], rate: float, partitions: int = 1, keys=None):
    """Produce in a background thread at ``rate`` records/s (a live stream); returns the thread."""
    ensure_topic(bootstrap, topic, partitions)

    def send() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        began = time.monotonic()
        for i, value in enumerate(values):
            producer.send(topic, value=value, key=None if keys is None else keys[i])
            delay = began + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush()
        producer.close()

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def consume_command(bootstrap: str, topic: str, group: str, folder: Path, *extra: str, port: int = 0) -> list[str]:
    return [
        sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
        "--group-id", group, "--target", "label", "--checkpoint-dir", str(folder), "--metrics-port", str(port),
        *extra,
    ]  # fmt: skip


def start(bootstrap: str, topic: str, group: str, folder: Path, *extra: str, port: int = 0) -> subprocess.Popen:
    log = open(folder.with_suffix(".log"), "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(consume_command(bootstrap, topic, group, folder, *extra, port=port), stdout=log,
                               stderr=log)  # fmt: skip
    STARTED.append(process)  # stopped when the test ends (tests/conftest.py)
    return process


def latest(folder: Path):
    return CheckpointStore(folder).latest() if folder.exists() else None


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def learned(folder: Path) -> int:
    checkpoint = latest(folder)
    return checkpoint.progress["counters"]["learned"] if checkpoint else 0


def expected(
    data: list[dict], model: LogisticRegression | None = None
) -> tuple[LogisticRegression, ProgressiveMetrics]:
    """One clean pass over the records (with ``model``, a fresh LogisticRegression by default)."""
    import numpy as np

    model, metrics = model or LogisticRegression(), ProgressiveMetrics()
    for record in data:
        x = {k: float(v) for k, v in record.items() if k != "label"}
        metrics.update(np.array([model.predict_proba_one(x)[True]]), np.array([float(record["label"])]))
        model.learn_one(x, bool(record["label"]))
    return model, metrics


def assert_exact(folder: Path, data: list[dict], model: LogisticRegression | None = None) -> None:
    checkpoint = latest(folder)
    assert checkpoint is not None
    model, metrics = expected(data, model)
    got = checkpoint.model
    assert max(abs(got.weights[k] - model.weights[k]) for k in model.weights) <= 1e-12
    assert abs(got.intercept - model.intercept) <= 1e-12 and got.n_steps == model.n_steps
    assert checkpoint.progress["counters"]["learned"] == len(data)
    assert abs(checkpoint.progress["metrics"]["log_loss"] - metrics.log_loss) <= 1e-12
    assert checkpoint.progress["metrics"]["correct"] == metrics.correct


def committed(bootstrap: str, group: str, topic: str, partition: int = 0):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, partition), metadata=True)
    finally:
        consumer.close(autocommit=False)


def test_sigkill_at_three_random_moments_then_the_model_is_exact(kafka_bootstrap, topic, tmp_path):
    data = records(20_000, seed=1)
    stream = produce_slowly(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data], rate=1500)
    folder = tmp_path / "checkpoints"
    options = ("--checkpoint-every", "300", "--idle-timeout", "5", "--optimizer", "adagrad", "--lr", "0.05")
    rng = random.Random(7)
    moments = sorted(rng.uniform(1.0, 12.0) for _ in range(3))
    began, kills = time.monotonic(), []
    process = start(kafka_bootstrap, topic, "crash", folder, *options)
    for moment in moments:
        time.sleep(max(began + moment - time.monotonic(), 0.0))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        kills.append(learned(folder))
        process = start(kafka_bootstrap, topic, "crash", folder, *options)
    stream.join()
    assert process.wait(timeout=120) == 0
    assert kills[-1] < 20_000, f"the stream was over before the last kill: {kills}"
    assert_exact(folder, data, LogisticRegression(optim.AdaGrad(0.05)))  # AdaGrad's sums restored too


def test_sigterm_writes_a_final_checkpoint_commits_and_exits_0(kafka_bootstrap, topic, tmp_path):
    data = records(3000, seed=2)
    produce(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data])
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "term", folder, "--checkpoint-every", "1000000")
    log = folder.with_suffix(".log")
    wait_until(lambda: log.exists() and b'"event": "assigned"' in log.read_bytes())
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert process.wait(timeout=30) == 0
    assert time.monotonic() - began < 10
    checkpoint = latest(folder)
    assert checkpoint is not None
    offset = checkpoint.progress["offsets"]["0"]
    assert offset == checkpoint.progress["counters"]["learned"] > 0
    commit = committed(kafka_bootstrap, "term", topic)
    store = CheckpointStore(folder)
    assert commit.offset == offset and commit.metadata == f"{store.instance_id}:{checkpoint.version}:{store.key}"
    assert b"LeaveGroup" not in log.read_bytes() and b"UnknownMemberId" not in log.read_bytes()


POISON_KINDS = [
    (b'{"f0": 1.0, "label": ', "invalid JSON"),
    (b'{"f0": 1.0}', "the label field 'label' is missing"),
    (b'{"f0": 1.0, "label": 7}', "which is not binary"),
    (b'{"f0": "nan", "label": 1}', "which is not finite"),
    (b'{"f0": "abc", "label": 1}', "non-numeric value 'abc'"),
    (b'{"f0": {"a": {"b": {"c": {"d": 1}}}}, "label": 0}', "field 'f0.a.b.c' nests deeper than --max-depth 4"),
]


def test_poison_records_go_to_the_dead_letter_topic_and_are_never_learned(kafka_bootstrap, topic, tmp_path):
    data = records(5000, seed=3)
    values: list[bytes] = []
    valid: list[dict] = []
    expected_reasons: dict[int, str] = {}
    for i, record in enumerate(data):
        if i % 100 == 50:  # 1%
            raw, reason = POISON_KINDS[(i // 100) % len(POISON_KINDS)]
            expected_reasons[len(values)] = reason
            values.append(raw)
        else:
            valid.append(record)
            values.append(json.dumps(record).encode())
    produce(kafka_bootstrap, topic, values)
    folder, dead = tmp_path / "checkpoints", f"{topic}-dead"
    process = start(kafka_bootstrap, topic, "poison", folder, "--dead-letter-topic", dead, "--idle-timeout", "3")
    assert process.wait(timeout=120) == 0
    assert_exact(folder, valid)
    assert latest(folder).progress["counters"]["dead_lettered"] == 50  # type: ignore[union-attr]
    consumer = KafkaConsumer(dead, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)  # fmt: skip
    letters = list(consumer)
    consumer.close()
    assert len(letters) == 50
    assert b"not found in cluster metadata" not in folder.with_suffix(".log").read_bytes()  # created at start
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        offset = int(headers["source_offset"])
        assert headers["source_topic"] == topic and headers["source_partition"] == "0"
        assert letter.value == values[offset] and expected_reasons[offset] in headers["reason"]


@pytest.mark.kafka
def test_a_broker_restart_mid_stream_loses_and_repeats_nothing(tmp_path, topic):
    data = records(10_000, seed=4)
    values = [json.dumps(r).encode() for r in data]
    with LocalKafka(data_dir=tmp_path / "kafka") as kafka:
        produce(kafka.bootstrap_servers, topic, values[:6000])
        folder = tmp_path / "checkpoints"
        process = start(kafka.bootstrap_servers, topic, "restart", folder, "--checkpoint-every", "200",
                        "--idle-timeout", "5")  # fmt: skip
        log = folder.with_suffix(".log")
        wait_until(lambda: learned(folder) >= 6000)
        kafka.stop()
        # The outage outlasts --idle-timeout: the idle clock is held while the broker is away.
        wait_until(lambda: b'"event": "idle_clock_held"' in log.read_bytes())
        assert process.poll() is None
        kafka.start()
        produce(kafka.bootstrap_servers, topic, values[6000:])  # the stream goes on after the restart
        assert process.wait(timeout=180) == 0
        assert process.poll() == 0
    assert_exact(folder, data)
    assert log.read_bytes().count(b'"event": "start"') == 1  # the same process rode out the restart


def test_two_instances_split_the_partitions_and_learn_each_record_once(kafka_bootstrap, topic, tmp_path):
    data = records(8000, seed=5)
    keys = [str(i % 97).encode() for i in range(len(data))]
    values = [json.dumps(r).encode() for r in data]
    stream = produce_slowly(kafka_bootstrap, topic, values, rate=800, partitions=2, keys=keys)
    a, b = tmp_path / "a", tmp_path / "b"
    first = start(kafka_bootstrap, topic, "pair", a, "--checkpoint-every", "100", "--idle-timeout", "8")
    second = start(kafka_bootstrap, topic, "pair", b, "--checkpoint-every", "100", "--idle-timeout", "8")
    wait_until(lambda: learned(a) > 0 and learned(b) > 0)
    first.send_signal(signal.SIGTERM)  # midway: the stream is still flowing
    assert first.wait(timeout=60) == 0
    stream.join()
    assert second.wait(timeout=180) == 0
    ends = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    end_offsets = ends.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
    ends.close()
    counts = {tp.partition: offset for tp, offset in end_offsets.items()}
    assert sum(counts.values()) == 8000
    per_instance = [latest(folder).progress["counters"]["by_partition"] for folder in (a, b)]  # type: ignore[union-attr]
    assert all(per_instance), per_instance  # both learned something
    for partition, total in counts.items():
        assert sum(p.get(str(partition), 0) for p in per_instance) == total, (per_instance, counts)
        commit = committed(kafka_bootstrap, "pair", topic, partition)
        assert commit.offset == total
        assert commit.metadata.startswith(CheckpointStore(b).instance_id)  # the survivor committed last
        assert latest(b).progress["offsets"][str(partition)] == commit.offset  # type: ignore[union-attr]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(kafka_bootstrap, topic, tmp_path):
    data = records(6000, seed=6)
    produce(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data])
    folder = tmp_path / "checkpoints"
    first = start(kafka_bootstrap, topic, "damaged", folder, "--checkpoint-every", "1000", "--max-records", "2500")
    assert first.wait(timeout=120) == 0
    newest = latest(folder)
    assert newest is not None and newest.progress["offsets"]["0"] == 2500
    newest.path.write_text(newest.path.read_text()[:100])  # truncated
    previous = latest(folder)
    assert previous is not None and previous.progress["offsets"]["0"] < 2500
    again = start(kafka_bootstrap, topic, "damaged", folder, "--idle-timeout", "3")
    assert again.wait(timeout=120) == 0
    assert b"skipping a damaged checkpoint" in folder.with_suffix(".log").read_bytes()
    assert_exact(folder, data)


def test_the_metrics_endpoint_serves_the_named_metrics(kafka_bootstrap, topic, tmp_path):
    data = records(3000, seed=8)
    produce(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data] + [b"not json"])
    folder, port = tmp_path / "checkpoints", free_port()
    process = start(kafka_bootstrap, topic, "metrics", folder, "--checkpoint-every", "500", port=port)

    def scrape() -> dict[str, float]:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("stream_logreg_")}  # fmt: skip

    def done() -> bool:
        try:
            return scrape().get("stream_logreg_records_consumed_total", 0) == 3001
        except OSError:
            return False

    wait_until(done)
    values = scrape()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert values["stream_logreg_records_learned_total"] == 3000
    assert values["stream_logreg_records_dead_lettered_total"] == 1
    assert values["stream_logreg_model_version"] == 3000
    assert values['stream_logreg_lag{partition="0"}'] == 0
    assert 0.0 < values['stream_logreg_log_loss{window="cumulative"}'] < 0.7
    assert 0.5 < values['stream_logreg_accuracy{window="cumulative"}'] <= 1.0
    assert 0.5 < values['stream_logreg_accuracy{window="rolling"}'] <= 1.0
    assert values["stream_logreg_seconds_since_checkpoint"] >= 0.0
    assert values["stream_logreg_checkpoint_version"] >= 1
    assert "stream_logreg_records_per_second" in values


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_inspect_errors(tmp_path, capsys, folder):
    from stream_logreg.cli import main

    if folder == "empty":
        (tmp_path / "empty").mkdir()
    assert main(["inspect", str(tmp_path / folder)]) == 2
    assert capsys.readouterr().err.startswith("stream-logreg inspect: ")


def test_signal_handlers_stop_gently_once_and_at_once_on_a_second_ctrl_c(monkeypatch):
    """The handlers' logic (the real process-level behaviour is covered by the SIGTERM test)."""
    import types

    from consumers import service as service_module

    installed: dict = {}
    exits: list[int] = []
    monkeypatch.setattr(service_module.signal, "signal", lambda sig, handler: installed.__setitem__(sig, handler))
    monkeypatch.setattr(service_module.os, "_exit", exits.append)
    fake = types.SimpleNamespace(stop_requested=False)
    service_module.install_signal_handlers(fake)  # type: ignore[arg-type]
    installed[signal.SIGTERM](signal.SIGTERM, None)
    assert fake.stop_requested and exits == []
    installed[signal.SIGTERM](signal.SIGTERM, None)
    assert exits == []  # a repeated SIGTERM still waits for the final checkpoint
    installed[signal.SIGINT](signal.SIGINT, None)
    assert exits == [130]


def test_log_lines_from_many_threads_never_interleave(monkeypatch):
    """The producer's thread logs failed sends while the main thread logs its own events:
    each line must stay one JSON object (a CI run once read two on one line). The stream
    here lets another thread run inside every write, as a real one may while it flushes."""
    from consumers.config import event

    class YieldingStream:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, text: str) -> int:
            time.sleep(0)
            self.parts.append(text)
            return len(text)

        def flush(self) -> None:
            time.sleep(0)

    stream = YieldingStream()
    monkeypatch.setattr(sys, "stderr", stream)

    def log_many(t: int) -> None:
        for i in range(300):
            event("send_failed", thread=t, i=i)

    threads = [threading.Thread(target=log_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = "".join(stream.parts).splitlines()
    logged = sorted((e["thread"], e["i"]) for e in map(json.loads, lines))
    assert logged == [(t, i) for t in range(4) for i in range(300)]


def test_a_revocation_learns_the_batches_still_decoding_before_it_checkpoints_and_commits(tmp_path):
    """The run loop's logic (with a fake consumer): a batch decoded while the main thread
    polls is learned before a revocation's checkpoint, so the offsets committed for the
    partition cover exactly what the model learned; otherwise the partition's next owner
    would learn those records a second time."""
    import asyncio
    import types

    from consumers.record_blocks import RecordBlock
    from consumers.service import ConsumerService, ServiceConfig, _Rebalance

    data = records(50, seed=11)
    config = ServiceConfig("unused:9092", "t", "g", "label", tmp_path, metrics_port=0, curve_every=1000)
    service = ConsumerService(config)
    commits: list = []
    tp = TopicPartition("t", 0)
    service.consumer = types.SimpleNamespace(assignment=lambda: {tp}, commit_async=commits.append)  # type: ignore[assignment]
    values: list[bytes | None] = [json.dumps(r).encode() for r in data]
    messages = RecordBlock("t", 0, list(range(100, 150)), [None] * 50, values)
    service.decoding.append((0, messages, service.decoder.submit(service.rows.decode, values)))
    asyncio.run(_Rebalance(service).on_partitions_revoked({tp}))
    service.decoder.shutdown()
    assert [{t.partition: o.offset for t, o in offsets.items()} for offsets in commits] == [{0: 150}]
    assert service.decoding == []
    assert_exact(tmp_path, data)
    assert latest(tmp_path).progress["offsets"] == {"0": 150}


def test_a_block_longer_than_checkpoint_every_is_checkpointed_every_n_records(tmp_path):
    """The run loop's logic (with a fake consumer): the consumer hands over whole record
    batches, however long; a checkpoint still falls every --checkpoint-every records, and
    each commit follows the checkpoint that covers it."""
    import types

    from consumers.record_blocks import RecordBlock
    from consumers.service import ConsumerService, ServiceConfig

    data = records(250, seed=12)
    config = ServiceConfig("unused:9092", "t", "g", "label", tmp_path, checkpoint_every=100, metrics_port=0)
    service = ConsumerService(config)
    commits: list = []
    tp = TopicPartition("t", 0)

    def commit_async(offsets, callback=None):
        commits.append({t.partition: o.offset for t, o in offsets.items()})
        assert latest(tmp_path).progress["offsets"] == {str(t.partition): o.offset for t, o in offsets.items()}

    service.consumer = types.SimpleNamespace(assignment=lambda: {tp}, commit_async=commit_async)  # type: ignore[assignment]
    values: list[bytes | None] = [json.dumps(r).encode() for r in data]
    service._decode(0, RecordBlock("t", 0, list(range(1000, 1250)), [None] * 250, values))
    service._learn_decoded()
    service.decoder.shutdown()
    assert commits == [{0: 1100}, {0: 1200}]
    assert service.checkpoints.since == 50
    assert service.model.n_steps == 250


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_service_started_before_its_topic_waits_without_spinning_then_learns(kafka_bootstrap, topic, tmp_path):
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "early", folder, "--checkpoint-every", "100")
    log = folder.with_suffix(".log")
    wait_until(lambda: log.exists() and b'"event": "waiting_for_topic"' in log.read_bytes())
    began, cpu = time.monotonic(), cpu_seconds(process.pid)
    wait_until(lambda: time.monotonic() - began >= 3.0)  # a measured stretch of waiting
    assert (cpu_seconds(process.pid) - cpu) / (time.monotonic() - began) < 0.5  # a spinning loop takes ~1.0
    assert process.poll() is None
    data = records(500, seed=21)
    produce(kafka_bootstrap, topic, [json.dumps(r).encode() for r in data])
    wait_until(lambda: learned(folder) == 500)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert_exact(folder, data)
    text = log.read_text()
    assert "the topic does not exist yet" in text and text.index("waiting_for_topic") < text.index('"assigned"')


def test_the_idle_timeout_counts_from_start_when_the_topic_never_appears(kafka_bootstrap, topic, tmp_path):
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "never", folder, "--idle-timeout", "3")
    assert process.wait(timeout=120) == 0
    assert '"reason": "the topic never appeared"' in folder.with_suffix(".log").read_text()


def test_partitions_added_to_the_topic_are_picked_up(kafka_bootstrap, topic, tmp_path):
    from kafka.admin import KafkaAdminClient, NewPartitions

    data = records(400, seed=22)
    values = [json.dumps(r).encode() for r in data]
    produce(kafka_bootstrap, topic, values[:200])
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "grow", folder, "--checkpoint-every", "50", "--checkpoint-interval", "1")
    wait_until(lambda: learned(folder) == 200)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_partitions({topic: NewPartitions(total_count=2)})
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for value in values[200:]:
        producer.send(topic, value=value, partition=1)
    producer.flush()
    producer.close()
    # kafka-python refreshes its metadata every 5 minutes by default; the service every 30 s.
    wait_until(lambda: latest(folder).progress["counters"]["by_partition"].get("1") == 200, timeout=120)  # type: ignore[union-attr]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert latest(folder).progress["offsets"] == {"0": 200, "1": 200}  # type: ignore[union-attr]


def test_consume_takes_the_schema_options_of_replay(kafka_bootstrap, topic, tmp_path):
    """The README's example: `produce data.csv --key user_id`, then `consume` with the
    schema options that replay takes, learns every row, as replay learns the file."""
    from stream_logreg.cli import main

    rng = random.Random(23)
    lines = ["user_id,a,color,b,label"]
    for i in range(600):
        a, b = round(rng.gauss(0, 1), 4), round(rng.gauss(0, 1), 4)
        lines.append(f"u{i % 37},{a},{rng.choice(['red', 'green'])},{b},{int(rng.random() < 1 / (1 + math.exp(-a)))}")
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    assert (
        main(["produce", str(path), "--topic", topic, "--bootstrap-servers", kafka_bootstrap, "--key", "user_id"]) == 0
    )
    folder, dead = tmp_path / "checkpoints", f"{topic}-dead"
    process = start(kafka_bootstrap, topic, "schema", folder, "--drop", "user_id", "--categorical", "color",
                    "--dead-letter-topic", dead, "--idle-timeout", "3")  # fmt: skip
    assert process.wait(timeout=120) == 0
    checkpoint = latest(folder)
    assert checkpoint is not None and checkpoint.progress["counters"]["dead_lettered"] == 0
    saved = tmp_path / "replayed.json"
    flags = ["--target", "label", "--drop", "user_id", "--categorical", "color", "--save", str(saved)]
    assert main(["replay", str(path), *flags]) == 0
    replayed = LogisticRegression.load(saved)
    assert checkpoint.model.weights == replayed.weights and checkpoint.model.intercept == replayed.intercept
    assert replayed.n_steps == 600 and "color=red" in replayed.weights


def test_inspect_aligns_its_weight_column_and_shows_n_a_before_any_record(tmp_path, capsys):
    import pandas as pd

    from stream_logreg.cli import main

    model = LogisticRegression(optim.FTRLProximal(alpha=0.5))
    model.learn_many(pd.DataFrame({"tiny": [1e-9, 0.0], "big": [-300.0, 250.0], "mid": [1.5, -2.0]}),
                     pd.Series([True, False]))  # fmt: skip
    counters = {"consumed": 0, "learned": 0, "dead_lettered": 0, "by_partition": {}}
    progress = {"instance": "i", "topic": "t", "offsets": {}, "metrics": ProgressiveMetrics().to_state(),
                "counters": counters}  # fmt: skip
    CheckpointStore(tmp_path).write(model, progress)
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model             --optimizer ftrl --lr 0.5 --l2 0.0 --l1 0.0 --intercept-lr 0.01\n" in out
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split()[-1] for line in rows] == ["big", "mid", "tiny"]
    assert len({line.index(line.split()[-1]) for line in rows}) == 1  # the names start in one column
    assert "log loss          n/a\naccuracy          n/a\n" in out


def test_a_restart_with_other_model_flags_than_its_checkpoint_is_refused(tmp_path):
    """The service's logic (no broker needed: the check is made before it connects)."""
    from consumers.service import ConsumerService, ServiceConfig
    from stream_logreg.exceptions import ServiceStartError

    counters = {"consumed": 5, "learned": 5, "dead_lettered": 0, "by_partition": {}}
    progress = {"instance": "i", "group": "g", "topic": "t", "offsets": {"0": 5}, "counters": counters,
                "metrics": ProgressiveMetrics().to_state()}  # fmt: skip
    CheckpointStore(tmp_path).write(LogisticRegression(optim.SGD(0.05)), progress)
    config = ServiceConfig("unused:9092", "t", "g", "label", tmp_path, metrics_port=0, model={"lr": 0.01, "l2": 0.0})
    with pytest.raises(ServiceStartError, match=r"--lr 0.01 differs from the 0.05 the model in .* learns with"):
        ConsumerService(config)
    adam = ServiceConfig("unused:9092", "t", "g", "label", tmp_path, metrics_port=0, model={"optimizer": "adam"})
    with pytest.raises(ServiceStartError, match=r"--optimizer adam differs from the sgd the model in .* learns with"):
        ConsumerService(adam)
    same = ServiceConfig("unused:9092", "t", "g", "label", tmp_path, metrics_port=0, model={"lr": 0.05, "l2": 0.0})
    service = ConsumerService(same)
    assert settings_of(service.model)["lr"] == 0.05 and service.positions == {0: 5}
    service.decoder.shutdown()


def test_telemetry_shows_a_snapshot_of_the_service():
    """Telemetry reads snapshots, not the service: testable on its own."""
    import dataclasses

    from prometheus_client import generate_latest

    from consumers.telemetry import Snapshot, Telemetry

    first = Snapshot(consumed=10, learned=9, dead_lettered=1, assigned=2, lags={0: 5}, log_loss=0.5, accuracy=0.75,
                     rolling_log_loss=float("nan"), rolling_accuracy=0.5, model_version=9, checkpoint_version=1,
                     last_checkpoint=time.monotonic())  # fmt: skip
    telemetry = Telemetry(first)
    telemetry.update(dataclasses.replace(first, consumed=30, learned=27, dead_lettered=3, lags={0: 0, 1: 4}))
    text = generate_latest(telemetry.registry).decode()
    for line in ("stream_logreg_records_consumed_total 30.0", "stream_logreg_records_learned_total 27.0",
                 "stream_logreg_records_dead_lettered_total 3.0", 'stream_logreg_lag{partition="1"} 4.0',
                 "stream_logreg_assigned_partitions 2.0", 'stream_logreg_log_loss{window="rolling"} 0.0',
                 'stream_logreg_accuracy{window="cumulative"} 0.75'):  # fmt: skip
        assert line in text, line
