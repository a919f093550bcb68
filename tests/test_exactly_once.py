"""The exactly-once mode against a real broker: state in Kafka, outputs exactly once for
``read_committed`` readers, one model shared by the group, across SIGKILLs, stalls and a
broker restart."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from river import optim

from consumers.changes_topic import ChangesFeed
from consumers.group_sync import GroupSync
from consumers.state_topic import KafkaStateStore
from stream_logreg import LogisticRegression
from stream_logreg.broker import LocalKafka
from stream_logreg.cli import main
from stream_logreg.evaluate import ProgressiveMetrics

from processes import STARTED
from test_service import POISON_KINDS, expected, produce_slowly, records, wait_until


def start(bootstrap: str, topic: str, group: str, instance: str, log: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
        "--group-id", group, "--target", "label", "--metrics-port", "0", "--processing-guarantee", "exactly-once",
        "--instance-id", instance, "--predictions-topic", f"{topic}-predictions",
        "--dead-letter-topic", f"{topic}-dead", *extra,
    ]  # fmt: skip
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, stdout=out, stderr=out)
    STARTED.append(process)
    return process


def poisoned(n: int, seed: int, partitions: int) -> tuple[list[bytes], list[bytes], list[dict], int]:
    """n records, 1% poison: (keys, values, the valid records in order, how many poison)."""
    keys, values, valid, poison = [], [], [], 0
    for i, record in enumerate(records(n, seed)):
        keys.append(str(i % (7 * partitions)).encode())
        if i % 100 == 50:
            values.append(POISON_KINDS[(i // 100) % len(POISON_KINDS)][0])
            poison += 1
        else:
            values.append(json.dumps(record).encode())
            valid.append(record)
    return keys, values, valid, poison


def read_committed(bootstrap: str, topic: str) -> list:
    """Every record a read_committed reader sees in the topic, all partitions, to its end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        seen: list = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "could not read to the end"
            for batch in consumer.poll(timeout_ms=500).values():
                seen += batch
        return seen
    finally:
        consumer.close()


