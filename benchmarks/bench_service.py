"""The consumer service's end-to-end learning rate versus the raw Kafka consumer, same topic.

    python benchmarks/bench_service.py [--records 1000000]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS), produces RECORDS JSON records of 20
features into a one-partition topic, then in one run:
1. raw: a kafka-python KafkaConsumer reading the topic and doing nothing with the records;
2. the service: ``stream-logreg consume`` (decode, predict, score, learn, checkpoint every
   100,000 records), timed from its partition assignment to its checkpoint of the last record.
Prints both rates, their ratio, and the service's resident memory after 100,000 and after
all records (from its checkpoint log lines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_logreg.broker import LocalKafka
from stream_logreg.cli import ensure_topic


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


def raw_rate(bootstrap: str, topic: str, records: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=1000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    seen, start = 0, time.perf_counter()
    while seen < records:
        for messages in consumer.poll(timeout_ms=1000).values():
            seen += len(messages)
    seconds = time.perf_counter() - start
    consumer.close()
    return records / seconds


def service_run(bootstrap: str, topic: str, records: int, folder: Path) -> tuple[float, dict[int, float]]:
    log = folder / "service.log"
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
             "--group-id", "bench", "--target", "label", "--checkpoint-dir", str(folder / "checkpoints"),
             "--checkpoint-every", "100000", "--checkpoint-interval", "3600", "--metrics-port", "0",
             "--max-records", str(records)],
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
    args = parser.parse_args()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap_servers
        topic = f"bench-{int(time.time())}"
        start = time.perf_counter()
        produce(bootstrap, topic, args.records)
        print(f"produced {args.records:,} records in {time.perf_counter() - start:.1f} s")
        raw = raw_rate(bootstrap, topic, args.records)
        service, rss = service_run(bootstrap, topic, args.records, Path(folder))
    first = min(rss, key=lambda n: abs(n - 100_000))
    last = max(rss)
    print(f"\n| {args.records:,} JSON records x 20 features | records/s |")
    print("|---|---|")
    print(f"| raw kafka-python consumer, doing nothing | {raw:,.0f} |")
    print(f"| stream-logreg consume (decode, predict, score, learn, checkpoint) | {service:,.0f} |")
    print(f"\nservice / raw = {service / raw:.2f}")
    print(f"resident memory: {rss[first]:.1f} MB after {first:,} records, {rss[last]:.1f} MB after {last:,} "
          f"(+{rss[last] - rss[first]:.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
