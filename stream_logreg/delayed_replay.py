"""``stream-logreg replay EVENTS --labels LABELS --join-key ID --label-timeout S``: a file of
events whose labels come in another file, later, replayed as the service would live them.

Both files are read in the order of their timestamp column (``--timestamp``, seconds or ISO
8601; each file must be sorted by it) and merged: at one moment a label goes before an event,
as river's ``simulate_qa`` reveals an answer before the next question. Each event is
predicted when it arrives and waits in a :class:`~stream_logreg.delayed.LabelJoin`; each
label joined to its event is learned (one step on the event's features) and scores the
prediction made at event time. Events not labelled within the timeout are dropped or learned
as negatives (``--on-timeout``); labels that found no event are skipped rows, named.
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stream_logreg._learner import LogisticRegression
from stream_logreg.delayed import LabelJoin, Pair, join_key, parse_time
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import DataFileError, MarginError, UsageError
from stream_logreg.features import Features, parse_label
from stream_logreg.join_store import SpillError
from stream_logreg.replay import ReplayState
from stream_logreg.replay_report import figure, json_safe, print_summary, summary
from stream_logreg.sources import Row, read_rows

__all__ = ["replay_with_labels", "run_delayed_replay"]


class Timed(NamedTuple):
    time: float
    order: int  # 0: a label, 1: an event (a label goes first at one moment)
    row: Row


def _timed(
    rows: Iterator[Row], order: int, timestamp: str, path: Path, state: ReplayState, name: str
) -> Generator[Timed, None, None]:
    """The rows with their times; bad rows are skipped here, a row earlier than the one
    before it stops the replay (the file must be sorted)."""
    last = -math.inf
    for row in rows:
        if row.record is None:
            state.skip(row.line, f"{name}: {row.error}")
            continue
        try:
            moment = parse_time(timestamp, row.record.get(timestamp))
        except ValueError as e:
            state.skip(row.line, f"{name}: {e}", f"{name}: bad timestamp")
            continue
        if moment < last:
            raise DataFileError(path, row.line - 1, f"the timestamp {moment!r} of line {row.line} is before the one "
                                f"before it, {last!r}; sort the file by its {timestamp!r} column")  # fmt: skip
        last = moment
        yield Timed(moment, order, row)


def replay_with_labels(
    events: Iterator[Timed], labels: Iterator[Timed], model: LogisticRegression, features: Features,
    metrics: ProgressiveMetrics, state: ReplayState, join: LabelJoin, key_field: str,
) -> None:  # fmt: skip
    """Merge the timed events and labels and learn each joined pair, in time order."""
    scored: list[tuple[float, bool]] = []

    def learn(pair: Pair, line: int) -> None:
        try:
            model.learn_one(pair.x, pair.y)
        except MarginError as e:
            state.skip(line, str(e), "the margin is not finite (the features are too large)")
            return
        state.learned += 1
        scored.append((pair.proba, pair.y))
        if len(scored) >= 1000:
            flush()

    def flush() -> None:
        if scored:
            probas, ys = zip(*scored, strict=True)
            metrics.update(np.array(probas), np.array(ys, dtype=np.float64))
            scored.clear()

    for moment, order, row in heapq.merge(events, labels, key=lambda timed: timed[:2]):
        negatives, unmatched = join.advance(moment)
        for negative in negatives:
            learn(negative, row.line)
        for key, line in unmatched:
            state.skip(line, f"labels: no event with the join key {key!r} came within the timeout",
                       "labels: no event within the timeout")  # fmt: skip
        record = row.record or {}
        name = "labels" if order == 0 else "events"
        try:
            key = join_key(key_field, record)
            if order == 0:
                pair = join.label(key, parse_label(features.target, record.get(features.target)), moment, row.line)
            else:
                x = features.unlabelled(record)
                pair = join.event(key, x, model.predict_proba_one(x)[True], moment)
        except (ValueError, TypeError) as e:  # SchemaError is a ValueError
            state.skip(row.line, f"{name}: {e}", f"{name}: {str(e).split(';')[0][:80]}")
            continue
        if pair is not None:
            learn(pair, row.line)
    flush()


def _check_args(args: argparse.Namespace) -> None:
    for given, flag in [(args.resume, "--resume"), (args.dataset, "--dataset"), (args.scale, "--scale"),
                        (args.max_records, "--max-records")]:  # fmt: skip
        if given:
            raise UsageError(f"{flag} does not work with --labels yet; replay the events file without it")
    for value, flag in [(args.path, "the events file"), (args.target, "--target (the label's field in --labels)"),
                        (args.join_key, "--join-key"), (args.label_timeout, "--label-timeout")]:  # fmt: skip
        if value is None:
            raise UsageError(f"--labels needs {flag}")
    for path in (args.path, args.labels):
        if not Path(path).is_file():
            raise UsageError(f"{path} does not exist; check the path")


def run_delayed_replay(args: argparse.Namespace) -> int:
    """The ``replay --labels`` command; returns the exit code."""
    from stream_logreg.options import build_model, categorical_names, features_from, model_params

    _check_args(args)
    try:
        if not (math.isfinite(args.join_memory) and args.join_memory > 0):
            raise ValueError(f"--join-memory must be a number of MB > 0, got {args.join_memory}")
        join = LabelJoin(args.label_timeout, args.on_timeout, memory_bytes=int(args.join_memory * 2**20))
        model = build_model(model_params(args), args.hash_bits)
        metrics = ProgressiveMetrics(window=args.window or 1000, every=args.every or 1000)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    features = features_from(args, args.target, categorical_names(args.categorical or "auto"))
    drop = tuple(dict.fromkeys([*features.drop, args.join_key, args.timestamp]))
    features = Features(**{**features.settings(), "drop": drop})
    state, start = ReplayState(), time.perf_counter()
    events_path, labels_path = Path(args.path), Path(args.labels)
    events = _timed(read_rows(events_path), 1, args.timestamp, events_path, state, "events")
    labels = _timed(read_rows(labels_path), 0, args.timestamp, labels_path, state, "labels")
    damage: DataFileError | SpillError | None = None
    try:
        replay_with_labels(events, labels, model, features, metrics, state, join, args.join_key)
    except (DataFileError, SpillError) as e:  # stopped there: what was learned is reported (and saved)
        damage = e
    finally:
        counts = join.counts()
        join.close()
        events.close()
        labels.close()
    report_summary = {**summary(metrics, state, features, None, time.perf_counter() - start, state.learned),
                      "join": counts}  # fmt: skip
    if args.save:
        progress = {"source": str(events_path.resolve()), "labels": str(labels_path.resolve()),
                    "settings": {**features.settings(), "scale": "none"}, "join": counts,
                    "state": state.to_json(), "metrics": metrics.to_state()}  # fmt: skip
        model.save(args.save, progress=json_safe(progress))
    if args.report:
        import orjson

        report = {"source": str(events_path), "summary": report_summary, "curve": metrics.to_state()["curve"]}
        Path(args.report).write_bytes(orjson.dumps(json_safe(report), option=orjson.OPT_INDENT_2))
    print_summary(report_summary)
    counts = report_summary["join"]
    delays = ", ".join(f"p{q} {figure(counts[f'delay_p{q}'], '.3g')} s" for q in (50, 90, 99))
    policy = "learned as negatives" if args.on_timeout == "negative" else "dropped"
    print(f"{'labels joined':<16} {counts['joined']:,}   ({figure(counts['join_rate'], '.1%')} of "
          f"{counts['events']:,} events; label delay {delays})")  # fmt: skip
    print(f"{'events expired':<16} {counts['events_expired']:,}   ({policy} after {args.label_timeout:g} s)")
    print(f"{'labels unmatched':<16} {counts['labels_unmatched']:,}   (no event within the timeout: skipped rows)")
    print(f"{'still waiting':<16} {counts['events_waiting']:,} events, {counts['labels_waiting']:,} labels "
          "(the files ended within their timeout)")  # fmt: skip
    if spilled := counts["spilled_bytes"]:
        size = f"{spilled / 2**20:,.1f} MB" if spilled >= 2**20 else f"{spilled / 1024:,.0f} kB"
        print(f"{'spilled':<16} {size}   (the temporary file of what waited past --join-memory "
              f"{args.join_memory:g} MB, at its largest; deleted)")  # fmt: skip
    if damage is not None:
        print(f"stream-logreg replay: {damage}", file=sys.stderr)
        return 2
    return 0 if state.learned else 1
