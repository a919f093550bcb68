"""``stream-logreg demo``: watch a model learn live from a Kafka stream, in one command.

Starts a local broker (or uses ``$KAFKA_BOOTSTRAP_SERVERS``), starts the consumer service
as a separate process and waits until it owns the demo topic's partition, then streams a
bundled data set into the topic at a steady rate with a few poison records mixed in. While
it runs, a live view (``rich``) shows the service's figures, scraped from its Prometheus
endpoint twice a second; without a terminal it prints one plain line a second instead.
At the end, or on Ctrl-C, it stops the service (SIGTERM: final checkpoint and commit),
prints a summary, writes a learning-curve PNG and names the final model's file. The
broker, its data and the service are cleaned up; the output folder is kept.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "run_demo",
    "service_command",
]

POISON = [b'{"broken json', b'{"label": 7}', b'{"x": "abc", "label": 1}', b'{"popup_window": 1e300, "label": 1}']
# The events' service takes any string (one-hot): its poison is what its featurizer refuses.
EVENTS_SAMPLE = 5000  # the events written out for `inspect --names-from`
EVENTS_POISON = [b'{"broken json', b'{"label": 7}', b'{"device": {"os": {"a": {"b": {"c": 1}}}}, "label": 1}',
                 b'{"price": 1e300, "label": 1}']  # fmt: skip
POISON_EVERY = 250
# The service's flags per data set: the events are nested, hold strings, a high-cardinality
# id and unscaled numbers, so they are hashed and standardized, and learned with AdaGrad.
SERVICE_FLAGS = {
    "events": ("--categorical", "auto", "--hash-bits", "18", "--scale", "all", "--optimizer", "adagrad", "--lr", "0.2"),
}
PLAIN_FLAGS = ("--lr", "0.05", "--intercept-lr", "0.05")


def service_command(*flags: str) -> list[str]:
    """The command that runs ``stream-logreg consume`` with ``flags`` in a new process.

    ``-P`` keeps the working directory off ``sys.path``: run from a clone's root, where a
    ``stream_logreg/`` source folder sits without its compiled extensions, the installed
    package is still the one imported.
    """
    return [sys.executable, "-P", "-m", "stream_logreg.cli", "consume", *flags]


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


def demo_values(dataset: str, records: int) -> Iterator[bytes]:
    """``records`` JSON records of ``dataset`` (repeated as needed), a poison one every 250th."""
    from stream_logreg.sources import dataset_records

    rows = itertools.chain.from_iterable(dataset_records(dataset, "label") for _ in itertools.count())
    poison = EVENTS_POISON if dataset == "events" else POISON
    for i in range(records):
        row = next(rows)
        yield poison[(i // POISON_EVERY) % len(poison)] if i % POISON_EVERY == POISON_EVERY - 1 else orjson.dumps(row)


def stream(bootstrap: str, topic: str, values: Iterator[bytes], rate: float, sent: list[int]) -> None:
    """Send ``values`` to ``topic`` at ``rate`` per second, counting them in ``sent[0]``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    values = itertools.chain([next(values)], values)  # the data set is loaded before the clock starts
    start = time.monotonic()
    for i, value in enumerate(values):
        producer.send(topic, value=value)
        sent[0] = i + 1
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush()
    producer.close()


class Figures:
    """What the live view shows, from the service's metrics and the producer's count."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.values: dict[str, float] = {}
        self.started = time.monotonic()

    def get(self, name: str) -> float | None:
        return self.values.get(f"stream_logreg_{name}")

    @property
    def done(self) -> float:
        return (self.get("records_learned_total") or 0) + (self.get("records_dead_lettered_total") or 0)

    def rows(self, sent: int) -> list[tuple[str, str]]:
        scored = bool(self.get("records_learned_total"))

        def show(name: str, form: str, needs_records: bool = False) -> str:
            value = self.get(name)
            return "-" if value is None or (needs_records and not scored) else format(value, form)

        return [
            ("records produced", f"{sent:,} of {self.records:,}"),
            ("records learned", show("records_learned_total", ",.0f")),
            ("records/s", show("records_per_second", ",.0f")),
            ("lag", show('lag{partition="0"}', ",.0f")),
            ("log loss", show('log_loss{window="cumulative"}', ".4f", True)),
            ("accuracy", show('accuracy{window="cumulative"}', ".2%", True)),
            ("log loss, last 1,000", show('log_loss{window="rolling"}', ".4f", True)),
            ("accuracy, last 1,000", show('accuracy{window="rolling"}', ".2%", True)),
            ("dead letters", show("records_dead_lettered_total", ",.0f")),
        ]

    def line(self, sent: int) -> str:
        """One plain progress line (when there is no terminal)."""
        shown = dict(self.rows(sent))
        return (
            f"learned {shown['records learned']:>8} | {shown['records/s']:>7} rec/s | lag {shown['lag']:>6} | "
            f"log loss {shown['log loss']} | accuracy {shown['accuracy']} | dead letters {shown['dead letters']}"
        )

    def view(self, title: str, sent: int, status: str) -> Any:
        """The live view: a progress bar over the records, and the figures."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title=title, show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(justify="right")
        for name, value in self.rows(sent):
            table.add_row(name, value)
        table.add_row("elapsed", f"{time.monotonic() - self.started:.0f} s")
        return Group(status, ProgressBar(total=self.records, completed=self.done, width=60), table)