def sources(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(partition, offset) of the record behind each prediction or dead letter, as read."""
    found = []
    for record in read_committed(bootstrap, topic):
        if topic.endswith("-dead"):
            headers = dict(record.headers)
            found.append((int(headers["source_partition"]), int(headers["source_offset"])))
        else:
            value = json.loads(record.value)
            found.append((value["partition"], value["offset"]))
    return found


def exchanged_models(bootstrap: str, group: str, topic: str) -> dict[str, tuple[LogisticRegression, dict]]:
    """Each instance's last snapshot with the changes published after it folded in (what it
    holds once the changes are exchanged), and its own counters."""
    state = KafkaStateStore(bootstrap, f"{group}-{topic}-state", "reader")
    snapshots, passed = state.read()
    assert not passed, passed
    out = {}
    for name, snapshot in snapshots.items():
        feed = ChangesFeed(bootstrap, f"{group}-{topic}-state-changes", snapshot.changes_position)
        sync = GroupSync(snapshot.model, name, dict(snapshot.clock))
        for change in feed.catch_up():
            sync.fold(change)
        feed.close()
        out[name] = (snapshot.model, snapshot.progress)
    return out


def assert_each_once(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes], partitions: int) -> None:
    """The predictions and dead letters name each source record exactly once."""
    by_partition: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    while sum(map(len, by_partition.values())) < len(values):
        for tp, batch in consumer.poll(timeout_ms=500).items():
            by_partition[tp.partition] += [r.value for r in batch]
    consumer.close()
    raw_poison = {raw for raw, _ in POISON_KINDS}
    poison = {(p, o) for p, vs in by_partition.items() for o, v in enumerate(vs) if v in raw_poison}
    predicted, dead = sources(bootstrap, f"{topic}-predictions"), sources(bootstrap, f"{topic}-dead")
    assert len(predicted) == len(set(predicted)), "a prediction was published twice"
    assert len(dead) == len(set(dead)), "a dead letter was published twice"
    every = {(p, o) for p, vs in by_partition.items() for o in range(len(vs))}
    assert set(predicted) | set(dead) == every and not set(predicted) & set(dead)
    assert set(dead) == poison


def test_one_instance_sigkilled_at_random_moments_is_bit_for_bit_a_clean_pass(kafka_bootstrap, topic, tmp_path, capsys):
    keys, values, valid, poison = poisoned(24_000, seed=21, partitions=1)  # long enough for 3 restarts
    stream = produce_slowly(kafka_bootstrap, topic, values, rate=1500, keys=keys)
    log = tmp_path / "solo.log"
    options = (
        "--checkpoint-every",
        "300",
        "--idle-timeout",
        "6",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--l2",
        "0.001",
    )
    rng = random.Random(5)
    process = start(kafka_bootstrap, topic, "solo", "solo", log, *options)
    for run in range(1, 4):
        kill_after_a_checkpoint(log, run, rng)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        process = start(kafka_bootstrap, topic, "solo", "solo", log, *options)  # no disk: all from Kafka
    stream.join()
    assert process.wait(timeout=180) == 0
    assert log.read_bytes().count(b'"event": "restored"') >= 4  # and more after an in-process restart
    ((model, progress),) = exchanged_models(kafka_bootstrap, "solo", topic).values()
    want, metrics = expected(valid, LogisticRegression(optim.Adam(0.02), l2=0.001))  # Adam's moments restored too
    assert model.weights == want.weights and model.intercept == want.intercept  # bit for bit
    assert model.n_steps == len(valid) == progress["counters"]["learned"]
    assert progress["counters"]["dead_lettered"] == poison
    got_metrics = ProgressiveMetrics.from_state(progress["metrics"])
    assert got_metrics.log_loss == metrics.log_loss and got_metrics.correct == metrics.correct
    assert_each_once(kafka_bootstrap, topic, values, keys, 1)
    capsys.readouterr()
    state_topic = ["inspect", "--bootstrap-servers", kafka_bootstrap, "--state-topic"]
    assert main([*state_topic, f"solo-{topic}-state"]) == 0
    shown = capsys.readouterr().out
    assert "instance          solo (version " in shown and f"records learned   {len(valid):,} " in shown
    assert "model             --optimizer adam --lr 0.02 --l2 0.001 --l1 0.0 --intercept-lr 0.01" in shown
    assert main([*state_topic, f"nobody-{topic}-state"]) == 2
    assert f"nobody-{topic}-state does not exist at" in capsys.readouterr().err


def test_three_instances_killed_at_random_share_one_model_and_publish_each_record_once(
    kafka_bootstrap, topic, tmp_path
):
    keys, values, valid, poison = poisoned(30_000, seed=22, partitions=6)
    stream = produce_slowly(kafka_bootstrap, topic, values, rate=2000, partitions=6, keys=keys)
    options = ("--checkpoint-every", "500", "--checkpoint-interval", "2", "--idle-timeout", "10")
    logs = {name: tmp_path / f"{name}.log" for name in "abc"}
    processes = {name: start(kafka_bootstrap, topic, "trio", name, logs[name], *options) for name in "abc"}
    rng = random.Random(8)
    runs = dict.fromkeys("abc", 1)
    for _ in range(5):
        victim = rng.choice("abc")
        kill_after_a_checkpoint(logs[victim], runs[victim], rng)
        runs[victim] += 1
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait()
        processes[victim] = start(kafka_bootstrap, topic, "trio", victim, logs[victim], *options)
    stream.join()
    for process in processes.values():
        assert process.wait(timeout=240) == 0
    models = exchanged_models(kafka_bootstrap, "trio", topic)
    assert sorted(models) == ["a", "b", "c"]
    first = models["a"][0]
    for model, _ in models.values():
        assert model.n_steps == len(valid)
        assert model.weights.keys() == first.weights.keys()
        assert max(abs(model.weights[n] - first.weights[n]) for n in first.weights) <= 1e-9
        assert abs(model.intercept - first.intercept) <= 1e-9
    assert sum(p["counters"]["learned"] for _, p in models.values()) == len(valid)
    assert sum(p["counters"]["dead_lettered"] for _, p in models.values()) == poison
    assert_each_once(kafka_bootstrap, topic, values, keys, 6)
    # They learned one model together: each that learned records folded in the others'
    # changes as it ran. (One may learn none: kafka-python can leave a consumer without an
    # assignment after a rebalance until the service starts it again, 20 s later, and by
    # then the others may have learned the whole stream.)
    checkpoints = {name: events(log, "checkpoint") for name, log in logs.items()}
    learners = [name for name, seen in checkpoints.items() if max((e["learned"] for e in seen), default=0) > 0]
    assert len(learners) >= 2
    for name in learners:
        assert max(e["changes_folded"] for e in checkpoints[name]) > 0, name


def kill_after_a_checkpoint(log: Path, runs: int, rng: random.Random) -> None:
    """Wait until the instance's ``runs``-th process has restored and written a checkpoint,
    then a random moment more (mid-transaction, mid-batch, ...). A process that started its
    service again in-process (a stuck rebalance) restored more than once."""

    def checkpointed() -> bool:
        kinds = [e["event"] for e in events(log, "restored", "checkpoint")]
        return kinds.count("restored") >= runs and kinds[-1] == "checkpoint"

    wait_until(checkpointed)
    time.sleep(rng.uniform(0.0, 1.5))


def events(log: Path, *names: str) -> list[dict]:
    lines = [line for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    return [e for e in map(json.loads, lines) if e.get("event") in names]


def test_a_stalled_instance_whose_partitions_moved_on_is_fenced(kafka_bootstrap, topic, tmp_path):
    keys, values, valid, poison = poisoned(24_000, seed=23, partitions=2)
    stream = produce_slowly(kafka_bootstrap, topic, values, rate=1000, partitions=2, keys=keys)
    options = ("--checkpoint-every", "400", "--checkpoint-interval", "2", "--idle-timeout", "10")
    logs = {name: tmp_path / f"{name}.log" for name in "ab"}
    a, b = (start(kafka_bootstrap, topic, "stall", name, logs[name], *options) for name in "ab")
    kill_after_a_checkpoint(logs["a"], 1, random.Random(3))
    before = len(events(logs["b"], "rebalance"))
    a.send_signal(signal.SIGSTOP)  # past the consumer's 6 s session: the group moves on without it
    wait_until(lambda: any(e.get("assigned") == [0, 1] for e in events(logs["b"], "rebalance")[before:]))
    time.sleep(2)  # b learns a's partitions meanwhile
    a.send_signal(signal.SIGCONT)
    stream.join()
    assert a.wait(timeout=240) == 0 and b.wait(timeout=240) == 0
    # What a had in hand when it stalled was never committed: it was fenced, and started again.
    assert events(logs["a"], "transaction_aborted") and len(events(logs["a"], "restored")) == 2
    models = exchanged_models(kafka_bootstrap, "stall", topic)
    for model, _ in models.values():
        assert model.n_steps == len(valid)
    assert max(abs(models["a"][0].weights[n] - w) for n, w in models["b"][0].weights.items()) <= 1e-9
    assert sum(p["counters"]["learned"] for _, p in models.values()) == len(valid)
    assert sum(p["counters"]["dead_lettered"] for _, p in models.values()) == poison
    assert_each_once(kafka_bootstrap, topic, values, keys, 2)


@pytest.mark.kafka
def test_a_broker_restart_under_three_instances_loses_and_repeats_nothing(tmp_path, topic):
    keys, values, valid, poison = poisoned(12_000, seed=24, partitions=3)
    with LocalKafka(data_dir=tmp_path / "kafka") as kafka:
        bootstrap = kafka.bootstrap_servers
        stream = produce_slowly(bootstrap, topic, values, rate=1000, partitions=3, keys=keys)
        options = ("--checkpoint-every", "300", "--checkpoint-interval", "2", "--idle-timeout", "10")
        logs = {name: tmp_path / f"{name}.log" for name in "abc"}
        processes = [start(bootstrap, topic, "outage", name, logs[name], *options) for name in "abc"]
        learned = lambda: sum(max([0, *(e["learned"] for e in events(log, "checkpoint"))]) for log in logs.values())  # noqa: E731
        wait_until(lambda: learned() >= 3000)
        kafka.stop()  # mid-stream, mid-transaction
        time.sleep(3)
        kafka.start()
        stream.join()  # the producer's records wait out the outage
        for process in processes:
            assert process.wait(timeout=300) == 0
        models = exchanged_models(bootstrap, "outage", topic)
        for model, _ in models.values():
            assert model.n_steps == len(valid)
        assert sum(p["counters"]["learned"] for _, p in models.values()) == len(valid)
        assert sum(p["counters"]["dead_lettered"] for _, p in models.values()) == poison
        assert_each_once(bootstrap, topic, values, keys, 3)
