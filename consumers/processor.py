"""RecordProcessor: the service's side of the processing step, for the records of one poll.

Runs of records the C reader decoded go through the shared step (``learn_rows``) as one
matrix; any other record is decoded the careful way and learned alone; whatever is wrong
with a record dead-letters it (no record can stop the service). What is learned is
counted by partition and its prediction published.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from consumers.outputs import Outputs
from consumers.record_blocks import Record, RecordBlock
from stream_logreg import LogisticRegression
from stream_logreg.decode import Rows, SchemaError, make_decoder, read_value
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.features import Features
from stream_logreg.processing import Learned, Named, learn_examples, learn_rows, learn_scaled
from stream_logreg.scaling import Scaler

__all__ = ["RecordProcessor"]


class RecordProcessor:
    """Learns blocks of records into a model and its metrics; ``counters`` and
    ``positions`` (the next offset of each partition) are the service's, updated here."""

    def __init__(
        self,
        model: LogisticRegression,
        metrics: ProgressiveMetrics,
        counters: dict[str, Any],
        positions: dict[int, int],
        features: Features,
        outputs: Outputs,
        max_record_bytes: int,
        scaler: Scaler | None = None,
    ) -> None:
        self.model, self.metrics, self.counters, self.positions = model, metrics, counters, positions
        self.features, self.outputs, self.max_record_bytes = features, outputs, max_record_bytes
        self.scaler = scaler
        self.decode = make_decoder("json")

    def block(self, partition: int, messages: RecordBlock, rows: Rows) -> None:
        """Learn the decoded messages of one partition, in offset order."""
        if self.scaler is not None:
            self._scaled(partition, messages, self.scaler)
        else:
            start = 0
            for i in [*np.flatnonzero(~rows.ok).tolist(), len(messages)]:
                if start < i:
                    done = learn_rows(self.model, self.metrics, rows.features, rows.values[start:i],
                                      rows.labels[start:i])  # fmt: skip
                    self._settle(partition, done, messages[start:i])
                if i < len(messages):
                    self._one(partition, messages[i])
                start = i + 1
        self.counters["consumed"] += len(messages)
        self.positions[partition] = messages.offsets[-1] + 1

    def _one(self, partition: int, message: Record) -> None:
        named = self._named(message)
        if named is not None:
            x, y, _ = named
            self._settle(partition, learn_examples(self.model, self.metrics, [self.features.hash(x)], [y]), [message])

    def _scaled(self, partition: int, messages: RecordBlock, scaler: Scaler) -> None:
        """Learn the messages standardized by ``scaler`` in front of the model, one by one."""
        kept: list[Record] = []
        examples: list[Named] = []
        for message in messages:
            named = self._named(message)
            if named is not None:
                kept.append(message)
                examples.append(named)
        if examples:
            self._settle(partition, learn_scaled(self.model, self.metrics, scaler, self.features, examples), kept)

    def _named(self, message: Record) -> Named | None:
        """The message's named features, label and numeric names; None when it is dead-lettered."""
        try:
            if message.problem is not None:
                raise SchemaError(message.problem)
            return self.features.named(read_value(message.value, self.decode, self.max_record_bytes))
        except SchemaError as e:
            self._dead_letter(message, str(e))
        except Exception as e:  # a record that breaks something unforeseen: never a crash loop
            self._dead_letter(message, f"unexpected {type(e).__name__} while decoding: {e}")
        return None

    def _settle(self, partition: int, done: Learned, messages: RecordBlock | list[Record]) -> None:
        """Dead-letter what the model refused; count and publish what it learned."""
        for position, reason in done.refused:
            self._dead_letter(messages[position], reason)
        learned = messages if not done.refused else [messages[position] for position in done.learned]
        self.counters["learned"] += len(learned)
        by_partition = self.counters["by_partition"]
        by_partition[str(partition)] = by_partition.get(str(partition), 0) + len(learned)
        self.outputs.predictions(partition, learned, done.probas, done.version)

    def _dead_letter(self, message: Record, reason: str) -> None:
        self.counters["dead_lettered"] += 1
        self.outputs.dead_letter(message, reason)
