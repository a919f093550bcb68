"""The ``stream-logreg`` command: ``replay``, ``broker`` and ``produce``.

Bad input gets one line on stderr naming the problem and the fix, and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stream_logreg import LogisticRegression

DATASETS = ("phishing", "bananas", "shuttle")


class UsageError(Exception):
    """A problem with the command line or its inputs: printed as one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-logreg", description="Streaming online logistic regression.")
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="learn a file with progressive validation and report the metrics")
    replay.add_argument("path", nargs="?", help="a .csv, .jsonl or .parquet file (optionally .gz, .bz2, .zst)")
    replay.add_argument("--target", help="the label column (default for --dataset: label)")
    replay.add_argument("--dataset", choices=DATASETS, help="one of river's bundled data sets instead of PATH")
    add_model_options(replay.add_argument)
    replay.add_argument("--features", help="comma-separated columns to use (default: all but the target)")
    replay.add_argument("--drop", default="", help="comma-separated columns to ignore")
    replay.add_argument("--categorical", default="", help="comma-separated columns to one-hot encode")
    replay.add_argument("--save", metavar="MODEL.json", help="write the model and how far it got here")
    replay.add_argument("--resume", metavar="MODEL.json", help="go on from a model saved by --save")
    replay.add_argument("--report", metavar="REPORT.json", help="write the summary and learning curve as JSON")
    replay.add_argument("--plot", metavar="CURVE.png", help="write the learning curve as a PNG")
    replay.add_argument("--every", type=int, default=1000, help="records between learning-curve points")
    replay.add_argument("--window", type=int, default=1000, help="records in the rolling window")
    replay.add_argument("--on-error", choices=("skip", "fail"), default="skip", help="what a malformed row does")
    replay.add_argument("--max-records", type=int, help="stop after this many rows (then --save can resume)")

    broker = commands.add_parser("broker", help="run a local Kafka broker in the foreground (needs Java and Maven)")
    broker.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    broker.add_argument("--data-dir", default=None, help="keep the broker's data here (default: a temporary folder)")

    consume = commands.add_parser(
        "consume",
        help="the live learner: consume a topic, learn, checkpoint, commit",
        description="Every flag can also be set by an environment variable STREAM_LOGREG_<FLAG> "
        "(for example STREAM_LOGREG_BOOTSTRAP_SERVERS); a flag given on the command line wins.",
    )
    option = env_options(consume)
    option("--bootstrap-servers", required=True, metavar="HOST:PORT")
    option("--topic", required=True)
    option("--group-id", required=True)
    option("--target", required=True, help="the label's field in each JSON record")
    option("--checkpoint-dir", required=True, help="where checkpoints are kept")
    option("--checkpoint-every", type=int, default=10_000, help="records between checkpoints")
    option("--checkpoint-interval", type=float, default=30.0, help="seconds between checkpoints")
    option("--predictions-topic", help="publish each prediction here")
    option("--dead-letter-topic", help="send records that cannot be learned here")
    option("--metrics-port", type=int, default=9108, help="Prometheus port (0: none)")
    add_model_options(option)
    option("--max-records", type=int, help="stop after consuming this many records")
    option("--idle-timeout", type=float, help="stop after this many seconds without a record")
    option("--curve-every", type=int, default=10_000, help="records between learning-curve points in checkpoints")

    demo = commands.add_parser("demo", help="watch a model learn live from a local Kafka stream (Java + Maven)")
    demo.add_argument("--dataset", choices=DATASETS, default="phishing", help="the bundled data set to stream")
    demo.add_argument("--rate", type=float, default=250.0, help="records per second (default 250)")
    demo.add_argument("--records", type=int, default=2500, help="records to stream; the data set repeats")
    demo.add_argument("--keep-broker", action="store_true", help="leave the local broker running at the end")
    demo.add_argument("--out", default="stream-logreg-demo", help="folder for checkpoints, log and the PNG")

    inspect = commands.add_parser("inspect", help="print the newest checkpoint in a checkpoint folder")
    inspect.add_argument("checkpoint_dir")
    inspect.add_argument("--top", type=int, default=10, help="how many of the largest weights to show")

    produce = commands.add_parser("produce", help="send each row of a file or bundled data set to a topic as JSON")
    produce.add_argument("path", nargs="?", help="a .csv or .jsonl file (optionally .gz)")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    produce.add_argument("--dataset", choices=DATASETS, help="one of river's bundled data sets instead of PATH")
    produce.add_argument("--target", default="label", help="the label's field name for --dataset (default: label)")
    produce.add_argument("--key", metavar="COLUMN", help="use this column's value as the message key")
    produce.add_argument("--rate", type=float, default=None, metavar="N", help="send at most N records per second")
    produce.add_argument("--partitions", type=int, default=1, help="partitions if the topic is created (default 1)")
    return parser


