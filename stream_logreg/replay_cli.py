"""``stream-logreg replay``: a file (or a bundled data set) through progressive validation.

Decisions a user sees:

- ``--categorical auto`` (the default): any string that is not a number is one-hot
  encoded as field=value (see :class:`~stream_logreg.features.Features`).
- ``--save`` records the file's identity (size, SHA-256 of its first and last 64 KiB) and
  the settings; ``--resume`` refuses (exit 2) a file or a setting that differs. After a
  replay stopped by a damaged file, only the first 64 KiB must match: the file was fixed.
- The model is saved before anything is printed, so a closed stdout loses nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream_logreg._learner import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics, plot_curve
from stream_logreg.exceptions import DataFileError, ModelFileError, UsageError
from stream_logreg.features import Features
from stream_logreg.options import (
    FEATURE_LIMITS,
    MODEL_OPTIONS,
    build_model,
    categorical_names,
    features_from,
    flag,
    model_params,
    names,
    scale_setting,
    scaler_from,
    settings_of,
)
from stream_logreg.replay import ReplayState, replay, replay_columns
from stream_logreg.replay_report import json_safe, print_summary, summary
from stream_logreg.scaling import Scaler
from stream_logreg.sources import ReadPosition, Row, column_batches, dataset_rows, file_format, header, read_rows

__all__ = [
    "run_replay",
]

FIRST_ROWS = 1000
IDENTITY_BLOCK = 64 * 1024


@dataclass
class Source:
    """What a replay reads: a name for it, the path (None for a bundled data set), its
    first rows (to check the target) and its identity."""

    name: str
    path: Path | None
    first: list[Row]
    identity: dict[str, Any] | None

    def rows(self, target: str, position: ReadPosition) -> Iterator[Row]:
        if self.path is None:
            return dataset_rows(self.name.removeprefix("dataset:"), target)
        return read_rows(self.path, position)


def file_identity(path: Path) -> dict[str, Any]:
    """The file's size and the SHA-256 of its first and last 64 KiB."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(IDENTITY_BLOCK)).hexdigest()
        f.seek(max(size - IDENTITY_BLOCK, 0))
        tail = hashlib.sha256(f.read()).hexdigest()
    return {"size": size, "head": head, "tail": tail}


