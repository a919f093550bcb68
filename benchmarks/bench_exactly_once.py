"""The exactly-once service: its cost, the shared model's quality, and a checkpoint's cost.

    python benchmarks/bench_exactly_once.py [--records 1000000] [--no-quix] [--sections cost,group,checkpoint]
        [--group-flags "--optimizer adagrad --lr 0.05"] [--exchange-every 10000]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS) and produces RECORDS JSON records of
20 features from a fixed logistic model (a stationary stream) twice: into a 1-partition topic
and into a 6-partition one. Then, one after the other:

1. Cost, 1-partition topic, each a whole process timed from its launch to its exit (start-up
   included) with ``--max-records RECORDS``: the at-least-once service; the exactly-once
   service; and, unless --no-quix, a Quix Streams app (``processing_guarantee="exactly-once"``)
   keeping river's LogisticRegression live (``learn_one`` per record). The exactly-once
   service's model is compared with Quix's river model (same records, same order).
2. One model across a group, 6-partition topic: 1, 2 and 3 exactly-once instances started
   together, timed until the group's committed offsets reach the end; the group's progressive
   log loss (all instances' records) against the single instance's; the delay from a
   change's making to its folding in elsewhere.
3. A checkpoint of a 2**20-weight model, then of a 2**22-weight one: the snapshot's bytes
   and the time to write it in a transaction and commit; a change of all the weights taken
   and published; the restore, and whether it gives the weights back bit for bit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.changes_topic import ChangesFeed
from consumers.group_sync import GroupSync
from consumers.state_topic import KafkaStateStore
from stream_logreg import LogisticRegression
from stream_logreg.broker import LocalKafka
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.kafka_admin import ensure_topic

FEATURES = [f"f{j}" for j in range(20)]


def produce(bootstrap: str, topic: str, records: int, partitions: int) -> None:
    ensure_topic(bootstrap, topic, partitions)
    rng = np.random.default_rng(0)
    truth = rng.normal(size=20) / 2
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    i = 0
    for start in range(0, records, 10_000):
        X = rng.normal(size=(min(10_000, records - start), 20))
        labels = rng.random(len(X)) < 1 / (1 + np.exp(-X @ truth))
        for row, label in zip(X.tolist(), labels.tolist(), strict=True):
            record = dict(zip(FEATURES, row, strict=True))
            record["label"] = int(label)
            producer.send(topic, orjson.dumps(record), partition=i % partitions)
            i += 1
    producer.flush()
    producer.close()


def consume_command(bootstrap: str, topic: str, group: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
            "--group-id", group, "--target", "label", "--metrics-port", "0", *extra]  # fmt: skip


def timed(command: list[str], log: Path) -> float:
    began = time.perf_counter()
    with log.open("wb") as out:
        subprocess.run(command, stderr=out, check=True)
    return time.perf_counter() - began


def snapshots(bootstrap: str, group: str, topic: str) -> dict:
    found, passed = KafkaStateStore(bootstrap, f"{group}-{topic}-state", "bench").read()
    assert not passed, passed
    return found


def quix_app(bootstrap: str, topic: str, records: int, out: str) -> None:
    """The Quix Streams app: river's LogisticRegression learns each record, exactly once."""
    from quixstreams import Application
    from river import linear_model, optim

    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.01))
    seen = 0
    app = Application(broker_address=bootstrap, consumer_group=f"quix-{topic}", auto_offset_reset="earliest",
                      processing_guarantee="exactly-once", loglevel="WARNING")  # fmt: skip

    def learn(value: dict) -> None:
        nonlocal seen
        y = value.pop("label")
        model.learn_one(value, bool(y))
        seen += 1
        if seen == records:
            app.stop()

    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf.update(learn)
    app.run()
    Path(out).write_text(json.dumps({"weights": model.weights, "intercept": model.intercept}))


