"""The service's label join (``consume --labels-topic``): each event is predicted when it
comes and learned when its label comes.

Partition p of the events topic and partition p of the labels topic (co-partitioned by the
join key) are one pair, owned by one instance. For each pair:

- The records fetched wait in two queues and are taken in the order of their timestamp field
  (``--timestamp``), a label before an event of the same moment: the merge ``replay
  --labels`` makes of two files. A record is taken only when the other queue holds one, or
  the other partition is read to its end, so the order is the data's and not the fetches':
  a run started again after a crash takes the records in the order of a run that never
  stopped.
- Each event is predicted at once (published with its join key and the model's version) and
  waits in a :class:`~stream_logreg.delayed.LabelJoin`; each label is learned with its
  event's features (one step) and scores the prediction made at event time. An event the
  timeout ends is dropped or learned as a negative (``--on-timeout``); a label that found
  no event is a dead letter.
- Every change of the join since the last checkpoint, net, is written to partition p of the
  join's compacted changelog topic in the checkpoint's transaction, with both topics'
  offsets (consumers/transactional.py). A partition newly assigned (a restart, a rebalance,
  an empty disk) reads its join back from there.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.config import ServiceConfig, event
from consumers.framing import committed_reader, read_to_end
from consumers.outputs import Outputs
from consumers.record_blocks import Record, RecordBlock
from stream_logreg import LogisticRegression
from stream_logreg.decode import make_decoder, read_value
from stream_logreg.delayed import JoinTally, LabelJoin, Pair, join_key, parse_time
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import MarginError, SchemaError
from stream_logreg.features import Features, parse_label
from stream_logreg.kafka_admin import ensure_topic, partition_count

__all__ = ["MAX_FETCHED", "LabelJoiner", "PartitionJoin", "coassignment_problem", "copartition_problem"]

MAX_FETCHED = 20_000  # records fetched and waiting in one queue before its partition is paused
RESTORE_SECONDS = 600.0  # at most, to read one partition's join back from its changelog
_TIME = struct.Struct("<d")


def copartition_problem(config: ServiceConfig, consumer: Any) -> str | None:
    """Why the events and labels topics (and the join's changelog, made here if need be)
    cannot be joined partition by partition: other partition counts; None when they can."""
    labels_topic = config.labels_topic or ""
    counts = {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in (config.topic, labels_topic)}
    # Segments of 64 MiB (Kafka's default: 1 GiB): only closed segments are compacted, and a
    # partition's join is read back whole, so its changelog should not hold much dead history.
    ensure_topic(config.bootstrap_servers, config.join_topic, partitions=counts[config.topic],
                 configs={"cleanup.policy": "compact", "segment.bytes": str(64 << 20)})  # fmt: skip
    counts[config.join_topic] = partition_count(config.bootstrap_servers, config.join_topic)
    if len(set(counts.values())) == 1:
        return None
    found = ", ".join(f"{topic} has {n}" for topic, n in counts.items())
    return (
        f"the events and labels must be co-partitioned by the join key, and the join's changelog partitioned as "
        f"they are: {found} partitions; give the topics as many partitions (and produce both keyed by --join-key "
        "with one partitioner), or a new --state-topic for a changelog of another count"
    )


def coassignment_problem(config: ServiceConfig, consumer: Any) -> str | None:
    """Why this instance's assignment cannot be joined: it owns partition p of one topic
    and not of the other; None when it owns both or neither of each p."""
    labels_topic = config.labels_topic or ""
    owned: dict[str, set[int]] = {config.topic: set(), labels_topic: set()}
    for tp in consumer.assignment():
        owned[tp.topic].add(tp.partition)
    if owned[config.topic] == owned[labels_topic]:
        return None
    return (
        f"this instance was given partitions {sorted(owned[config.topic])} of the events and "
        f"{sorted(owned[labels_topic])} of the labels: another member of group {config.group_id} assigns "
        "otherwise; give every member the range assignor (stream-logreg consume --labels-topic does), or use a "
        "group of its own"
    )


class Fetched(NamedTuple):
    """A record fetched, read: its time, or -inf and the problem when it cannot be read."""

    time: float
    record: Record
    value: Any  # the decoded record (a mapping), or None
    problem: str | None


class PartitionJoin:
    """One partition pair: the records fetched and waiting, the join, and the join's changes
    since the last checkpoint (changelog key -> (value or None, whether the changelog holds
    the key now)): net, so a pair that meets within one checkpoint writes nothing.

    >>> pair = PartitionJoin(LabelJoin(timeout=10.0))
    >>> pair.join.event("a", {"x": 1.0}, proba=0.5, time=0.0)
    >>> pair.join.label("a", True, time=1.0)
    Pair(key='a', x={'x': 1.0}, y=True, proba=0.5)
    >>> pair.join.event("b", {"x": 2.0}, proba=0.5, time=2.0)
    >>> [(key, value is None) for key, (value, _) in pair.changes.items()]
    [(b'eb', False)]
    >>> pair.changes.clear()  # written with a checkpoint
    >>> pair.join.label("b", False, time=3.0).y
    False
    >>> [(key, value is None) for key, (value, _) in pair.changes.items()]  # a tombstone
    [(b'eb', True)]
    """

    def __init__(self, join: LabelJoin) -> None:
        self.join = join
        self.events: deque[Fetched] = deque()
        self.labels: deque[Fetched] = deque()
        self.changes: dict[bytes, tuple[bytes | None, bool]] = {}
        join.events.log = partial(self._changed, b"e")
        join.labels.log = partial(self._changed, b"l")

    def _changed(self, side: bytes, key: str, entry: tuple[float, bytes] | None) -> None:
        name = side + key.encode()
        value = None if entry is None else _TIME.pack(entry[0]) + entry[1]
        before = self.changes.pop(name, None)
        # A key is put when the changelog does not hold it, and popped when it does.
        held = before[1] if before is not None else entry is None
        if value is not None or held:  # (put and popped since the checkpoint: nothing to write)
            self.changes[name] = (value, held)


class LabelJoiner:
    """The label joins of the partitions this instance owns; learns into the service's
    model, metrics and counters, and moves its positions (events topic) and its own
    ``label_positions`` (labels topic)."""

    def __init__(
        self, config: ServiceConfig, model: LogisticRegression, metrics: ProgressiveMetrics,
        counters: dict[str, Any], positions: dict[int, int], outputs: Outputs,
    ) -> None:  # fmt: skip
        self.config, self.model, self.metrics, self.counters = config, model, metrics, counters
        self.positions, self.outputs = positions, outputs
        features = config.featurizer  # the join key and the time are not features
        drop = tuple(dict.fromkeys([*features.drop, config.join_key, config.timestamp]))
        self.features = Features(**{**features.settings(), "drop": drop})
        self.tally = JoinTally.from_state(counters.get("join", {}))
        self.pairs: dict[int, PartitionJoin] = {}
        self.label_positions: dict[int, int] = {}
        self.decode = make_decoder("json")
        self.consumer: Any = None  # the service's, to pause, resume and see how far it read
        self.probas: list[float] = []
        self.ys: list[float] = []

    def restore(self, partition: int) -> int:
        """Read partition ``partition``'s join back from the changelog (what the last
        committed checkpoint left); returns the changes read."""
        join = LabelJoin(self.config.label_timeout, self.config.on_timeout,  # type: ignore[arg-type]
                         self.config.join_memory_bytes, tally=self.tally)  # fmt: skip
        consumer, tp = committed_reader(self.config.bootstrap_servers, self.config.join_topic, 0, partition)
        consumer.seek_to_beginning(tp)
        read = 0
        try:
            for record in read_to_end(consumer, tp, RESTORE_SECONDS):
                store = join.events if record.key[:1] == b"e" else join.labels
                key = record.key[1:].decode()
                if record.value is None:
                    store.pop(key)
                else:
                    store.put(key, _TIME.unpack_from(record.value)[0], record.value[_TIME.size :])
                read += 1
        finally:
            consumer.close()
        if (old := self.pairs.pop(partition, None)) is not None:
            old.join.close()
        self.pairs[partition] = PartitionJoin(join)
        return read

    def forget(self, partitions: set[int]) -> None:
        """Drop the joins and fetched records of partitions no longer owned."""
        for partition in partitions:
            pair = self.pairs.pop(partition, None)
            if pair is not None:
                pair.join.close()
            self.label_positions.pop(partition, None)

    def close(self) -> None:
        self.forget(set(self.pairs))

    def waiting(self) -> int:
        """Records fetched and not yet taken."""
        return sum(len(pair.events) + len(pair.labels) for pair in self.pairs.values())

    def fetched(self, tp: TopicPartition, block: RecordBlock) -> None:
        """Queue a block of records fetched (pausing its partition when its queue is full)."""
        pair = self.pairs[tp.partition]
        queue = pair.labels if tp.topic == self.config.labels_topic else pair.events
        queue.extend(self._read(record) for record in block)
        if len(queue) >= MAX_FETCHED:
            self.consumer.pause(tp)

    def _read(self, record: Record) -> Fetched:
        try:
            if record.problem is not None:
                raise SchemaError(record.problem)
            value = read_value(record.value, self.decode, self.config.max_record_bytes)
            return Fetched(parse_time(self.config.timestamp, value.get(self.config.timestamp)), record, value, None)
        except ValueError as e:  # SchemaError is a ValueError
            return Fetched(-math.inf, record, None, str(e))
        except Exception as e:  # a record that breaks something unforeseen: never a crash loop
            return Fetched(-math.inf, record, None, f"unexpected {type(e).__name__} while decoding: {e}")

    def process(self, limit: int) -> int:
        """Take the records that can be taken now, in each pair's time order, at most
        ``limit``; returns how many. SpillError when a spill file cannot be written."""
        taken, pairs = 0, list(self.pairs.items())
        while pairs and taken < limit:  # a share of each partition's in turn
            share, step = max((limit - taken) // len(pairs), 1), 0
            for partition, pair in pairs:
                step += self._merge(partition, pair, min(share, limit - taken - step))
            if not step:
                break
            taken += step
        if self.probas:
            self.metrics.update(np.array(self.probas), np.array(self.ys))
            self.probas, self.ys = [], []
        for tp in self.consumer.paused():
            owner = self.pairs.get(tp.partition)
            queue = None if owner is None else owner.labels if tp.topic == self.config.labels_topic else owner.events
            if queue is None or len(queue) < MAX_FETCHED // 2:
                self.consumer.resume(tp)
        return taken

    def _merge(self, partition: int, pair: PartitionJoin, limit: int) -> int:
        taken = 0
        while taken < limit:
            event_ = pair.events[0] if pair.events else None
            label = pair.labels[0] if pair.labels else None
            if label is not None and self._label_first(partition, event_, label):
                self._label(partition, pair, pair.labels.popleft())
            elif event_ is not None and (
                event_.problem is not None
                or label is not None
                or self._read_to_end(self.config.labels_topic or "", partition)
            ):
                self._event(partition, pair, pair.events.popleft())
            else:
                break
            taken += 1
        return taken

    def _label_first(self, partition: int, event_: Fetched | None, label: Fetched) -> bool:
        """Whether the label waiting goes before the event waiting (or, none waiting, before
        any event still to be read)."""
        if label.problem is not None:
            return True
        if event_ is not None:
            return label.time <= event_.time
        return self._read_to_end(self.config.topic, partition)

    def _read_to_end(self, topic: str, partition: int) -> bool:
        """Whether the consumer has read every record the partition holds (as far as the
        last fetch knows)."""
        tp = TopicPartition(topic, partition)
        end = self.consumer.highwater(tp)
        return end is not None and self.consumer.position(tp) >= end

    def _event(self, partition: int, pair: PartitionJoin, fetched: Fetched) -> None:
        if not self._arrive(partition, pair, fetched, self.positions, "events"):
            return
        record = fetched.record
        try:
            key = join_key(self.config.join_key, fetched.value)
            x = self.features.unlabelled(fetched.value)
            proba = self.model.predict_proba_one(x)[True]
            joined = pair.join.event(key, x, proba, fetched.time)
        except (ValueError, TypeError) as e:
            self._dead_letter(record, f"events: {e}")
            return
        self.outputs.event_prediction(record, key, proba, self.model.n_steps)
        if joined is not None:
            self._learn(partition, joined, record)

    def _label(self, partition: int, pair: PartitionJoin, fetched: Fetched) -> None:
        if not self._arrive(partition, pair, fetched, self.label_positions, "labels"):
            return
        record = fetched.record
        try:
            key = join_key(self.config.join_key, fetched.value)
            y = parse_label(self.features.target, fetched.value.get(self.features.target))
            where = [record.offset, (record.value or b"").decode(), None if record.key is None else record.key.hex()]
            joined = pair.join.label(key, y, fetched.time, where)
        except (ValueError, TypeError) as e:
            self._dead_letter(record, f"labels: {e}")
            return
        if joined is not None:
            self._learn(partition, joined, record)

    def _arrive(
        self, partition: int, pair: PartitionJoin, fetched: Fetched, positions: dict[int, int], side: str
    ) -> bool:
        """Count a record taken and move its topic's position past it; dead-letter it if it
        could not be read (False), else let time pass to its moment (True)."""
        self.counters["consumed"] += 1
        positions[partition] = fetched.record.offset + 1
        if fetched.problem is not None:
            self._dead_letter(fetched.record, f"{side}: {fetched.problem}")
            return False
        self._expire(partition, pair, fetched.time)
        return True

    def _expire(self, partition: int, pair: PartitionJoin, now: float) -> None:
        negatives, unmatched = pair.join.advance(now)
        for negative in negatives:
            self._learn(partition, negative, None)
        for key, (offset, value, key_hex) in unmatched:
            label = Record(self.config.labels_topic or "", partition, offset,
                           None if key_hex is None else bytes.fromhex(key_hex), value.encode())  # fmt: skip
            self._dead_letter(label, f"labels: no event with the join key {key!r} came within the timeout")

    def _learn(self, partition: int, pair: Pair, record: Record | None) -> None:
        try:
            self.model.learn_one(pair.x, pair.y)
        except MarginError as e:  # the model is left as it was
            if record is not None:
                self._dead_letter(record, str(e))
            else:
                event("negative_refused", partition=partition, join_key=pair.key, reason=str(e))
            return
        self.counters["learned"] += 1
        by_partition = self.counters["by_partition"]
        by_partition[str(partition)] = by_partition.get(str(partition), 0) + 1
        self.probas.append(pair.proba)
        self.ys.append(float(pair.y))

    def _dead_letter(self, record: Record, reason: str) -> None:
        self.counters["dead_lettered"] += 1
        self.outputs.dead_letter(record, reason)

    def write_changes(self, producer: Any) -> int:
        """Send each pair's join changes since the last checkpoint to its changelog
        partition (in the checkpoint's transaction); returns how many."""
        sent = 0
        for partition, pair in self.pairs.items():
            for key, (value, _) in pair.changes.items():
                producer.send(self.config.join_topic, key=key, value=value, partition=partition)
            sent += len(pair.changes)
            pair.changes.clear()
        return sent

    def offsets(self, owned: set[int]) -> dict[TopicPartition, OffsetAndMetadata]:
        """The labels topic's next offsets of the ``owned`` partitions, to commit."""
        return {TopicPartition(self.config.labels_topic or "", p): OffsetAndMetadata(o, "", -1)
                for p, o in self.label_positions.items() if p in owned}  # fmt: skip

    def figures(self) -> dict[str, Any]:
        """The join's figures now: counts, join rate, delays, what waits (for the log)."""
        waiting_events = sum(len(pair.join.events) for pair in self.pairs.values())
        waiting_labels = sum(len(pair.join.labels) for pair in self.pairs.values())
        figures = {k: v if not isinstance(v, float) or math.isfinite(v) else None
                   for k, v in self.tally.figures().items()}  # fmt: skip
        return {**figures, "events_waiting": waiting_events, "labels_waiting": waiting_labels}
