"""The ``stream-logreg`` command: ``replay``, ``consume``, ``demo``, ``inspect``, ``broker`` and ``produce``.

Bad input gets one line on stderr naming the problem and the fix, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from stream_logreg.exceptions import DataFileError, SchemaError, UsageError
from stream_logreg.features import Features
from stream_logreg.options import (
    ShowDefaults,
    add_feature_options,
    add_model_options,
    build_model,
    categorical_names,
    env_options,
    features_from,
    flag,
    model_params,
    scale_setting,
    scaler_from,
    settings_of,
)
from stream_logreg.sources import DATASETS

if TYPE_CHECKING:
    from stream_logreg import LogisticRegression

__all__ = [
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-logreg", description="Streaming online logistic regression.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=ShowDefaults, **kwargs)

    replay = command("replay", help="learn a file with progressive validation and report the metrics")
    replay.add_argument("path", nargs="?", help="a .csv, .jsonl or .parquet file (optionally .gz, .bz2, .zst)")
    replay.add_argument("--target", help="the label column (required with a file; default with --dataset: label)")
    replay.add_argument("--dataset", choices=DATASETS, help="one of river's bundled data sets instead of PATH "
                        "(default: none; give PATH or --dataset)")  # fmt: skip
    add_model_options(replay.add_argument, resumable=True)
    add_feature_options(replay.add_argument, categorical_default="auto", resumable=True)
    replay.add_argument(
        "--save", metavar="MODEL.json", help="write the model and how far it got here (default: not saved)"
    )
    replay.add_argument(
        "--resume", metavar="MODEL.json", help="go on from a model saved by --save (default: start afresh)"
    )
    replay.add_argument(
        "--report", metavar="REPORT.json", help="write the summary and learning curve as JSON (default: none)"
    )
    replay.add_argument("--plot", metavar="CURVE.png", help="write the learning curve as a PNG (default: none)")
    replay.add_argument("--every", type=int, help="records between learning-curve points (default: 1000)")
    replay.add_argument("--window", type=int, help="records in the rolling window (default: 1000)")
    replay.add_argument("--on-error", choices=("skip", "fail"), default="skip", help="what a malformed row does")
    replay.add_argument("--max-records", type=int, help="stop after this many rows (default: all; --save can resume)")
    replay.add_argument(
        "--labels",
        metavar="FILE",
        help="the labels come later, in this file (with --join-key, "
        "--label-timeout): each event is predicted on arrival, learned when its label comes (default: none)",
    )
    replay.add_argument(
        "--join-key", metavar="FIELD", help="with --labels: the field joining a label to its event (default: none)"
    )
    replay.add_argument(
        "--label-timeout",
        type=float,
        metavar="SECONDS",
        help="with --labels: how long an event waits for its label, and a label for its event (default: none)",
    )
    replay.add_argument(
        "--on-timeout",
        choices=("drop", "negative"),
        default="drop",
        help="with --labels: an event not labelled in time is dropped, or learned as a negative",
    )
    replay.add_argument(
        "--timestamp",
        default="timestamp",
        metavar="FIELD",
        help="with --labels: the time field of both files, seconds or ISO 8601 (default: timestamp)",
    )
    replay.add_argument(
        "--join-memory",
        type=float,
        default=100.0,
        metavar="MB",
        help="with --labels: memory for the events (and for the labels) waiting; the oldest beyond it "
        "wait in a temporary SQLite file in $SQLITE_TMPDIR or $TMPDIR (default: 100)",
    )

    broker = command("broker", help="run a local Kafka broker in the foreground (needs Java and Maven)")
    broker.add_argument("--port", type=int, help="client port (default: a free one)")
    broker.add_argument("--data-dir", help="keep the broker's data here (default: a temporary folder, removed at exit)")

    consume = command(
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
    option(
        "--processing-guarantee", choices=("at-least-once", "exactly-once"), default="at-least-once",
        help="at-least-once: the state in --checkpoint-dir, outputs sent again after a crash; exactly-once: the "
        "state in a compacted Kafka topic, committed with the offsets and outputs in one transaction, and one "
        "model shared by the group's instances",
    )  # fmt: skip
    option("--checkpoint-dir", help="where checkpoints are kept (at-least-once, required there; default: none)")
    option("--instance-id", default=socket.gethostname(),
           help="exactly-once: this instance's name in its group, unique per instance")  # fmt: skip
    option("--state-topic", help="exactly-once: the compacted state topic (default: <group-id>-<topic>-state)")
    option("--checkpoint-every", type=int, default=10_000, help="records between checkpoints")
    option("--checkpoint-interval", type=float, default=30.0, help="seconds between checkpoints")
    option("--predictions-topic", help="publish each prediction here (default: none)")
    option("--dead-letter-topic", help="send records that cannot be learned here (default: none; they are logged)")
    option("--metrics-port", type=int, default=9108, help="Prometheus port (0: none)")
    option("--metrics-address", default="127.0.0.1", help="the address the metrics are served on (0.0.0.0: all)")
    option(
        "--reset-model", action="store_true",
        help="start a fresh model even where the group's offsets were committed with a checkpoint this "
        "--checkpoint-dir does not hold (the records before them are then not in the model)",
    )  # fmt: skip
    add_model_options(option)
    add_feature_options(option, categorical_default="none")
    option("--max-records", type=int, help="stop after consuming this many records (default: no limit)")
    option("--max-record-bytes", type=int, default=1 << 20,
           help="a record larger than this is dead-lettered without being decoded")  # fmt: skip
    option("--max-abs-value", type=float, default=1e9,
           help="a record with a feature beyond +-this is dead-lettered, naming the field (inf: no limit)")  # fmt: skip
    option(
        "--idle-timeout", type=float,
        help="stop after this many seconds with nothing to read while the broker answers (default: never)",
    )  # fmt: skip
    option("--curve-every", type=int, default=10_000, help="records between learning-curve points in checkpoints")
    option(
        "--labels-topic", metavar="TOPIC",
        help="the labels come later, in this topic (exactly-once; with --join-key, --label-timeout): each event "
        "of --topic is predicted on arrival and learned when its label comes (default: none, labels inline)",
    )  # fmt: skip
    option("--join-key", metavar="FIELD",
           help="with --labels-topic: the field joining a label to its event (default: none)")  # fmt: skip
    option("--label-timeout", type=float, metavar="SECONDS",
           help="with --labels-topic: how long an event waits for its label, and a label for its event "
           "(default: none)")  # fmt: skip
    option("--on-timeout", choices=("drop", "negative"), default="drop",
           help="with --labels-topic: an event not labelled in time is dropped, or learned as a negative")  # fmt: skip
    option("--timestamp", default="timestamp", metavar="FIELD",
           help="with --labels-topic: the time field of events and labels, seconds or ISO 8601")  # fmt: skip
    option(
        "--join-memory", type=float, default=100.0, metavar="MB",
        help="with --labels-topic: memory for the events (and for the labels) waiting, per partition; the "
        "oldest beyond it wait in a temporary SQLite file in $SQLITE_TMPDIR or $TMPDIR",
    )  # fmt: skip

    demo = command("demo", help="watch a model learn live from a local Kafka stream (Java + Maven)")
    demo.add_argument("--dataset", choices=DATASETS, default="phishing", help="the bundled data set to stream")
    demo.add_argument("--rate", type=float, default=250.0, help="records per second")
    demo.add_argument("--records", type=int, default=6000, help="records to stream; the data set repeats")
    demo.add_argument("--keep-broker", action="store_true", help="leave the local broker running at the end")
    demo.add_argument("--out", help="folder for checkpoints, log and the PNG (default: a new temporary folder)")

    inspect = command("inspect", help="print the newest checkpoint in a checkpoint folder, or each instance's "
                                      "snapshot in an exactly-once service's state topic")  # fmt: skip
    inspect.add_argument("checkpoint_dir", nargs="?", help="the at-least-once service's --checkpoint-dir")
    inspect.add_argument("--state-topic", help="an exactly-once service's state topic, <group>-<topic>-state "
                                               "(default: none, read the checkpoint folder)")  # fmt: skip
    inspect.add_argument("--bootstrap-servers", default="127.0.0.1:9092", help="the broker holding --state-topic")
    inspect.add_argument("--top", type=int, default=10, help="how many of the largest weights to show")
    inspect.add_argument("--names-from", metavar="FILE",
                         help="a hashed model's weights are buckets: name them by the features of this file's "
                              "records (CSV, JSON lines, Parquet), besides the scaler's (default: none)")  # fmt: skip

    produce = command("produce", help="send each row of a file or bundled data set to a topic as JSON")
    produce.add_argument("path", nargs="?", help="a .csv, .jsonl or .parquet file (optionally .gz, .bz2, .zst)")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    produce.add_argument("--dataset", choices=DATASETS, help="one of river's bundled data sets instead of PATH "
                         "(default: none; give PATH or --dataset)")  # fmt: skip
    produce.add_argument("--target", default="label", help="the label's field")
    add_feature_options(produce.add_argument, categorical_default="none")
    produce.add_argument("--key", metavar="COLUMN", help="use this column's value as the message key (default: none)")
    produce.add_argument("--rate", type=float, metavar="N", help="send at most N records per second (default: no cap)")
    produce.add_argument("--partitions", type=int, default=1, help="partitions if the topic is created")
    return parser


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
            if args.state_topic:
                return run_inspect_state_topic(args.bootstrap_servers, args.state_topic, args.top, args.names_from)
            return run_inspect(args.checkpoint_dir, args.top, args.names_from)
        if args.command == "broker":
            return run_broker(args.port, args.data_dir)
        if args.command == "produce":
            return run_produce(args)
    except UsageError as e:
        print(f"stream-logreg {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout was closed early (| head): harmless, the work is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    raise AssertionError(args.command)  # argparse only lets known commands through


def run_consume(args: argparse.Namespace) -> int:
    import logging

    from consumers.service import ConsumerService, ServiceConfig, install_signal_handlers, prepare_process
    from stream_logreg.exceptions import ServiceStartError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        build_model(model_params(args))
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    featurizer = features_from(args, args.target, categorical_names(args.categorical))
    exactly_once = args.processing_guarantee == "exactly-once"
    if exactly_once and args.checkpoint_dir:
        raise UsageError(
            "--checkpoint-dir is for --processing-guarantee at-least-once; exactly-once keeps the state in "
            "the --state-topic; drop --checkpoint-dir"
        )
    if not exactly_once and not args.checkpoint_dir:
        raise UsageError("--checkpoint-dir is required (or --processing-guarantee exactly-once, state in Kafka)")
    if args.labels_topic:
        check_label_join_args(args, exactly_once)
    config = ServiceConfig(
        bootstrap_servers=args.bootstrap_servers, topic=args.topic, group_id=args.group_id, target=args.target,
        features=featurizer.features, drop=featurizer.drop, categorical=featurizer.categorical,
        hash_bits=featurizer.hash_bits, hash_seed=featurizer.hash_seed, max_depth=featurizer.max_depth,
        max_list_length=featurizer.max_list_length, scale=scale_setting(scaler_from(args.scale)),
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
        processing_guarantee=args.processing_guarantee, instance_id=args.instance_id,
        state_topic_name=args.state_topic, checkpoint_every=args.checkpoint_every,
        checkpoint_interval=args.checkpoint_interval, predictions_topic=args.predictions_topic,
        dead_letter_topic=args.dead_letter_topic, metrics_port=args.metrics_port,
        metrics_address=args.metrics_address, reset_model=args.reset_model, max_record_bytes=args.max_record_bytes,
        max_abs_value=args.max_abs_value, model=model_params(args), max_records=args.max_records,
        idle_timeout=args.idle_timeout,
        curve_every=args.curve_every, labels_topic=args.labels_topic, join_key=args.join_key or "",
        label_timeout=args.label_timeout or 0.0, on_timeout=args.on_timeout, timestamp=args.timestamp,
        join_memory_bytes=int(args.join_memory * 2**20),
    )  # fmt: skip
    try:
        service = ConsumerService(config)
    except ServiceStartError as e:
        raise UsageError(str(e)) from None
    signalled: list[int] = []
    install_signal_handlers(service, signalled)
    prepare_process()
    pause = 1.0
    while True:
        try:
            status, failure = service.run(), service.failure
        except ServiceStartError as e:  # the metrics port is taken
            raise UsageError(str(e)) from None
        if failure is None or not failure.retry:
            break
        # An aborted transaction (exactly-once): start again from the state in Kafka.
        print(f"stream-logreg consume: {failure}", file=sys.stderr)
        while not signalled:
            try:
                service = ConsumerService(config, service.consumed_at_start)
                break
            except ServiceStartError as e:  # the broker is away: try again, not too often
                print(f"stream-logreg consume: {e}; again in {pause:.0f} s", file=sys.stderr)
                time.sleep(pause)
                pause = min(2 * pause, 30.0)
        if signalled:
            return 0  # stopped while starting again: the state in Kafka is whole
        install_signal_handlers(service, signalled)
    if failure is not None:
        print(f"stream-logreg consume: {failure}", file=sys.stderr)
    return status


def check_label_join_args(args: argparse.Namespace, exactly_once: bool) -> None:
    """UsageError naming what ``consume --labels-topic`` lacks or cannot take."""
    if not exactly_once:
        raise UsageError("--labels-topic needs --processing-guarantee exactly-once: the join's state is kept in "
                         "Kafka, committed with both topics' offsets")  # fmt: skip
    for value, name in [(args.join_key, "--join-key"), (args.label_timeout, "--label-timeout")]:
        if value is None:
            raise UsageError(f"--labels-topic needs {name}")
    if args.scale:
        raise UsageError("--scale does not work with --labels-topic yet; leave it out")
    if args.labels_topic == args.topic:
        raise UsageError("--labels-topic must be another topic than --topic (the events)")
    if not (math.isfinite(args.label_timeout) and args.label_timeout >= 0):
        raise UsageError(f"--label-timeout must be a number of seconds >= 0, got {args.label_timeout}")
    if not (math.isfinite(args.join_memory) and args.join_memory > 0):
        raise UsageError(f"--join-memory must be a number of MB > 0, got {args.join_memory}")


def run_inspect(folder: str | None, top: int, names_from: str | None = None) -> int:
    from consumers.checkpoints import CheckpointStore

    if folder is None:
        raise UsageError("pass a checkpoint folder, or --state-topic for an exactly-once service's state")
    if not Path(folder).is_dir():
        raise UsageError(f"{folder} is not a folder; pass the service's --checkpoint-dir")
    checkpoint, damaged = CheckpointStore(folder).scan()
    for path, problem in damaged:
        print(f"damaged           {path}: {problem} (skipped)")
    if checkpoint is None:
        raise UsageError(f"{folder} holds no valid checkpoint")
    print(f"checkpoint        {checkpoint.path} (version {checkpoint.version})")
    print_state(checkpoint.progress, checkpoint.model, top, names_from)
    return 0


def run_inspect_state_topic(bootstrap_servers: str, topic: str, top: int, names_from: str | None = None) -> int:
    from kafka.errors import KafkaError

    from consumers.state_topic import KafkaStateStore
    from stream_logreg.kafka_admin import partition_count

    try:
        if partition_count(bootstrap_servers, topic) == 0:
            raise UsageError(f"{topic} does not exist at {bootstrap_servers}; pass the service's state topic "
                             "(<group>-<topic>-state unless it was given --state-topic)")  # fmt: skip
        snapshots, passed = KafkaStateStore(bootstrap_servers, topic, "inspect").read(timeout=30.0)
    except (KafkaError, TimeoutError) as e:
        raise UsageError(f"cannot read {topic} at {bootstrap_servers} ({e}); check the broker") from None
    for why in passed:
        print(f"damaged           {why} (skipped)")
    if not snapshots:
        raise UsageError(f"{topic} at {bootstrap_servers} holds no snapshot; pass the service's state topic")
    for instance, snapshot in sorted(snapshots.items()):
        shown = ", ".join(f"{author} {seq}" for author, seq in sorted(snapshot.clock.items())) or "none"
        print(f"instance          {instance} (version {snapshot.version}, {snapshot.parts} parts)")
        print(f"changes held      {shown}; the changes topic read to {snapshot.changes_position:,}")
        print_state(snapshot.progress, snapshot.model, top, names_from)
        print()
    return 0


def print_state(progress: dict[str, Any], model: LogisticRegression, top: int, names_from: str | None = None) -> None:
    """A checkpoint's or a snapshot's counters, metrics, model flags and largest weights."""
    metrics, counters = progress["metrics"], progress["counters"]
    print(f"records learned   {counters['learned']:,} (consumed {counters['consumed']:,}, "
          f"dead letters {counters['dead_lettered']:,})")  # fmt: skip
    offsets = progress.get("offsets") or {}
    print(f"next offsets      {', '.join(f'{p}: {o}' for p, o in offsets.items()) or '-'}")
    if "join" in counters:  # consume --labels-topic
        from stream_logreg.delayed import JoinTally

        join = JoinTally.from_state(counters["join"]).figures()
        delays = ", ".join(f"p{q} {join[f'delay_p{q}']:.3g} s" for q in (50, 90, 99))
        print(f"labels joined     {join['joined']:,} of {join['events']:,} events ({join['join_rate']:.1%}; "
              f"label delay {delays}); events expired {join['events_expired']:,}, labels unmatched "
              f"{join['labels_unmatched']:,}")  # fmt: skip
    scored = metrics["n"]
    print(f"log loss          {format(metrics['log_loss'], '.6f') if scored else 'n/a'}")
    print(f"accuracy          {format(metrics['correct'] / scored, '.4%') if scored else 'n/a'}")
    print(f"model             {' '.join(f'{flag(name)} {value}' for name, value in settings_of(model).items())}")
    print_features(progress.get("features"))
    print(f"intercept         {model.intercept:+.6g}")
    weights = sorted(model.weights.items(), key=lambda item: -abs(item[1]))[:top]
    if model.n_features is None:
        print(f"top {len(weights)} weights by size:")
        for name, weight in weights:
            print(f"  {weight:>+14.6g}  {name}")
        return
    known = bucket_names(progress.get("features"), names_from)
    source = f"the scaler's and {names_from}'s" if names_from else "the scaler's; --names-from FILE names more"
    print(f"top {len(weights)} weights by size, of {model.n_features:,} buckets, with the names known to fall in "
          f"each ({source}):")  # fmt: skip
    for bucket, weight in weights:
        names = known.get(bucket, ["?"])
        shown = " | ".join(names[:3]) + (f" | ... ({len(names) - 3} more)" if len(names) > 3 else "")
        print(f"  {weight:>+14.6g}  bucket {bucket:<9} {shown}")


def bucket_names(features: dict[str, Any] | None, names_from: str | None) -> dict[Any, list[str]]:
    """The names known to fall in each bucket of a hashed model: those the scaler keeps
    statistics of, and the features of the records of ``names_from``."""
    from stream_logreg.sources import read_rows

    if not features:
        return {}
    settings = {name: value for name, value in features["settings"].items() if name != "scale"}
    featurizer = Features(**settings)
    names = dict.fromkeys((features.get("scaler") or {}).get("stats") or {})
    if names_from:
        if not Path(names_from).is_file():
            raise UsageError(f"--names-from {names_from} is not a file; pass a CSV, JSON lines or Parquet file")
        try:
            for row in read_rows(names_from):
                with contextlib.suppress(SchemaError):  # a record the featurizer refuses names nothing
                    names.update(dict.fromkeys(featurizer.names_in(row.record or {})))
        except DataFileError as e:
            raise UsageError(f"--names-from: {e}") from None
    return featurizer.buckets(names)


def print_features(features: dict[str, Any] | None) -> None:
    """The featurizer's settings (those not at their defaults) and the scaler's statistics."""
    if not features:
        return
    defaults = {**Features("").settings(), "scale": "none"}
    changed = {name: value for name, value in features["settings"].items()
               if name != "target" and value != defaults.get(name)}  # fmt: skip
    shown = " ".join(f"{flag(name)} {','.join(value) if isinstance(value, list) else value}"
                     for name, value in changed.items())  # fmt: skip
    print(f"features          --target {features['settings']['target']} {shown}".rstrip())
    stats = (features.get("scaler") or {}).get("stats") or {}
    if stats:
        print(f"scaler            {len(stats):,} features standardized (count, mean, std):")
        for name, (count, mean, variance) in list(stats.items())[:10]:
            print(f"  {name:<28} {count:>12,.0f}  {mean:>+14.6g}  {variance**0.5:>14.6g}")


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


def produce_value(record: dict[str, Any], features: Features) -> dict[str, Any]:
    """The fields of ``record`` that ``features`` keeps, as they are sent: a string that reads
    as a finite number becomes that number (a CSV's fields are all strings), except in a
    field listed as categorical. Plain numbers are what the consumer service reads fastest.

    >>> produce_value({"id": "u1", "a": "1.5", "color": "red", "label": "1"}, Features("label", drop=["id"]))
    {'a': 1.5, 'color': 'red', 'label': 1.0}
    """
    fields = [*(features.features if features.features is not None else record), features.target]
    listed = () if isinstance(features.categorical, str) else features.categorical
    value: dict[str, Any] = {}
    for name in fields:
        if name in record and name not in features.drop and name not in value:
            field = record[name]
            if isinstance(field, str) and name not in listed:
                with contextlib.suppress(ValueError):
                    number = float(field)
                    field = number if math.isfinite(number) else field
            value[name] = field
    return value


def run_produce(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from stream_logreg.kafka_admin import ensure_topic
    from stream_logreg.sources import Row, dataset_rows, file_format, read_rows

    if (args.path is None) == (args.dataset is None):
        raise UsageError("give either a PATH or --dataset (one of them)")
    featurizer = features_from(args, args.target, categorical_names(args.categorical))
    if args.dataset:
        rows: Iterator[Row] = dataset_rows(args.dataset, args.target)
    else:
        if not Path(args.path).is_file():
            raise UsageError(f"{args.path} does not exist; check the path")
        try:
            file_format(args.path)
        except ValueError as e:
            raise UsageError(str(e)) from None
        rows = read_rows(args.path)
    try:
        ensure_topic(args.bootstrap_servers, args.topic, args.partitions)
        producer = KafkaProducer(bootstrap_servers=args.bootstrap_servers, acks="all", linger_ms=5)
    except KafkaError:
        raise UsageError(
            f"no Kafka broker answers at {args.bootstrap_servers} (waited 10 s); "
            "start one with 'stream-logreg broker' or fix --bootstrap-servers"
        ) from None
    sent = acknowledged = malformed = 0
    first_malformed: Row | None = None

    def on_ack(_: Any) -> None:
        nonlocal acknowledged
        acknowledged += 1

    start = time.monotonic()
    for row in rows:
        if row.record is None:
            malformed += 1
            first_malformed = first_malformed or row
            continue
        if args.key is not None and args.key not in row.record:
            raise UsageError(f"line {row.line} has no column {args.key!r} for --key; pick an existing column")
        key = None if args.key is None else str(row.record[args.key]).encode()
        value = orjson.dumps(produce_value(row.record, featurizer))
        producer.send(args.topic, value=value, key=key).add_callback(on_ack)
        sent += 1
        if args.rate:
            delay = start + sent / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    producer.flush()
    producer.close()
    print(f"sent {sent} records to {args.topic}; {acknowledged} acknowledged")
    if first_malformed is not None:
        print(f"skipped {malformed} malformed rows; the first: line {first_malformed.line}: {first_malformed.error}",
              file=sys.stderr)  # fmt: skip
    return 0 if acknowledged == sent else 1


if __name__ == "__main__":
    sys.exit(main())