def _source(args: argparse.Namespace, target: str | None) -> Source:
    """The source, with what can be checked before the replay checked (the target column,
    unless ``target`` is None)."""
    if args.dataset:
        return Source(f"dataset:{args.dataset}", None, [], None)
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; check the path")
    try:
        file_format(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    first: list[Row] = []
    try:
        first.extend(itertools.islice(read_rows(path), FIRST_ROWS))
    except DataFileError as e:
        if not first:
            raise UsageError(str(e)) from None  # the replay meets the damage after these rows and says so
    if not first:
        raise UsageError(f"{path} has no data rows; replay a file with a header and at least one row")
    record = next((row.record for row in first if row.record is not None), None)
    if record is not None and target is not None and target not in record:
        raise UsageError(
            f"{path} has no column {target!r} (columns: {', '.join(map(str, record))}); "
            "pass the label's column to --target"
        )
    return Source(str(path.resolve()), path, first, file_identity(path))


@dataclass
class Run:
    """Everything one replay works on."""

    model: LogisticRegression
    metrics: ProgressiveMetrics
    state: ReplayState
    features: Features
    scaler: Scaler | None
    damaged: bool = False


def _resumed(args: argparse.Namespace, source: Source) -> Run:
    """The run saved in --resume, after checking that the source and the flags given match it."""
    try:
        model, progress = LogisticRegression.load_with_progress(args.resume)
    except ModelFileError as e:
        raise UsageError(str(e)) from None
    if not progress or progress.get("source") != source.name:
        raise UsageError(
            f"{args.resume} was not saved by a replay of {source.name} "
            f"(it records {progress.get('source') if progress else 'no replay'}); resume the same source"
        )
    saved_file = progress.get("file")
    if source.identity is not None and saved_file is not None:
        keys = ("head",) if progress.get("damaged") else ("size", "head", "tail")
        changed = [key for key in keys if saved_file[key] != source.identity[key]]
        if changed:
            what = {"size": f"its size ({saved_file['size']:,} bytes then, {source.identity['size']:,} now)",
                    "head": "its first 64 KiB", "tail": "its last 64 KiB"}  # fmt: skip
            raise UsageError(
                f"{source.name} changed since {args.resume} was saved: {', '.join(what[k] for k in changed)} differ; "
                "resume with the file it was saved from, or start afresh without --resume"
            )
    saved = progress.get("settings", {})
    metrics = ProgressiveMetrics.from_state(progress["metrics"])
    given = {
        **{flag(name): (getattr(args, name), settings_of(model)[name]) for name in MODEL_OPTIONS},
        "--target": (args.target, saved.get("target", args.target)),
        "--features": (names(args.features) or None, saved.get("features")),
        "--drop": (None if args.drop is None else names(args.drop), saved.get("drop")),
        "--categorical": (None if args.categorical is None else categorical_names(args.categorical),
                          saved.get("categorical", "auto")),
        "--hash-bits": (args.hash_bits, saved.get("hash_bits")),
        "--scale": (None if args.scale is None else scale_setting(scaler_from(args.scale)), saved.get("scale", "none")),
        **{flag(name): (getattr(args, name), saved.get(name, default)) for name, default, _ in FEATURE_LIMITS},
        "--window": (args.window, metrics.window),
        "--every": (args.every, metrics.every),
    }  # fmt: skip
    for option, (value, before) in given.items():
        if value is not None and value != before:
            raise UsageError(
                f"{option} {value} differs from the {before} that {args.resume} was saved with; "
                f"drop {option} to go on with the saved value, or start afresh without --resume"
            )
    target = saved.get("target") or args.target or "label"
    features = Features(**{"categorical": "auto", **{k: v for k, v in saved.items() if k != "scale"}, "target": target})
    try:
        scaler = Scaler.from_state(progress["scaler"]) if progress.get("scaler") else None
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{args.resume} holds a damaged scaler state ({e}); start afresh without --resume") from None
    state = ReplayState.from_json(progress["state"])
    return Run(model, metrics, state, features, scaler)


def _fresh(args: argparse.Namespace, source: Source, target: str) -> Run:
    try:
        model = build_model(model_params(args), args.hash_bits)
        metrics = ProgressiveMetrics(window=args.window or 1000, every=args.every or 1000)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    features = features_from(args, target, categorical_names(args.categorical or "auto"))
    return Run(model, metrics, ReplayState(), features, scaler_from(args.scale))


def _fast_columns(source: Source, features: Features) -> list[str] | None:
    """The feature columns for the columnar fast path, or None when it does not apply."""
    if (source.path is None or (features.categorical != "auto" and features.categorical)
            or file_format(source.path)[0] not in (".csv", ".parquet")):  # fmt: skip
        return None
    columns = header(source.path)
    kept = list(features.features) if features.features is not None else columns
    return [name for name in kept if name != features.target and name not in features.drop and name in columns]


def _progress_bar(position: ReadPosition) -> Any:
    """A rich progress bar on stderr (a terminal only): the share of the file read, records
    per second, time left. Returns (callback, the bar to stop) or (None, None)."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("replaying"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[learned]} learned"),
        TextColumn("{task.fields[rate]} records/s"), TimeRemainingColumn(), console=Console(stderr=True),
    )  # fmt: skip
    task = bar.add_task("replay", total=None, learned="0", rate="-")
    bar.start()
    start = time.monotonic()

    def show(state: ReplayState) -> None:
        rate = state.learned / max(time.monotonic() - start, 1e-9)
        bar.update(task, completed=position.done, total=position.total or None, learned=f"{state.learned:,}",
                   rate=f"{rate:,.0f}")  # fmt: skip

    return show, bar


def run_replay(args: argparse.Namespace) -> int:
    if getattr(args, "labels", None):
        from stream_logreg.delayed_replay import run_delayed_replay

        return run_delayed_replay(args)
    if (args.path is None) == (args.dataset is None):
        raise UsageError("give either a PATH or --dataset (one of them)")
    if args.resume:  # the target defaults to the saved one
        source = _source(args, args.target)
        run = _resumed(args, source)
    else:
        if args.path is not None and not args.target:
            raise UsageError("--target is required with a file: name the label column")
        source = _source(args, args.target or "label")
        run = _fresh(args, source, args.target or "label")
    learned_before, start = run.state.learned, time.perf_counter()
    position = ReadPosition()
    show, bar = _progress_bar(position)
    damage: DataFileError | None = None
    try:
        _learn_with(run, source, args, show, position)
    except DataFileError as e:
        damage, run.damaged = e, True
    finally:
        if bar is not None:
            bar.stop()
    seconds = time.perf_counter() - start
    report_summary = summary(
        run.metrics, run.state, run.features, run.scaler, seconds, run.state.learned - learned_before
    )
    if args.save:  # first: nothing printed below can lose it
        progress = {
            "source": source.name, "file": source.identity, "damaged": run.damaged,
            "settings": {**run.features.settings(), "scale": scale_setting(run.scaler)},
            "scaler": run.scaler.to_state() if run.scaler is not None else None,
            "state": run.state.to_json(), "metrics": run.metrics.to_state(),
        }  # fmt: skip
        run.model.save(args.save, progress=progress)
    if args.report:
        report = {"source": source.name, "summary": report_summary, "curve": run.metrics.to_state()["curve"]}
        Path(args.report).write_bytes(orjson.dumps(json_safe(report), option=orjson.OPT_INDENT_2))
    if args.plot:
        plot_curve(run.metrics.curve, args.plot, title=f"Progressive validation: {Path(source.name).name}")
    print_summary(report_summary)
    if damage is not None:
        saved = f"; what was learned is saved in {args.save}, --resume goes on after a fix" if args.save else ""
        print(f"stream-logreg replay: {damage}{saved}", file=sys.stderr)
        return 2
    if run.state.failed_at is not None:
        line, reason = run.state.failed_at
        print(f"stream-logreg replay: line {line} is malformed: {reason}; stopped (--on-error fail)", file=sys.stderr)
        return 1
    if run.state.learned == 0:
        main = run.state.main_reason()
        why = f"the most frequent reason, for {main[1]:,} rows: {main[0]}" if main else "the source has no rows"
        print(f"stream-logreg replay: no record was learned; {why}", file=sys.stderr)
        return 1
    return 0


def _learn_with(
    run: Run, source: Source, args: argparse.Namespace, show: Callable[[ReplayState], None] | None,
    position: ReadPosition,
) -> None:  # fmt: skip
    """The fast columnar path while it applies, then row by row (raises DataFileError where
    the file cannot be read on, after learning every row before it)."""
    columns = _fast_columns(source, run.features) if run.scaler is None else None
    named = None if columns is None else run.features.plain_columns(columns)
    done = False
    if columns is not None and named is not None and source.path is not None:
        batches = column_batches(source.path, [*columns, run.features.target], position)
        done = replay_columns(batches, columns, *named, run.features.target, run.model, run.metrics, run.state,
                              args.max_records, show)  # fmt: skip
    if not done:  # row by row, from the first row the fast path did not learn
        rows = source.rows(run.features.target, position)
        replay(rows, run.model, run.features, run.metrics, run.state, args.on_error, args.max_records, progress=show,
               scaler=run.scaler)  # fmt: skip
