"""Replaying a file through the learner with progressive validation.

The same path the live consumer takes, with a row number in place of an offset: each
record is decoded, its probability is predicted with the model as it stands, the metrics
are updated, and then the model learns it (in micro-batches through the compiled kernel,
which is exactly record by record).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream_logreg._learner import LogisticRegression
from stream_logreg.decode import SchemaError
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import DataFileError, MarginError
from stream_logreg.features import Features
from stream_logreg.processing import Named, learn_examples, learn_scaled
from stream_logreg.scaling import Scaler
from stream_logreg.sources import Row, read_errors

__all__ = [
    "ReplayState",
    "replay",
    "replay_columns",
]

MAX_LISTED = 10
MAX_KINDS = 100
OTHER_KINDS = "(other reasons)"


@dataclass
class ReplayState:
    """How far a replay got: rows consumed (good or bad), learned, skipped, and why: the
    first ten skipped rows, and how many rows each kind of reason skipped (at most 100
    kinds; the rest are counted together)."""

    rows_done: int = 0
    learned: int = 0
    skipped: int = 0
    first_skipped: list[tuple[int, str]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    failed_at: tuple[int, str] | None = None

    def skip(self, line: int, reason: str, kind: str | None = None) -> None:
        """Count a skipped row; ``kind`` is its reason without the row's own values."""
        self.skipped += 1
        if len(self.first_skipped) < MAX_LISTED:
            self.first_skipped.append((line, reason))
        kind = kind or reason.split(" (", 1)[0]
        if kind not in self.reasons and len(self.reasons) >= MAX_KINDS:
            kind = OTHER_KINDS
        self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def main_reason(self) -> tuple[str, int] | None:
        """The kind of reason that skipped the most rows, and how many."""
        return max(self.reasons.items(), key=lambda item: item[1]) if self.reasons else None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_done": self.rows_done,
            "learned": self.learned,
            "skipped": self.skipped,
            "first_skipped": [list(item) for item in self.first_skipped],
            "reasons": self.reasons,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplayState:
        return cls(
            rows_done=int(data["rows_done"]),
            learned=int(data["learned"]),
            skipped=int(data["skipped"]),
            first_skipped=[(int(line), str(reason)) for line, reason in data["first_skipped"]],
            reasons={str(kind): int(count) for kind, count in data.get("reasons", {}).items()},
        )


def replay(
    rows: Iterable[Row],
    model: LogisticRegression,
    features: Features,
    metrics: ProgressiveMetrics,
    state: ReplayState,
    on_error: str = "skip",
    max_records: int | None = None,
    batch_size: int = 1000,
    progress: Callable[[ReplayState], None] | None = None,
    scaler: Scaler | None = None,
) -> ReplayState:
    """Replay ``rows`` (skipping the ``state.rows_done`` already done) into model and metrics.

    A malformed row is never learned: with on_error="skip" it is counted and the first ten
    are kept with their line numbers; with "fail" the replay stops there and
    ``state.failed_at`` names it. ``max_records`` stops after that many rows in total.
    A file that cannot be read on raises :class:`DataFileError` once every row before the
    damage is learned, so ``state`` then says how far the replay got. With ``scaler``, the
    features are standardized in front of the model (:func:`learn_scaled`).
    """
    examples: list[Named] = []
    lines: list[int] = []

    def flush() -> None:
        if examples:
            if scaler is None:
                done = learn_examples(model, metrics, [x for x, _, _ in examples], [y for _, y, _ in examples])
            else:
                done = learn_scaled(model, metrics, scaler, features, examples)
            for position, reason in done.refused:
                state.skip(lines[position], reason, "the margin is not finite (the features are too large)")
            state.learned += len(done.learned)
            examples.clear()
            lines.clear()
            if progress is not None:
                progress(state)

    try:
        for number, row in enumerate(rows):
            if number < state.rows_done:
                continue
            if max_records is not None and number >= max_records:
                break
            problem, kind = row.error, None
            if problem is None:
                try:
                    if scaler is None:
                        x, y = features.decode(row.record or {})
                        example: Named = (x, y, [])
                    else:
                        example = features.named(row.record or {})
                except SchemaError as e:
                    problem, kind = str(e), e.kind
            if problem is not None:
                if on_error == "fail":
                    flush()
                    state.failed_at = (row.line, problem)
                    return state
                state.skip(row.line, problem, kind)
                state.rows_done = number + 1
                continue
            examples.append(example)
            lines.append(row.line)
            state.rows_done = number + 1
            if len(examples) == batch_size:
                flush()
    except DataFileError:
        flush()  # the rows read before the damage are learned, as state.rows_done says
        raise
    flush()
    return state


def replay_columns(
    batches: Iterator[Any],
    columns: list[str],
    features: list[Hashable],
    signs: np.ndarray | None,
    target: str,
    model: LogisticRegression,
    metrics: ProgressiveMetrics,
    state: ReplayState,
    max_records: int | None = None,
    progress: Callable[[ReplayState], None] | None = None,
) -> bool:
    """The fast path: learn whole columnar batches (pyarrow RecordBatches) while they are clean.

    ``columns`` are learned as ``features`` (their names, or hashed: their buckets, the
    values multiplied by ``signs``; see :meth:`Features.plain_columns`).

    A batch is clean when every feature is a finite number and every label is 0 or 1.
    Returns True when the input is done (or ``max_records`` reached), False at the first
    batch that is not clean or cannot be read: ``state.rows_done`` then points at that
    batch's first unlearned row, and the row-by-row path (:func:`replay`, which names each
    bad row's line) takes over from there with the same result.
    """
    import pyarrow as pa

    seen = 0
    try:
        for batch in batches:
            n = batch.num_rows
            start = max(state.rows_done - seen, 0)
            stop = n if max_records is None else min(n, max_records - seen)
            if start < stop:
                table = batch.slice(start, stop - start)
                read = [_float_column(table.column(name)) for name in [*columns, target]]
                numbers = [column for column in read if column is not None]
                if len(numbers) != len(read):
                    return False
                values = np.column_stack(numbers[:-1]) if columns else np.zeros((stop - start, 0))
                labels = numbers[-1]
                if not (np.isfinite(values).all() and np.isin(labels, (0.0, 1.0)).all()):
                    return False
                if signs is not None:
                    values *= signs
                try:
                    probas = model.learn_array(values, features, labels)
                except MarginError:
                    return False
                metrics.update(probas, labels)
                state.learned += stop - start
                state.rows_done = seen + stop
                if progress is not None:
                    progress(state)
            seen += n
            if max_records is not None and seen >= max_records:
                return True
    except (pa.ArrowInvalid, *read_errors()):  # a row pyarrow cannot parse, a damaged file: the row path says where
        return False
    return True


def _float_column(column: Any) -> np.ndarray | None:
    """A pyarrow column as float64, or None if it has nulls or is not numeric/boolean."""
    import pyarrow as pa

    if column.null_count or not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
                                 or pa.types.is_boolean(column.type)):  # fmt: skip
        return None
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