def group_run(
    bootstrap: str, topic: str, records: int, instances: int, folder: Path, every: int, flags: list[str]
) -> dict:
    group = f"group{instances}-{every}-{topic}"
    options = ("--processing-guarantee", "exactly-once", "--checkpoint-every", str(every), "--idle-timeout", "5",
               *flags)  # fmt: skip
    began = time.perf_counter()
    logs = [folder / f"{group}-{i}.log" for i in range(instances)]
    command = consume_command(bootstrap, topic, group, *options)
    processes = [
        subprocess.Popen([*command, "--instance-id", f"i{i}"], stderr=log.open("wb")) for i, log in enumerate(logs)
    ]
    watcher = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(6)]
    while sum((watcher.committed(tp) or 0) for tp in partitions) < records:
        time.sleep(0.2)
    seconds = time.perf_counter() - began
    watcher.close()
    for process in processes:
        assert process.wait() == 0
    found = snapshots(bootstrap, group, topic)
    for name, snapshot in found.items():  # the changes published after its last snapshot
        feed = ChangesFeed(bootstrap, f"{group}-{topic}-state-changes", snapshot.changes_position)
        sync = GroupSync(snapshot.model, name, dict(snapshot.clock))
        for change in feed.catch_up():
            sync.fold(change)
        feed.close()
    models = [s.model for s in found.values()]
    gap = max(abs(m.weights[k] - w) for m in models for k, w in models[0].weights.items())
    metrics = [ProgressiveMetrics.from_state(s.progress["metrics"]) for s in found.values()]
    n = sum(m.n for m in metrics)
    lines = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.startswith("{")]
    delays = [e["fold_delay_s"] for e in lines if e.get("event") == "checkpoint" and e.get("fold_delay_s") is not None]
    return {"seconds": seconds, "rate": records / seconds, "log_loss": sum(m.n * m.log_loss for m in metrics) / n,
            "learned": n, "delays": delays, "steps": [m.n_steps for m in models], "gap": gap}  # fmt: skip