def env_options(parser: argparse.ArgumentParser) -> Any:
    """add_argument, with the default taken from $STREAM_LOGREG_<FLAG> when that is set."""

    def option(flag: str, **kwargs: Any) -> None:
        value = os.environ.get("STREAM_LOGREG_" + flag.lstrip("-").upper().replace("-", "_"))
        if value is not None:
            kwargs["default"], kwargs["required"] = value, False
        parser.add_argument(flag, **kwargs)

    return option


def add_model_options(add_argument: Any) -> None:
    """The model's flags, through ``add_argument`` (a parser's, or :func:`env_options`'s)."""
    add_argument("--lr", type=float, default=0.01, help="learning rate of the weights (default 0.01)")
    add_argument("--l2", type=float, default=0.0, help="L2 penalty (default 0)")
    add_argument("--intercept-lr", type=float, default=0.01, help="learning rate of the intercept")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stream-logreg`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            from stream_logreg.replay_cli import run_replay

            return run_replay(args)
        if args.command == "consume":
            return run_consume(args)
        if args.command == "demo":
            from stream_logreg.demo import run_demo

            return run_demo(args.dataset, args.rate, args.records, args.keep_broker, args.out)
        if args.command == "inspect":
            return run_inspect(args.checkpoint_dir, args.top)
        if args.command == "broker":
            return run_broker(args.port, args.data_dir)
        if args.command == "produce":
            return run_produce(args)
    except UsageError as e:
        print(f"stream-logreg {args.command}: {e}", file=sys.stderr)
        return 2
    raise AssertionError(args.command)  # argparse only lets known commands through


def run_consume(args: argparse.Namespace) -> int:
    import logging

    from consumers.service import ConsumerService, ServiceConfig, install_signal_handlers, prepare_process

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        LogisticRegression(lr=args.lr, l2=args.l2, intercept_lr=args.intercept_lr)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    config = ServiceConfig(
        bootstrap_servers=args.bootstrap_servers, topic=args.topic, group_id=args.group_id, target=args.target,
        checkpoint_dir=Path(args.checkpoint_dir), checkpoint_every=args.checkpoint_every,
        checkpoint_interval=args.checkpoint_interval, predictions_topic=args.predictions_topic,
        dead_letter_topic=args.dead_letter_topic, metrics_port=args.metrics_port, lr=args.lr, l2=args.l2,
        intercept_lr=args.intercept_lr, max_records=args.max_records, idle_timeout=args.idle_timeout,
        curve_every=args.curve_every,
    )  # fmt: skip
    service = ConsumerService(config)
    install_signal_handlers(service)
    prepare_process()
    return service.run()


def run_inspect(folder: str, top: int) -> int:
    from consumers.checkpoints import CheckpointStore

    if not Path(folder).is_dir():
        raise UsageError(f"{folder} is not a folder; pass the service's --checkpoint-dir")
    checkpoint = CheckpointStore(folder).latest()
    if checkpoint is None:
        raise UsageError(f"{folder} holds no valid checkpoint")
    progress, model = checkpoint.progress, checkpoint.model
    metrics = progress["metrics"]
    counters = progress["counters"]
    print(f"checkpoint        {checkpoint.path} (version {checkpoint.version})")
    print(f"records learned   {counters['learned']:,} (consumed {counters['consumed']:,}, "
          f"dead letters {counters['dead_lettered']:,})")  # fmt: skip
    print(f"next offsets      {', '.join(f'{p}: {o}' for p, o in progress['offsets'].items()) or '-'}")
    accuracy = metrics["correct"] / metrics["n"] if metrics["n"] else float("nan")
    print(f"log loss          {metrics['log_loss']:.6f}")
    print(f"accuracy          {accuracy:.4%}")
    print(f"intercept         {model.intercept:.6g}")
    weights = sorted(model.weights.items(), key=lambda item: -abs(item[1]))[:top]
    for name, weight in weights:
        print(f"  {weight:+.6g}  {name}")
    return 0


def run_broker(port: int | None, data_dir: str | None) -> int:
    from stream_logreg.broker import BrokerError, LocalKafka

    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with LocalKafka(port=port, data_dir=data_dir) as kafka:
            print(f"Kafka is ready at {kafka.bootstrap_servers} (Ctrl-C stops it)", flush=True)
            while not stop:
                time.sleep(0.2)
            print("stopping the broker", flush=True)
    except BrokerError as e:
        raise UsageError(str(e)) from None
    return 0


def dataset_records(name: str, target: str) -> Iterator[dict[str, Any]]:
    """The rows of one of river's bundled data sets as dicts, with the label under ``target``."""
    from river import datasets

    loaders: dict[str, Any] = {"phishing": datasets.Phishing, "bananas": datasets.Bananas, "shuttle": datasets.Shuttle}
    for x, y in loaders[name]():
        yield {**x, target: int(y)}


def file_records(path: str) -> Iterator[dict[str, Any]]:
    """The rows of a .csv or .jsonl file (optionally .gz), as dicts, in file order."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{path} does not exist; check the path")
    kind = [s for s in file.suffixes if s != ".gz"][-1:]
    if kind not in ([".csv"], [".jsonl"]):
        raise UsageError(f"{path} is not a .csv or .jsonl file; convert it or pass --dataset")
    return _read_rows(file, kind == [".csv"])


def _read_rows(file: Path, is_csv: bool) -> Iterator[dict[str, Any]]:
    opener: Any = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8-sig", newline="") as f:
        if is_csv:
            yield from csv.DictReader(f)
        else:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, bootstrap_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def run_produce(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    if (args.path is None) == (args.dataset is None):
        raise UsageError("give either a PATH or --dataset (one of them)")
    records = dataset_records(args.dataset, args.target) if args.dataset else file_records(args.path)
    try:
        ensure_topic(args.bootstrap_servers, args.topic, args.partitions)
        producer = KafkaProducer(bootstrap_servers=args.bootstrap_servers, acks="all", linger_ms=5)
    except KafkaTimeoutError:
        raise UsageError(
            f"no Kafka broker answers at {args.bootstrap_servers} (waited 10 s); "
            "start one with 'stream-logreg broker' or fix --bootstrap-servers"
        ) from None
    sent = acknowledged = 0

    def on_ack(_: Any) -> None:
        nonlocal acknowledged
        acknowledged += 1

    start = time.monotonic()
    for record in records:
        if args.key is not None and args.key not in record:
            raise UsageError(f"record {sent} has no column {args.key!r} for --key; pick an existing column")
        key = None if args.key is None else str(record[args.key]).encode()
        producer.send(args.topic, value=orjson.dumps(record), key=key).add_callback(on_ack)
        sent += 1
        if args.rate:
            delay = start + sent / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    producer.flush()
    producer.close()
    print(f"sent {sent} records to {args.topic}; {acknowledged} acknowledged")
    return 0 if acknowledged == sent else 1


if __name__ == "__main__":
    sys.exit(main())
