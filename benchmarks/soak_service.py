"""Soak: the consumer service's resident memory over a long stream.

    python benchmarks/soak_service.py [--records 10000000]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS), produces RECORDS JSON records of 20
features (one in 1,000 poison) into a one-partition topic while the service runs with
metrics, predictions and dead letters on and a checkpoint every 1,000,000 records; each
checkpoint logs the service's resident memory. Prints it at each checkpoint (the first
comes early, at the group's first rebalance) and the growth from the first million on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaProducer

from stream_logreg.broker import LocalKafka, free_port
from stream_logreg.kafka_admin import ensure_topic

MILLION = 1_000_000


def produce(bootstrap: str, topic: str, records: int) -> None:
    rng = np.random.default_rng(0)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    names = [f"f{j}" for j in range(20)]
    for start in range(0, records, 10_000):
        X = rng.normal(size=(min(10_000, records - start), 20))
        for i, row in enumerate(X.tolist()):
            if (start + i) % 1000 == 999:
                producer.send(topic, b'{"f0": "poison", "label": 1}')
                continue
            record = dict(zip(names, row, strict=True))
            record["label"] = int(row[0] + row[1] > 0)
            producer.send(topic, orjson.dumps(record))
    producer.flush()
    producer.close()


def soak(bootstrap: str, records: int, folder: Path) -> list[tuple[int, float]]:
    topic = f"soak-{int(time.time())}"
    ensure_topic(bootstrap, topic, 1)
    log = folder / "service.log"
    command = [
        sys.executable, "-P", "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
        "--group-id", f"{topic}-g", "--target", "label", "--checkpoint-dir", str(folder / "checkpoints"),
        "--checkpoint-every", str(MILLION), "--checkpoint-interval", "3600", "--metrics-port", str(free_port()),
        "--predictions-topic", f"{topic}-predictions", "--dead-letter-topic", f"{topic}-dead",
        "--max-records", str(records),
    ]  # fmt: skip
    producer = threading.Thread(target=produce, args=(bootstrap, topic, records))
    began = time.monotonic()
    with log.open("wb") as out:
        service = subprocess.Popen(command, stdout=out, stderr=out)
        producer.start()
        producer.join()
        print(f"produced {records:,} records in {time.monotonic() - began:.0f} s", flush=True)
        if service.wait() != 0:
            raise SystemExit(f"the service failed; see {log}")
    print(f"the service was done after {time.monotonic() - began:.0f} s", flush=True)
    points = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"event": "checkpoint"' in line:
            entry = json.loads(line)
            points.append((entry["learned"], entry["rss_mb"]))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10 * MILLION)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            bootstrap = stack.enter_context(LocalKafka()).bootstrap_servers
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        points = soak(bootstrap, args.records, folder)
    print("| checkpoint at (records learned) | resident MB |")
    print("|---|---|")
    for learned, rss in points:
        print(f"| {learned:,} | {rss:.1f} |")
    after_first_million = [(learned, rss) for learned, rss in points if learned >= MILLION]
    if len(after_first_million) >= 2:
        (a, ra), (b, rb) = after_first_million[0], after_first_million[-1]
        print(f"growth from {a:,} to {b:,} records learned: {rb - ra:+.1f} MB")


if __name__ == "__main__":
    main()