def run_demo(dataset: str, rate: float, records: int, keep_broker: bool, out_dir: str | None) -> int:
    """Run the demo; return the exit status."""
    from kafka.errors import KafkaError
    from rich.console import Console

    from stream_logreg.broker import BrokerError, LocalKafka, free_port
    from stream_logreg.exceptions import UsageError
    from stream_logreg.kafka_admin import ensure_topic

    console = Console()
    folder = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="stream-logreg-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"output folder: {folder}", flush=True)
    kafka = None
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            print("starting a local Kafka broker (Java + Maven; the first run downloads its jars) ...", flush=True)
            kafka = LocalKafka()
            if not keep_broker:
                stack.callback(kafka.close)  # stops it and removes its data
            try:
                kafka.start()
            except BrokerError as e:
                raise UsageError(str(e)) from None
            bootstrap = kafka.bootstrap_servers
        topic = f"demo-{dataset}-{uuid.uuid4().hex[:6]}"
        dead_letters = f"{topic}-dead-letters"
        try:
            ensure_topic(bootstrap, topic, 1)
            ensure_topic(bootstrap, dead_letters, 1)
        except KafkaError:
            raise UsageError(
                f"no Kafka broker answers at {bootstrap}; fix KAFKA_BOOTSTRAP_SERVERS or unset it to start a local one"
            ) from None
        port = free_port()
        checkpoints = folder / "checkpoints" / topic  # a new topic each run: a reused --out keeps working
        service_log = folder / "service.log"
        with service_log.open("wb") as log:
            service = subprocess.Popen(
                service_command(
                    "--bootstrap-servers", bootstrap, "--topic", topic, "--group-id", f"{topic}-learner",
                    "--target", "label", "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "500",
                    "--checkpoint-interval", "5", "--metrics-port", str(port), "--dead-letter-topic", dead_letters,
                    "--curve-every", "100", *SERVICE_FLAGS.get(dataset, PLAIN_FLAGS),
                ),
                stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        stack.callback(_end, service)
        figures, sent = Figures(records), [0]
        producer = threading.Thread(
            target=stream, args=(bootstrap, topic, demo_values(dataset, records), rate, sent), daemon=True
        )
        title = f"stream-logreg demo: {dataset} -> {topic}"
        status = "starting the consumer service ..."
        live = None
        if console.is_terminal:
            from rich.live import Live

            live = stack.enter_context(Live(figures.view(title, 0, status), console=console, refresh_per_second=4))
        else:
            print(status, flush=True)
        last_line = 0.0
        try:
            while True:
                time.sleep(0.5)
                figures.values = scrape(port) or figures.values
                if not producer.is_alive() and sent[0] == 0 and (figures.get("assigned_partitions") or 0) >= 1:
                    producer.start()  # the service owns the partition: the stream starts now
                    status = f"streaming {records:,} records at {rate:,.0f}/s, a poison one every {POISON_EVERY}; "
                    status += "Ctrl-C stops"
                    if live is None:
                        print(status, flush=True)
                if live is not None:
                    live.update(figures.view(title, sent[0], status))
                elif time.monotonic() - last_line >= 1.0 and producer.ident is not None:
                    last_line = time.monotonic()
                    print(figures.line(sent[0]), flush=True)
                if producer.ident is not None and not producer.is_alive() and figures.done >= sent[0]:
                    break
                if service.poll() is not None:
                    if live is not None:
                        live.stop()
                    print(f"the consumer service exited with status {service.returncode}; see {service_log}:")
                    print(_tail(service_log))
                    return 1
        except KeyboardInterrupt:
            status = "stopping ..."
        if live is not None:
            live.update(figures.view(title, sent[0], "done: final checkpoint ..."))
            live.stop()
        else:
            print(figures.line(sent[0]), flush=True)
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
        _summary(folder, checkpoints, dataset, sent[0])
        if kafka is not None and keep_broker:
            print(f"  broker             left running at {bootstrap}, PID {kafka.pid}")
            print(f"                     stop it with: kill {kafka.pid}; then remove its data: rm -r {kafka.data_dir}")
        return 0 if code == 0 else 1
    return 1  # not reached: the with block returns


def _summary(folder: Path, checkpoints: Path, dataset: str, sent: int) -> None:
    from consumers.checkpoints import CheckpointStore
    from stream_logreg.evaluate import plot_curve

    final = CheckpointStore(checkpoints).latest()
    png = folder / "learning-curve.png"
    curve = final.progress["metrics"]["curve"] if final else []
    if curve:  # the service's own curve: a point every 100 records, cumulative and rolling
        plot_curve(curve, str(png), title=f"Live learning from Kafka: {dataset}")
    counters = final.progress["counters"] if final else {"learned": 0, "dead_lettered": 0}
    metrics = final.progress["metrics"] if final else {"n": 0}
    print("summary")
    print(f"  records produced   {sent:,}")
    print(f"  records learned    {counters['learned']:,}")
    print(f"  dead letters       {counters['dead_lettered']:,}")
    n = metrics["n"]
    print(f"  log loss           {format(metrics['log_loss'], '.4f') if n else 'n/a'}")
    print(f"  accuracy           {format(metrics['correct'] / n, '.2%') if n else 'n/a'}")
    print(f"  learning curve     {png if curve else '(no data)'}")
    print(f"  final model        {final.path if final else '(none)'}")
    print(f"  service log        {folder / 'service.log'}")
    if dataset == "events" and final is not None and final.path is not None:  # hashed: a sample names them
        from stream_logreg.sources import dataset_records

        sample = folder / "events-sample.jsonl"
        records = itertools.islice(dataset_records("events", "label"), EVENTS_SAMPLE)
        sample.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
        print(f"  name the weights   stream-logreg inspect {final.path.parent} --names-from {sample}")


def _end(service: subprocess.Popen[bytes]) -> None:
    """Kill the service if it is still running (after an error); a no-op once it has exited."""
    if service.poll() is None:
        service.kill()
        service.wait()


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