def checkpoint_cost(bootstrap: str, bits: int) -> None:
    n = 2**bits
    rng = np.random.default_rng(1)
    names = [f"feature_{i}" for i in range(n)]
    model = LogisticRegression.from_parts(
        {"params": LogisticRegression().to_parts()[0]["params"], "n_steps": 10**6, "intercept": 0.1, "names": names},
        rng.normal(size=n),
    )  # fmt: skip
    topic = f"bench-state-{int(time.time())}"
    ensure_topic(bootstrap, topic, 1, {"cleanup.policy": "compact"})
    ensure_topic(bootstrap, topic + "-changes", 1)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic, acks="all", linger_ms=5)
    producer.init_transactions()
    store = KafkaStateStore(bootstrap, topic, "bench")
    feed = ChangesFeed(bootstrap, topic + "-changes", 0)
    sync = GroupSync(model, "bench", {})
    model._state.coef[:n] += 1e-3  # every weight changed since the last checkpoint: the worst case
    for label in ("first", "second"):
        producer.begin_transaction()
        began = time.perf_counter()
        change = sync.take()
        assert change is not None
        feed.publish(producer, change)
        took = time.perf_counter() - began
        size = store.write(producer, 1, model, sync.clock, 0, {"counters": {}, "metrics": {}})
        written = model._state.coef[:n].copy()
        producer.commit_transaction()
        total = time.perf_counter() - began
        print(f"checkpoint of a 2**{bits}-weight model ({label}): snapshot {size / 1e6:.1f} MB; change of all "
              f"2**{bits} weights taken and sent in {took:.2f} s; committed in {total:.2f} s")  # fmt: skip
        model._state.coef[:n] += 1e-3
    began = time.perf_counter()
    read, _ = store.read()
    print(
        f"restore (read the state topic, check, rebuild the model): {time.perf_counter() - began:.2f} s, "
        f"weights bit for bit: {np.array_equal(read['bench'].model._state.coef[:n], written)}"
    )
    producer.close()
    feed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-quix", action="store_true", help="leave out the Quix Streams app")
    parser.add_argument("--exchange-every", type=int, default=10_000, help="--checkpoint-every of the group runs")
    parser.add_argument("--sections", default="cost,group,checkpoint", help="which of the three sections to run")
    parser.add_argument("--group-flags", default="", help="model flags of the group runs (default: SGD(0.01))")
    parser.add_argument("--quix-app", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quix_app:
        quix_app(args.quix_app[0], args.quix_app[1], args.records, args.quix_app[2])
        return
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap_servers
        one, six = f"bench-eos-{int(time.time())}", f"bench-eos6-{int(time.time())}"
        began = time.perf_counter()
        produce(bootstrap, one, args.records, 1)
        produce(bootstrap, six, args.records, 6)
        print(f"produced {args.records:,} records twice in {time.perf_counter() - began:.1f} s")
        sections = args.sections.split(",")
        limit = ("--max-records", str(args.records), "--checkpoint-every", "10000")
        if "cost" in sections:
            cost(bootstrap, one, folder, limit, args)
        if "group" in sections:
            group_quality(bootstrap, six, folder, args)
        if "checkpoint" in sections:
            print()
            checkpoint_cost(bootstrap, 20)
            checkpoint_cost(bootstrap, 22)


def cost(bootstrap: str, one: str, folder: Path, limit: tuple[str, ...], args: argparse.Namespace) -> None:
    """Section 1: the at-least-once service, the exactly-once one and Quix Streams, whole processes."""
    alo = timed(consume_command(bootstrap, one, "alo", "--checkpoint-dir", str(folder / "alo"), *limit),
                folder / "alo.log")  # fmt: skip
    eos = timed(consume_command(bootstrap, one, "eos", "--processing-guarantee", "exactly-once", *limit),
                folder / "eos.log")  # fmt: skip
    rows = [("stream-logreg consume, at-least-once", alo), ("stream-logreg consume, exactly-once", eos)]
    if not args.no_quix:
        out = folder / "quix.json"
        quix = timed([sys.executable, __file__, "--records", str(args.records), "--quix-app", bootstrap, one,
                      str(out)], folder / "quix.log")  # fmt: skip
        rows.append(("Quix Streams exactly-once + river LogisticRegression.learn_one", quix))
    print(f"\n| {args.records:,} records, 1 partition, whole process | seconds | records/s | exactly-once "
          "service's speed / it |")  # fmt: skip
    print("|---|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {args.records / seconds:,.0f} | {seconds / eos:.2f} |")
    if not args.no_quix:
        river = json.loads(out.read_text())
        (ours,) = snapshots(bootstrap, "eos", one).values()
        gap = max(abs(ours.model.weights[k] - v) for k, v in river["weights"].items())
        print(f"\nthe exactly-once service's model vs Quix's river model: max |weight difference| {gap:.1e}, "
              f"intercepts {ours.model.intercept:.12f} / {river['intercept']:.12f}")  # fmt: skip


def group_quality(bootstrap: str, six: str, folder: Path, args: argparse.Namespace) -> None:
    """Section 2: 1, 2 and 3 exactly-once instances on the 6-partition topic."""
    flags = args.group_flags.split()
    print(f"\n| {args.records:,} records, 6 partitions, exactly-once, {' '.join(flags) or 'SGD(0.01)'}, "
          f"--checkpoint-every {args.exchange_every} | records/s | progressive log loss | vs 1 instance "
          "| fold delay median / max (s) | models apart, changes exchanged |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    base = None
    for instances in (1, 2, 3):
        run = group_run(bootstrap, six, args.records, instances, folder, args.exchange_every, flags)
        assert run["learned"] == args.records and set(run["steps"]) == {args.records}, run
        base = base or run["log_loss"]
        delays = run["delays"] or [float("nan")]
        print(
            f"| {instances} instance{'s' * (instances > 1)} | {run['rate']:,.0f} | {run['log_loss']:.5f} "
            f"| {run['log_loss'] / base - 1:+.3%} | {statistics.median(delays):.2f} / {max(delays):.2f} "
            f"| {run['gap']:.1e} |"
        )


if __name__ == "__main__":
    main()
