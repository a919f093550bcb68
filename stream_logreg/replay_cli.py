"""``stream-logreg replay``: a file (or a bundled data set) through progressive validation."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stream_logreg._learner import LogisticRegression
from stream_logreg.cli import UsageError, dataset_records
from stream_logreg.decode import Schema
from stream_logreg.evaluate import ProgressiveMetrics, plot_curve
from stream_logreg.exceptions import ModelFileError
from stream_logreg.replay import ReplayState, replay, replay_columns
from stream_logreg.sources import Row, column_batches, file_format, header, read_rows


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _fast_columns(args: argparse.Namespace, schema: Schema) -> list[str] | None:
    """The feature columns for the columnar fast path, or None when it does not apply."""
    if args.dataset or schema.categorical or file_format(args.path)[0] not in (".csv", ".parquet"):
        return None
    names = header(args.path)
    features = list(schema.features) if schema.features is not None else names
    features = [name for name in features if name != schema.target and name not in schema.drop]
    if len(set(names)) != len(names) or not set(features) <= set(names):
        return None
    return features


def _source(args: argparse.Namespace) -> tuple[str, Iterator[Row], str]:
    """(a name for the source, its rows, the target column), checking what can be checked first."""
    if (args.path is None) == (args.dataset is None):
        raise UsageError("give either a PATH or --dataset (one of them)")
    if args.dataset:
        target = args.target or "label"
        rows = (Row(i + 1, record, None) for i, record in enumerate(dataset_records(args.dataset, target)))
        return f"dataset:{args.dataset}", rows, target
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; check the path")
    try:
        file_format(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not args.target:
        raise UsageError("--target is required with a file: name the label column")
    file_rows = read_rows(path)
    first = next(file_rows, None)
    if first is None:
        raise UsageError(f"{path} has no data rows; replay a file with a header and at least one row")
    if first.record is not None and args.target not in first.record:
        raise UsageError(
            f"{path} has no column {args.target!r} (columns: {', '.join(map(str, first.record))}); "
            "pass the label's column to --target"
        )

    def all_rows() -> Iterator[Row]:
        yield first
        yield from file_rows

    return str(path.resolve()), all_rows(), args.target


def _progress_printer() -> Any:
    if not sys.stderr.isatty():
        return None
    start, last = time.monotonic(), 0.0

    def show(state: ReplayState) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.25:
            last = now
            rate = state.learned / max(now - start, 1e-9)
            print(f"\r{state.rows_done:,} rows, {state.learned:,} learned, {rate:,.0f} records/s ", end="",
                  file=sys.stderr, flush=True)  # fmt: skip

    return show


def _summary(state: ReplayState, metrics: ProgressiveMetrics, seconds: float, learned_now: int) -> dict[str, Any]:
    rolling = metrics.rolling()
    return {
        "records_learned": state.learned,
        "records_skipped": state.skipped,
        "first_skipped": [{"line": line, "reason": reason} for line, reason in state.first_skipped],
        "log_loss": metrics.log_loss,
        "accuracy": metrics.accuracy,
        "roc_auc": metrics.roc_auc,
        "rolling_window": metrics.window,
        "rolling_log_loss": rolling["log_loss"],
        "rolling_accuracy": rolling["accuracy"],
        "rolling_roc_auc": rolling["roc_auc"],
        "seconds": seconds,
        "records_per_second": learned_now / seconds if seconds > 0 else 0.0,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    window = summary["rolling_window"]
    lines = [
        ("records learned", f"{summary['records_learned']:,}"),
        ("records skipped", f"{summary['records_skipped']:,}"),
        ("log loss", f"{summary['log_loss']:.6f}   (last {window:,}: {summary['rolling_log_loss']:.6f})"),
        ("accuracy", f"{summary['accuracy']:.4%}   (last {window:,}: {summary['rolling_accuracy']:.4%})"),
        ("ROC AUC", f"{summary['roc_auc']:.6f}   (last {window:,}: {summary['rolling_roc_auc']:.6f})"),
        ("records/second", f"{summary['records_per_second']:,.0f}"),
    ]
    for name, value in lines:
        print(f"{name:<16} {value}")
    for item in summary["first_skipped"]:
        print(f"skipped line {item['line']}: {item['reason']}")


def run_replay(args: argparse.Namespace) -> int:
    source, rows, target = _source(args)
    schema = Schema(target, _names(args.features) or None, _names(args.drop), _names(args.categorical))
    if args.resume:
        try:
            model, progress = LogisticRegression.load_with_progress(args.resume)
        except ModelFileError as e:
            raise UsageError(str(e)) from None
        if not progress or progress.get("source") != source:
            raise UsageError(
                f"{args.resume} was not saved by a replay of {source} "
                f"(it records {progress.get('source') if progress else 'no replay'}); resume the same source"
            )
        metrics = ProgressiveMetrics.from_state(progress["metrics"])
        state = ReplayState.from_json(progress["state"])
    else:
        try:
            model = LogisticRegression(lr=args.lr, l2=args.l2, intercept_lr=args.intercept_lr)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from None
        metrics = ProgressiveMetrics(window=args.window, every=args.every)
        state = ReplayState()
    learned_before, start = state.learned, time.perf_counter()
    progress_printer = _progress_printer()
    features = _fast_columns(args, schema)
    done = features is not None and replay_columns(
        column_batches(args.path, [*features, schema.target]), features, schema.target, model, metrics, state,
        args.max_records, progress_printer,
    )  # fmt: skip
    if not done:  # row by row, from the first row the fast path did not learn
        replay(rows, model, schema, metrics, state, args.on_error, args.max_records, progress=progress_printer)
    seconds = time.perf_counter() - start
    if progress_printer is not None:
        print(file=sys.stderr)
    summary = _summary(state, metrics, seconds, state.learned - learned_before)
    _print_summary(summary)
    if args.save:
        model.save(args.save, progress={"source": source, "state": state.to_json(), "metrics": metrics.to_state()})
    if args.report:
        report = {"source": source, "summary": summary, "curve": metrics.to_state()["curve"]}
        Path(args.report).write_bytes(orjson.dumps(_json_safe(report), option=orjson.OPT_INDENT_2))
    if args.plot:
        plot_curve(metrics.curve, args.plot, title=f"Progressive validation: {Path(source).name}")
    if state.failed_at is not None:
        line, reason = state.failed_at
        print(f"stream-logreg replay: line {line} is malformed: {reason}; stopped (--on-error fail)", file=sys.stderr)
        return 1
    return 0


def _json_safe(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
