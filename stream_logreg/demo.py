"""``stream-logreg demo``: watch a model learn live from a Kafka stream, in one command.

Starts a local broker (or uses ``$KAFKA_BOOTSTRAP_SERVERS``), streams a bundled data set
into a new topic at a steady rate with a few poison records mixed in, runs the consumer
service against it as a separate process, and shows its figures about once a second
(scraped from the service's Prometheus endpoint). At the end, or on Ctrl-C, it stops the
service (SIGTERM: final checkpoint and commit), prints a summary, writes a learning-curve
PNG and names the final model's file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson

POISON = [b'{"broken json', b'{"label": 7}', b'{"x": "abc", "label": 1}']
POISON_EVERY = 250


def scrape(port: int) -> dict[str, float]:
    """The service's stream_logreg_* metrics, or {} while it is not serving yet."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if line.startswith("stream_logreg_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def stream(bootstrap: str, topic: str, dataset: str, records: int, rate: float, sent: list[int]) -> None:
    """Send ``records`` records (the data set over and over, a poison one every 250th) at ``rate``/s."""
    from kafka import KafkaProducer

    from stream_logreg.cli import dataset_records

    rows = itertools.chain.from_iterable(dataset_records(dataset, "label") for _ in itertools.count())
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    start = time.monotonic()
    for i in range(records):
        row = next(rows)
        value = POISON[(i // POISON_EVERY) % len(POISON)] if i % POISON_EVERY == POISON_EVERY - 1 else orjson.dumps(row)
        producer.send(topic, value=value)
        sent[0] = i + 1
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush()
    producer.close()


def run_demo(dataset: str, rate: float, records: int, keep_broker: bool, out_dir: str) -> int:
    from stream_logreg.broker import LocalKafka, free_port
    from stream_logreg.cli import ensure_topic
    from stream_logreg.evaluate import plot_curve

    interactive = sys.stdout.isatty()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            print("starting a local Kafka broker (Java + Maven; the first run downloads its jars) ...", flush=True)
            kafka = LocalKafka(data_dir=tempfile.mkdtemp(prefix="stream-logreg-demo-kafka-")).start()
            if not keep_broker:
                stack.callback(kafka.close)
            bootstrap = kafka.bootstrap_servers
        topic = f"demo-{dataset}-{uuid.uuid4().hex[:6]}"
        ensure_topic(bootstrap, topic, 1)
        port = free_port()
        checkpoints = folder / "checkpoints"
        service = subprocess.Popen(
            [sys.executable, "-m", "stream_logreg.cli", "consume", "--bootstrap-servers", bootstrap, "--topic", topic,
             "--group-id", f"{topic}-learner", "--target", "label", "--checkpoint-dir", str(checkpoints),
             "--checkpoint-every", "500", "--checkpoint-interval", "5", "--metrics-port", str(port),
             "--dead-letter-topic", f"{topic}-dead-letters", "--lr", "0.05", "--intercept-lr", "0.05",
             "--curve-every", "100"],
            stdout=subprocess.DEVNULL, stderr=(folder / "service.log").open("wb"),
        )  # fmt: skip
        stack.callback(service.kill)  # a no-op once it has exited
        sent = [0]
        producer = threading.Thread(target=stream, args=(bootstrap, topic, dataset, records, rate, sent), daemon=True)
        producer.start()
        print(f"streaming {records:,} records of {dataset} into {topic} at {rate:,.0f}/s; Ctrl-C stops", flush=True)
        values: dict[str, Any] = {}
        try:
            while True:
                time.sleep(1.0)
                values = scrape(port) or values
                learned = values.get("stream_logreg_records_learned_total", 0)
                dead = values.get("stream_logreg_records_dead_lettered_total", 0)
                loss = values.get('stream_logreg_log_loss{window="cumulative"}', float("nan"))
                accuracy = values.get('stream_logreg_accuracy{window="cumulative"}', float("nan"))
                per_second = values.get("stream_logreg_records_per_second", 0)
                lag = values.get('stream_logreg_lag{partition="0"}', 0)
                line = (
                    f"learned {learned:>8,.0f} | {per_second:>7,.0f} rec/s | lag {lag:>6,.0f} | "
                    f"log loss {loss:.4f} | accuracy {accuracy:.2%} | dead letters {dead:,.0f}"
                )
                print("\r" + line if interactive else line, end="" if interactive else "\n", flush=True)
                if not producer.is_alive() and learned + dead >= sent[0]:
                    break
                if service.poll() is not None:
                    print(
                        f"\nthe consumer service exited with status {service.returncode}; see {folder / 'service.log'}"
                    )
                    return 1
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        if interactive:
            print()
        service.send_signal(signal.SIGTERM)
        status = service.wait(timeout=60)
        values = values or {}
        from consumers.checkpoints import CheckpointStore

        final = CheckpointStore(checkpoints).latest()
        png = folder / "learning-curve.png"
        curve = final.progress["metrics"]["curve"] if final else []
        if curve:  # the service's own curve: a point every 100 records, cumulative and rolling
            plot_curve(curve, str(png), title=f"Live learning from Kafka: {dataset}")
        counters = final.progress["counters"] if final else {"learned": 0, "dead_lettered": 0, "consumed": 0}
        metrics = final.progress["metrics"] if final else {"log_loss": float("nan"), "correct": 0, "n": 0}
        print("summary")
        print(f"  records produced   {sent[0]:,}")
        print(f"  records learned    {counters['learned']:,}")
        print(f"  dead letters       {counters['dead_lettered']:,}")
        print(f"  log loss           {metrics['log_loss']:.4f}")
        print(f"  accuracy           {metrics['correct'] / max(metrics['n'], 1):.2%}")
        print(f"  learning curve     {png if curve else '(no data)'}")
        print(f"  final model        {final.path if final else '(none)'}")
        if keep_broker and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            print(f"  broker left running at {bootstrap} (data in {kafka.data_dir})")
        return 0 if status == 0 else 1
