"""The consumer service's end-to-end learning rate versus the raw Kafka consumer, same topic.

    python benchmarks/bench_service.py [--records 1000000] [--rounds 12]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS), produces RECORDS JSON records of 20
features into a one-partition topic, then, in each of ROUNDS rounds, one after the other:
1. raw, same consumer: a kafka-python KafkaConsumer with the service's own settings (a
   member of a consumer group, subscribed to the topic), reading the topic and doing nothing;
2. raw, plain: a KafkaConsumer assigned the partition directly (no group), doing nothing;
3. raw, blocks: consumer 1 reading record batches as blocks (``read_in_blocks``, as the
   service's consumer does), doing nothing: what the service's own work costs on top;
4. the service: ``stream-logreg consume`` (decode, predict, score, learn, checkpoint every
   100,000 records), timed from its partition assignment to its checkpoint of the last record.
All are timed from the partition's assignment (so each includes its first fetch). The raw
consumers run in a process with the service process's settings
(``consumers.service.prepare_process``: garbage collector, GIL switch interval). They take
turns going first. Prints each round's rates; the best rate of each over the rounds (a
shared machine has slow spells) and their ratios; the median, and the mean with its standard
error, of each round's own ratio (the rounds are paired: all run within a minute of each
other); and the service's resident memory after 100,000 and after all records (from its
checkpoint log lines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from consumers.record_blocks import read_in_blocks
from consumers.service import ServiceConfig, consumer_settings, prepare_process
from stream_logreg.broker import LocalKafka
from stream_logreg.kafka_admin import ensure_topic


def produce(bootstrap: str, topic: str, records: int) -> None:
    ensure_topic(bootstrap, topic, 1)
    rng = np.random.default_rng(0)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    names = [f"f{j}" for j in range(20)]
    for start in range(0, records, 10_000):
        X = rng.normal(size=(min(10_000, records - start), 20))
        for row in X.tolist():
            record = dict(zip(names, row, strict=True))
            record["label"] = int(row[0] + row[1] > 0)
            producer.send(topic, orjson.dumps(record))
    producer.flush()
    producer.close()


class _AssignedAt(ConsumerRebalanceListener):
    """Notes when the group first assigns a partition (the service is timed from there too)."""

    def __init__(self) -> None:
        self.at = 0.0

    def on_partitions_revoked(self, revoked: object) -> None:
        pass

    def on_partitions_assigned(self, assigned: object) -> None:
        self.at = self.at or (time.perf_counter() if assigned else 0.0)


def raw_rate(bootstrap: str, topic: str, records: int, group: str | None, blocks: bool = False) -> float:
    """Records/s of a consumer that reads ``records`` records and does nothing with them,
    from its partition's assignment to its last record: with the service's settings in
    consumer group ``group`` (reading blocks, or records), or assigned the partition."""
    assigned = _AssignedAt()
    if group is None:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=1000)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        assigned.at = time.perf_counter()
    else:
        config = ServiceConfig(bootstrap, topic, group, "label", Path("unused"))
        consumer = KafkaConsumer(**consumer_settings(config))
        if blocks:
            read_in_blocks(consumer)
        consumer.subscribe([topic], listener=assigned)
    seen = 0
    while seen < records:
        for items in consumer.poll(timeout_ms=200).values():
            seen += sum(len(block) for block in items) if blocks else len(items)
    seconds = time.perf_counter() - assigned.at
    consumer.close()
    return records / seconds


def service_run(
    bootstrap: str, topic: str, records: int, folder: Path, group: str, *flags: str
) -> tuple[float, dict[int, float]]:
    """The service's records/s from its assignment to its checkpoint of the last record, and its
    resident memory (MB) at each checkpoint, by records learned."""
    log = folder / f"{group}.log"
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
             "--group-id", group, "--target", "label", "--checkpoint-dir", str(folder / group),
             "--checkpoint-every", "100000", "--checkpoint-interval", "3600", "--metrics-port", "0",
             "--max-records", str(records), *flags],
            stderr=out, check=True,
        )  # fmt: skip
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assigned = next(e["ts"] for e in events if e["event"] == "assigned")
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    done = next(e["ts"] for e in checkpoints if e["learned"] >= records)
    rss = {e["learned"]: e["rss_mb"] for e in checkpoints}
    return records / (done - assigned), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    prepare_process()  # the raw consumers run under the service process's settings
    labels = {
        "group": "raw kafka-python consumer, the service's settings (group member), doing nothing",
        "plain": "raw kafka-python consumer, partition assigned (no group), doing nothing",
        "blocks": "the same consumer reading record batches as blocks, as the service does, doing nothing",
    }
    best = dict.fromkeys([*labels, "service"], 0.0)
    paired: dict[str, list[float]] = {name: [] for name in labels}
    rss: dict[int, float] = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap_servers
        topic = f"bench-{int(time.time())}"
        start = time.perf_counter()
        produce(bootstrap, topic, args.records)
        print(f"produced {args.records:,} records in {time.perf_counter() - start:.1f} s")
        for round_ in range(args.rounds):
            names = [*labels, "service"]
            rates: dict[str, float] = {}
            for name in names[round_ % 4 :] + names[: round_ % 4]:  # each takes each turn going first
                if name == "service":
                    rates[name], rss_round = service_run(
                        bootstrap, topic, args.records, Path(folder), f"service-{topic}-{round_}"
                    )
                    if rates[name] > best[name]:
                        rss = rss_round
                else:
                    group = None if name == "plain" else f"raw-{name}-{topic}-{round_}"
                    rates[name] = raw_rate(bootstrap, topic, args.records, group, blocks=name == "blocks")
                best[name] = max(best[name], rates[name])
            for name in labels:
                paired[name].append(rates["service"] / rates[name])
            print(f"round {round_ + 1}: " + ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items())
                  + "; service / each: " + ", ".join(f"{paired[name][-1]:.2f}" for name in labels))  # fmt: skip
    first = min(rss, key=lambda n: abs(n - 100_000))
    last = max(rss)
    print(f"\n| {args.records:,} JSON records x 20 features, {args.rounds} rounds | best records/s "
          "| service / it, best of each | service / it, each round's own: median "
          "| mean ± standard error |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, label in labels.items():
        ratios = paired[name]
        error = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else math.nan
        print(f"| {label} | {best[name]:,.0f} | {best['service'] / best[name]:.2f} | {statistics.median(ratios):.2f} "
              f"| {statistics.mean(ratios):.2f} ± {error:.2f} |")  # fmt: skip
    print(f"| stream-logreg consume (decode, predict, score, learn, checkpoint) | {best['service']:,.0f} | | | |")
    print(f"\nresident memory: {rss[first]:.1f} MB after {first:,} records, {rss[last]:.1f} MB after {last:,} "
          f"({rss[last] - rss[first]:+.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
