"""The service's label join (``consume --labels-topic``) against the same service with the
labels inline, same run, same events.

    python benchmarks/bench_join_service.py [--events 200000] [--labelled 0.5] [--rounds 3]
        [--checkpoint-every 10000]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS) and produces, into one-partition
topics:
- EVENTS events of 20 features, one every 50 us of event time (20,000 a second), with an id
  and a timestamp; a fraction LABELLED of them gets a label on the labels topic, after a
  uniform delay of 0 to 5 s (so about 100,000 events wait at once);
- the same events with their labels inline (every one labelled), for the inline service.

Then, ROUNDS times, taking turns going first, each as ``stream-logreg consume
--processing-guarantee exactly-once`` (a checkpoint every CHECKPOINT_EVERY records) in a process of its
own, timed from its partitions' assignment to its checkpoint of the last record:
1. the join: events and labels through ``--labels-topic --join-key id --label-timeout 60``;
2. inline: the inline topic.
Prints records/s (events plus labels; inline: events), pairs learned/s, their ratio, and
each process's peak resident memory (VmHWM).
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
import uuid
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaProducer

from stream_logreg.broker import LocalKafka
from stream_logreg.kafka_admin import ensure_topic


def produce(bootstrap: str, name: str, events: int, labelled: float) -> int:
    """Write the three topics; returns how many labels."""
    for topic in (f"{name}-events", f"{name}-labels", f"{name}-inline"):
        ensure_topic(bootstrap, topic, 1)
    rng = np.random.default_rng(0)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    names = [f"f{j}" for j in range(20)]
    labels: list[tuple[float, int, bytes]] = []
    for start in range(0, events, 10_000):
        X = rng.normal(size=(min(10_000, events - start), 20))
        delays = rng.uniform(0.0, 5.0, size=len(X))
        chosen = rng.random(len(X)) < labelled
        for k, row in enumerate(X.tolist()):
            i = start + k
            moment = i * 50e-6
            event = {"id": i, "timestamp": moment, **dict(zip(names, row, strict=True))}
            y = int(row[0] + row[1] > 0)
            producer.send(f"{name}-events", orjson.dumps(event), key=str(i).encode())
            producer.send(f"{name}-inline", orjson.dumps({**event, "label": y}), key=str(i).encode())
            if chosen[k]:
                late = moment + float(delays[k])
                labels.append((late, i, orjson.dumps({"id": i, "timestamp": late, "label": y})))
    labels.sort()
    for _, i, value in labels:
        producer.send(f"{name}-labels", value, key=str(i).encode())
    producer.flush()
    producer.close()
    return len(labels)


def run(bootstrap: str, topic: str, extra: list[str], folder: Path, every: int) -> dict[str, float]:
    """One service process over ``topic``: seconds from assignment to its last checkpoint,
    records consumed and learned, peak resident memory (MB)."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    log = folder / f"{group}.log"
    command = [sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap,
               "--topic", topic, "--group-id", group, "--target", "label", "--metrics-port", "0",
               "--processing-guarantee", "exactly-once", "--instance-id", "bench", "--checkpoint-every", str(every),
               "--idle-timeout", "3", *extra]  # fmt: skip
    peak = 0.0
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
        while process.poll() is None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{process.pid}/status").read_text()
                peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) / 1024)
            time.sleep(0.2)
    if process.returncode != 0:
        raise SystemExit(f"the service failed ({process.returncode}); see {log}")
    lines = [json.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    began = min(e["ts"] for e in lines if e["event"] == "assigned")
    last = max((e for e in lines if e["event"] == "checkpoint"), key=lambda e: e["version"])
    done = next(e for e in lines if e["event"] == "checkpoint" and e["learned"] == last["learned"])
    stop = next(e for e in lines if e["event"] == "stop")
    return {"seconds": done["ts"] - began, "learned": stop["learned"], "rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--labelled", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=10_000, help="records between checkpoints")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap_servers
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        name = f"join-bench-{uuid.uuid4().hex[:6]}"
        began = time.perf_counter()
        labels = produce(bootstrap, name, args.events, args.labelled)
        print(f"produced {args.events:,} events, {labels:,} labels ({time.perf_counter() - began:.0f} s)")
        join_flags = ["--labels-topic", f"{name}-labels", "--join-key", "id", "--label-timeout", "60"]
        best: dict[str, tuple[float, float, float]] = {}
        for round_ in range(args.rounds):
            order = [("join", f"{name}-events", join_flags), ("inline", f"{name}-inline", [])]
            for kind, topic, extra in order if round_ % 2 == 0 else order[::-1]:
                got = run(bootstrap, topic, extra, folder, args.checkpoint_every)
                records = args.events + labels if kind == "join" else args.events
                rate, learned_rate = records / got["seconds"], got["learned"] / got["seconds"]
                print(f"round {round_ + 1} {kind:<6} {rate:>10,.0f} records/s {learned_rate:>10,.0f} learned/s "
                      f"({got['learned']:,} learned in {got['seconds']:.2f} s; "
                      f"peak RSS {got['rss_mb']:.0f} MB)")  # fmt: skip
                if rate > best.get(kind, (0.0, 0.0, 0.0))[0]:
                    best[kind] = (rate, learned_rate, got["rss_mb"])
        join, inline = best["join"], best["inline"]
        print(
            f"best: join {join[0]:,.0f} records/s ({join[1]:,.0f} learned/s, peak RSS {join[2]:.0f} MB); "
            f"inline {inline[0]:,.0f} records/s ({inline[1]:,.0f} learned/s, peak RSS {inline[2]:.0f} MB)"
        )
        print(f"join / inline: {join[0] / inline[0]:.2f}x records/s, {join[1] / inline[1]:.2f}x learned/s")


if __name__ == "__main__":
    main()
