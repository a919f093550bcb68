"""The run loop: decode, predict, score, learn, checkpoint, and only then commit.

Exactly-once model state: the checkpoint (model, metrics, next offset of each partition)
is the truth. Offsets are committed to Kafka only after the checkpoint that covers them is
on disk, and the commit's metadata names this instance, checkpoint and folder. When a partition
is assigned, the service starts it from its own checkpoint's offset if the last commit
was its own (so a crash, or a damaged newest checkpoint, replays exactly what the model
has not seen), or from the later of the two if another instance committed since (it
learned those records). Every record therefore changes exactly one model exactly once.

The consumer reads each record batch in C as one block of offsets, keys and values
(consumers/record_blocks.py), not one Python object per record. Each poll's blocks are
decoded on a second thread (in C, without the GIL) while the main thread polls the next
ones; they are learned, in offset order, when that poll returns, and before any
checkpoint: at a revocation, at a stop. Nothing is checkpointed or committed that the
model has not learned.

Dead letters and predictions are produced at least once: after a crash, those sent
since the last checkpoint are sent again.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.checkpoints import Checkpoint, CheckpointStore, StateStore
from consumers.record_blocks import Record, RecordBlock, read_in_blocks
from consumers.telemetry import Snapshot, Telemetry
from stream_logreg import LogisticRegression
from stream_logreg.decode import JsonRows, Rows, Schema, SchemaError, decode_value, make_decoder
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import FolderLockedError, ServiceStartError
from stream_logreg.kafka_admin import ensure_topic, partition_count
from stream_logreg.options import flag
from stream_logreg.processing import Learned, learn_examples, learn_rows

__all__ = [
    "ConsumerService",
    "ServiceConfig",
    "consumer_settings",
    "event",
    "install_signal_handlers",
    "prepare_process",
]

log = logging.getLogger("consumers")
REASON_BYTES = 512  # a dead letter's reason header, at most
DEAD_LETTER_BYTES = 900_000  # a dead letter's key and value, at most (Kafka's default limit is 1 MiB)
MAX_UNFLUSHED = 20_000  # records sent (predictions, dead letters) before the producer is made to catch up


def prepare_process() -> None:
    """Settings for a process that runs the service (``stream-logreg consume``), made once
    everything is loaded; the benchmark's raw consumers run under them too.

    - Load the compiled kernels (numba's disk cache) now, not on the first batch.
    - Freeze what is loaded so far out of the cyclic garbage collector's walks, and let it
      run a twentieth as often: the records kafka-python makes are freed by reference
      counting, and without this the collector walking numba, pandas and friends took
      ~2 us per record.
    - A 0.5 ms GIL switch interval (Python's default is 5 ms): kafka-python reads fetch
      responses on its own thread, and with 5 ms turns it reads the next one too late to
      overlap the learning of the batch in hand.
    """
    LogisticRegression().learn_array(np.ones((1, 1)), ["warm-up"], np.ones(1))
    LogisticRegression().learn_batch([{"warm-up": 1.0}], [True])
    ProgressiveMetrics(every=1).update(np.ones(1), np.ones(1))
    gc.collect()
    gc.freeze()
    gc.set_threshold(14_000, 10, 10)  # Python's default: (700, 10, 10)
    sys.setswitchinterval(0.0005)


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the service is told, fixed at start."""

    bootstrap_servers: str
    topic: str
    group_id: str
    target: str
    checkpoint_dir: Path
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    checkpoint_every: int = 10_000
    checkpoint_interval: float = 30.0
    predictions_topic: str | None = None
    dead_letter_topic: str | None = None
    metrics_port: int = 9108
    metrics_address: str = "127.0.0.1"
    reset_model: bool = False
    max_record_bytes: int = 1 << 20
    max_abs_value: float = 1e9
    model: Mapping[str, Any] = field(default_factory=dict)  # LogisticRegression's parameters
    max_records: int | None = None
    idle_timeout: float | None = None
    keep_checkpoints: int = 3
    curve_every: int = 10_000
    max_poll_records: int = 5000


def consumer_settings(config: ServiceConfig) -> dict[str, Any]:
    """The service's KafkaConsumer settings (the benchmark's raw consumer uses them too)."""
    return {
        "bootstrap_servers": config.bootstrap_servers,
        "group_id": config.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # One poll should drain a whole fetch, so the next fetch is in flight while the batch
        # is learned. (The service's consumer counts record batches here, not records; the
        # run loop cuts them where a checkpoint falls due.)
        "max_poll_records": config.max_poll_records,
        "reconnect_backoff_max_ms": 5000,
        # A crashed instance's partitions move to the others after 6 s, not Kafka's default 45 s.
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1500,
        # The service waits for its topic rather than creating it by reading it, and sees
        # partitions added to it within 30 s (Kafka's default: 5 minutes).
        "allow_auto_create_topics": False,
        "metadata_max_age_ms": 30_000,
    }


def event(name: str, **fields: Any) -> None:
    """One structured log line (JSON) on stderr."""
    print(json.dumps({"ts": round(time.time(), 3), "event": name, **fields}, default=str), file=sys.stderr, flush=True)


_COMMIT_METADATA = re.compile(r"[0-9a-f]{32}:\d+:([0-9a-f]{12})")  # instance:checkpoint:folder key


class ConsumerService:
    """One instance of the live learner. ``run()`` returns the process exit status.

    Raises ServiceStartError when its checkpoint folder is another service's (locked, or
    holding another topic's or group's checkpoints).
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store: StateStore = CheckpointStore(config.checkpoint_dir, keep=config.keep_checkpoints)
        try:
            self.store.lock()
        except FolderLockedError as e:
            raise ServiceStartError(str(e)) from None
        self.failure: tuple[int, str] | None = None  # (exit status, why) when the service cannot go on
        self.unflushed = 0  # records sent since the producer last caught up
        self.schema = Schema(config.target, config.features, config.drop, config.categorical, config.max_abs_value)
        self.decode = make_decoder("json")
        self.rows = JsonRows(self.schema)
        # Batches being decoded (in C, without the GIL, on a second thread) while the main
        # thread polls the next one: (partition, messages, decoded rows), in poll order.
        self.decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.decoding: list[tuple[int, RecordBlock, Future[Rows]]] = []
        self.lock = threading.Lock()
        self.stop_requested = False
        self.pending_assignment: set[Any] = set()
        self.joined = False  # the group has assigned this instance its share (maybe none) once
        try:
            restored = self._restore()
        except ServiceStartError:
            self.store.unlock()
            raise
        self.fresh = restored is None  # no model restored: see _place
        if restored is None:
            self.model = LogisticRegression(**config.model)
            self.metrics = ProgressiveMetrics(every=config.curve_every, curve_limit=1000)
            self.positions: dict[int, int] = {}
            self.counters: dict[str, Any] = {"consumed": 0, "learned": 0, "dead_lettered": 0, "by_partition": {}}
            self.checkpoint_version = 0
        else:
            progress = restored.progress
            self.model = restored.model
            self.metrics = ProgressiveMetrics.from_state(progress["metrics"])
            self.positions = {int(p): int(o) for p, o in progress["offsets"].items()}
            self.counters = progress["counters"]
            self.checkpoint_version = restored.version
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self.consumer: Any = None  # made by run()
        self.telemetry = Telemetry(self.snapshot())

    def _restore(self) -> Checkpoint | None:
        """The newest valid checkpoint, if it is this service's: ServiceStartError when it
        belongs to another topic or group, or its model learns with other parameters."""
        config, restored = self.config, self.store.latest()
        if restored is None:
            return None
        saved = restored.progress
        for what, mine, theirs in (("topic", config.topic, saved["topic"]),
                                   ("group", config.group_id, saved.get("group", config.group_id))):  # fmt: skip
            if mine != theirs:
                raise ServiceStartError(
                    f"{config.checkpoint_dir} holds the checkpoints of {what} {theirs!r}, not {mine!r}; "
                    f"give each {what} its own --checkpoint-dir"
                )
        for name, value in config.model.items():
            if getattr(restored.model, name) != value:
                raise ServiceStartError(
                    f"{flag(name)} {value} differs from the {getattr(restored.model, name)} the model in "
                    f"{config.checkpoint_dir} learns with; pass that value, or use a new --checkpoint-dir"
                )
        return restored

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        event("start", topic=config.topic, group=config.group_id, instance=self.store.instance_id,
              checkpoint=self.checkpoint_version, learned=self.counters["learned"], offsets=self.positions)  # fmt: skip
        try:
            self.telemetry.serve(config.metrics_port, config.metrics_address)
        except OSError as e:
            raise ServiceStartError(
                f"cannot serve metrics on {config.metrics_address}:{config.metrics_port} ({e.strerror}); "
                "pick a free --metrics-port (0: none)"
            ) from None
        self.consumer = read_in_blocks(KafkaConsumer(**consumer_settings(config)), config.max_record_bytes)
        self.producer = self._producer()
        if self._wait_for_topic():
            self._create_output_topics()
            self.consumer.partitions_for_topic(config.topic)  # the group's first assignment sees its partitions
            self.consumer.subscribe([config.topic], listener=_Rebalance(self))
            self._loop()
        with self.lock:
            self._learn_decoded()
            offsets = self._checkpoint()  # None after a failure: nothing more is committed
        self.decoder.shutdown()
        self.telemetry.update(self.snapshot())
        if offsets:
            try:
                self.consumer.commit(offsets)
            except Exception as e:
                event("commit_failed", error=str(e))
        self.consumer.close(autocommit=False)
        if self.producer is not None:
            self.producer.close()
        event("stop", checkpoint=self.checkpoint_version, learned=self.counters["learned"],
              dead_lettered=self.counters["dead_lettered"], offsets=self.positions,
              error=self.failure and self.failure[1])  # fmt: skip
        return 0 if self.failure is None else self.failure[0]

    def _loop(self) -> None:
        """Poll, learn and checkpoint until a stop, --max-records or --idle-timeout."""
        config = self.config
        consumed_this_run, last_record = 0, time.monotonic()
        while not self.stop_requested:
            batch = self.consumer.poll(timeout_ms=200)  # the batches of the last poll decode meanwhile
            with self.lock:
                self._learn_decoded()
                placed, self.pending_assignment = self.pending_assignment, set()
            self._place(placed)
            if placed:
                last_record = time.monotonic()
            with self.lock:
                for tp, blocks in batch.items():
                    if tp.partition in placed or tp not in self.consumer.assignment():
                        continue  # fetched before this partition's start was decided; it is fetched again
                    messages = RecordBlock.join(blocks)
                    if config.max_records is not None:
                        messages = messages[: config.max_records - consumed_this_run]
                    if messages:
                        self._decode(tp.partition, messages)
                        consumed_this_run += len(messages)
                        last_record = time.monotonic()
                if self._checkpoint_due():
                    self._checkpoint_and_commit()
            if self.telemetry.due():
                self.telemetry.update(self.snapshot())
            if config.max_records is not None and consumed_this_run >= config.max_records:
                return
            if time.monotonic() - last_record > (config.idle_timeout or math.inf):
                if self._idle():
                    event("idle", seconds=config.idle_timeout)
                    return
                last_record = time.monotonic()

    def _idle(self) -> bool:
        """Whether there is nothing to read: the group has given this instance its share
        and the broker says every partition of it is read to its end. An unreachable
        broker, a group still joining or records not yet read are not idleness."""
        assigned = self.consumer.assignment()
        try:
            ends = self.consumer.end_offsets(list(assigned), timeout_ms=5000) if assigned else {}
            if not assigned:
                partition_count(self.config.bootstrap_servers, self.config.topic)  # does the broker answer?
        except KafkaError as e:
            event("idle_clock_held", reason=f"the broker does not answer ({e})")
            return False
        if not self.joined:
            return False
        return all(ends[tp] <= self.consumer.position(tp, timeout_ms=5000) for tp in assigned)

    def _wait_for_topic(self) -> bool:
        """Wait, without spinning, until the topic exists; False when a stop or the idle
        timeout (counted while the broker answers) comes first."""
        config = self.config
        since, said = time.monotonic(), ""
        while not self.stop_requested:
            try:
                if partition_count(config.bootstrap_servers, config.topic) > 0:
                    return True
                reason = "the topic does not exist yet"
            except KafkaError as e:
                reason, since = f"the broker does not answer ({e})", time.monotonic()
            if reason != said:
                event("waiting_for_topic", topic=config.topic, reason=reason)
                said = reason
            if time.monotonic() - since > (config.idle_timeout or math.inf):
                event("idle", seconds=config.idle_timeout, reason="the topic never appeared")
                return False
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not self.stop_requested:
                time.sleep(0.05)
        return False

    def _create_output_topics(self) -> None:
        """Create the predictions and dead-letter topics now (the broker's defaults), so the
        first record sent to them does not wait on the broker's auto-creation."""
        for topic in (self.config.predictions_topic, self.config.dead_letter_topic):
            if topic:
                try:
                    ensure_topic(self.config.bootstrap_servers, topic)
                except KafkaError as e:
                    event("topic_not_created", topic=topic, error=str(e))

    def _producer(self) -> Any:
        if not (self.config.predictions_topic or self.config.dead_letter_topic):
            return None
        return KafkaProducer(bootstrap_servers=self.config.bootstrap_servers, acks="all", linger_ms=20)

    def _decode(self, partition: int, messages: RecordBlock) -> None:
        """Hand the messages to the decoding thread; where the count since the last
        checkpoint reaches --checkpoint-every, learn what is decoded and checkpoint there."""
        while messages:
            room = self.config.checkpoint_every - self.since_checkpoint - sum(len(m) for _, m, _ in self.decoding)
            cut = room if 0 < room < len(messages) else len(messages)
            piece, messages = messages[:cut], messages[cut:]
            self.decoding.append((partition, piece, self.decoder.submit(self.rows.decode, piece.values)))
            if messages:
                self._learn_decoded()
                self._checkpoint_and_commit()

    def _checkpoint_and_commit(self) -> None:
        if offsets := self._checkpoint():
            self.consumer.commit_async(offsets, callback=_log_commit)  # sent in order, not awaited

    def _learn_decoded(self) -> None:
        """Learn the batches being decoded, in poll order (call with self.lock held)."""
        for partition, messages, rows in self.decoding:
            self._process(partition, messages, rows.result())
        self.decoding = []

    def _process(self, partition: int, messages: RecordBlock, batch: Rows) -> None:
        """Learn the decoded messages of one partition, in offset order: runs of plain
        records through the dense kernel, any other record the careful way."""
        start = 0
        for i in [*np.flatnonzero(~batch.ok).tolist(), len(messages)]:
            if start < i:
                done = learn_rows(self.model, batch.features, batch.values[start:i], batch.labels[start:i])
                self._settle(partition, done, messages[start:i])
            if i < len(messages):
                self._process_one(partition, messages[i])
            start = i + 1
        self.counters["consumed"] += len(messages)
        self.positions[partition] = messages.offsets[-1] + 1
        self.since_checkpoint += len(messages)

    def _process_one(self, partition: int, message: Record) -> None:
        """Decode one record the careful way and learn it; whatever is wrong with it
        dead-letters it (no record can stop the service)."""
        try:
            if message.problem is not None:
                raise SchemaError(message.problem)
            x, y = decode_value(message.value, self.decode, self.schema, self.config.max_record_bytes)
        except SchemaError as e:
            self._dead_letter(message, str(e))
            return
        except Exception as e:  # a record that breaks something unforeseen: never a crash loop
            self._dead_letter(message, f"unexpected {type(e).__name__} while decoding: {e}")
            return
        self._settle(partition, learn_examples(self.model, [x], [y]), [message])

    def _settle(self, partition: int, done: Learned, messages: RecordBlock | list[Record]) -> None:
        """Dead-letter what the model refused; score, count and publish what it learned."""
        for position, reason in done.refused:
            self._dead_letter(messages[position], reason)
        learned = messages if not done.refused else [messages[position] for position in done.learned]
        self._learned(partition, done.labels, learned, done.probas, done.version)

    def _learned(
        self, partition: int, labels: np.ndarray, messages: RecordBlock | list[Record], probas: np.ndarray, version: int
    ) -> None:
        self.metrics.update(probas, labels)
        self.counters["learned"] += len(messages)
        by_partition = self.counters["by_partition"]
        by_partition[str(partition)] = by_partition.get(str(partition), 0) + len(messages)
        if self.config.predictions_topic:
            for i, (message, p) in enumerate(zip(messages, probas.tolist(), strict=True)):
                value = {
                    "partition": partition,
                    "offset": message.offset,
                    "probability": p,
                    "model_version": version + i,
                }
                self._send(self.config.predictions_topic, message, json.dumps(value).encode(), message.key, [])

    def _dead_letter(self, message: Record, reason: str) -> None:
        """Send the record to the dead-letter topic, or log it; a dead letter always fits:
        the reason is cut to 512 bytes and a value too large is cut, with headers saying so."""
        self.counters["dead_lettered"] += 1
        if not self.config.dead_letter_topic:
            event("dead_letter", partition=message.partition, offset=message.offset, reason=reason[:REASON_BYTES])
            return
        headers = [
            ("reason", reason.encode()[:REASON_BYTES]),
            ("source_topic", message.topic.encode()),
            ("source_partition", str(message.partition).encode()),
            ("source_offset", str(message.offset).encode()),
        ]
        value, key = message.value, message.key
        room = DEAD_LETTER_BYTES - len(key or b"")
        if value is not None and len(value) > room:
            headers += [("truncated", b"true"), ("original_size", str(len(value)).encode()),
                        ("original_sha256", hashlib.sha256(value).hexdigest().encode())]  # fmt: skip
            value = value[: max(room, 0)]
            if key is not None and len(key) > DEAD_LETTER_BYTES // 2:
                key = key[: DEAD_LETTER_BYTES // 2]
                headers.append(("key_truncated", b"true"))
        if value is None and key is None:  # Kafka takes no record without both; the headers say what it was
            value = b""
        self._send(self.config.dead_letter_topic, message, value, key, headers)

    def _send(self, topic: str, message: Record, value: bytes | None, key: bytes | None, headers: list) -> None:
        """Produce one record about ``message``; a failure is logged with where the record
        came from (the service goes on)."""

        def failed(error: Exception) -> None:
            event("send_failed", topic=topic, partition=message.partition, offset=message.offset, error=str(error))

        try:
            self.producer.send(topic, value=value, key=key, headers=headers).add_errback(failed)
        except Exception as e:  # refused before it left (too large for the producer, buffer full): logged
            failed(e)
        self.unflushed += 1
        if self.unflushed >= MAX_UNFLUSHED:  # kafka-python's producer has no memory bound of its own
            self.unflushed = 0
            try:
                self.producer.flush(timeout=30)
            except Exception as e:  # the broker is away: the records wait in the producer, and it retries
                event("producer_behind", error=str(e))

    def snapshot(self) -> Snapshot:
        """The figures the metrics show, now."""
        assignment = self.consumer.assignment() if self.consumer is not None else set()
        lags = {}
        for tp in assignment:
            high = self.consumer.highwater(tp)
            if high is not None and tp.partition in self.positions:
                lags[tp.partition] = max(high - self.positions[tp.partition], 0)
        rolling, counters = self.metrics.rolling(), self.counters
        return Snapshot(
            consumed=counters["consumed"], learned=counters["learned"], dead_lettered=counters["dead_lettered"],
            assigned=len(assignment), lags=lags, log_loss=self.metrics.log_loss, accuracy=self.metrics.accuracy,
            rolling_log_loss=rolling["log_loss"], rolling_accuracy=rolling["accuracy"],
            model_version=self.model.n_steps, checkpoint_version=self.checkpoint_version,
            last_checkpoint=self.last_checkpoint,
        )  # fmt: skip

    # -- checkpoints and commits ------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        if self.since_checkpoint == 0:
            return False
        return (
            self.since_checkpoint >= self.config.checkpoint_every
            or time.monotonic() - self.last_checkpoint >= self.config.checkpoint_interval
        )

    def _checkpoint(self, partitions: set[int] | None = None) -> dict[Any, Any] | None:
        """Write a checkpoint (call with self.lock held); return the offsets it covers for
        ``partitions`` (default: the ones owned), ready to commit. None when the dead
        letters could not be flushed: then nothing is checkpointed, and it is tried later.
        """

        if self.failure is not None:
            return None
        if self.producer is not None:
            try:
                self.producer.flush(timeout=10)
            except Exception as e:  # the broker is away: keep going, checkpoint later
                event("checkpoint_postponed", reason=f"the producer could not flush: {e}")
                return None
        try:
            progress = {
                "instance": self.store.instance_id,
                "group": self.config.group_id,
                "topic": self.config.topic,
                "offsets": {str(p): o for p, o in sorted(self.positions.items())},
                "counters": self.counters,
                "metrics": self.metrics.to_state(),
            }
            checkpoint = self.store.write(self.model, progress)
        except OSError as e:  # a read-only or full disk: stop, committing nothing past the last checkpoint
            self.failure = (1, (
                f"cannot write a checkpoint in {self.config.checkpoint_dir}: {e}; nothing was committed past "
                f"checkpoint {self.checkpoint_version}; fix the folder, then restart (it goes on from there)"
            ))  # fmt: skip
            event("checkpoint_failed", folder=str(self.config.checkpoint_dir), error=str(e))
            self.stop_requested = True
            return None
        self.checkpoint_version = checkpoint.version
        self.since_checkpoint, self.last_checkpoint = 0, time.monotonic()
        event("checkpoint", version=checkpoint.version, learned=self.counters["learned"], offsets=self.positions,
              rss_mb=round(_resident_mb(), 1))  # fmt: skip
        return self._offsets(partitions)

    def _offsets(self, partitions: set[int] | None = None) -> dict[Any, Any]:
        """The last checkpoint's offsets for ``partitions`` (default: the ones owned), to commit."""
        if partitions is None:
            partitions = {tp.partition for tp in self.consumer.assignment()}
        metadata = f"{self.store.instance_id}:{self.checkpoint_version}:{self.store.key}"
        return {
            TopicPartition(self.config.topic, p): OffsetAndMetadata(o, metadata, -1)
            for p, o in self.positions.items()
            if p in partitions
        }

    def _lost_here(self, metadata: str) -> bool:
        """Whether a commit names a checkpoint of this folder on this host (which, starting
        fresh, this service no longer has); another instance's commit is a hand-over."""
        made = _COMMIT_METADATA.fullmatch(metadata)
        return made is not None and made.group(1) == self.store.key

    def _place(self, partitions: set[int]) -> None:
        """Decide where each newly assigned partition starts, and seek there (main thread,
        without the lock: it waits on the broker)."""
        for partition in sorted(partitions):
            tp = TopicPartition(self.config.topic, partition)
            committed = self.consumer.committed(tp, metadata=True)
            mine = self.positions.get(partition)
            if committed is None or committed.offset is None or committed.offset < 0:
                start = mine
            elif self.fresh and not self.config.reset_model and self._lost_here(str(committed.metadata)):
                self.failure = (2, (
                    f"the group's offset {committed.offset} of partition {partition} was committed with checkpoint "
                    f"{committed.metadata}, which {self.config.checkpoint_dir} does not hold (empty, deleted or "
                    "another folder): starting there with a fresh model would leave those records out of it; "
                    "restore the folder, or pass --reset-model to start a fresh model there on purpose"
                ))  # fmt: skip
                event("missing_checkpoint", partition=partition, committed=committed.offset,
                      metadata=committed.metadata)  # fmt: skip
                self.stop_requested = True
                return
            elif str(committed.metadata).startswith(self.store.instance_id + ":"):
                start = mine if mine is not None else committed.offset
            else:
                start = max(committed.offset, mine or 0)
            if start is None:
                start = self.consumer.beginning_offsets([tp])[tp]
            self.consumer.seek(tp, start)
            self.positions[partition] = start
            event("assigned", partition=partition, start=start, committed=committed and committed.offset, mine=mine)
        self.fresh = False


def _resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _log_commit(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        event("commit_failed", error=str(response))


class _Rebalance(AsyncConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: checkpoint and commit what is revoked (waiting
    for the batch in hand), and hand new partitions to the main loop to place."""

    def __init__(self, service: ConsumerService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        service = self.service
        if not revoked:
            return
        with service.lock:  # waits for the batch in hand
            event("rebalance", revoked=sorted(tp.partition for tp in revoked))
            service._learn_decoded()
            partitions = {tp.partition for tp in revoked}
            offsets = service._checkpoint(partitions) if service.since_checkpoint else service._offsets(partitions)
            future = service.consumer.commit_async(offsets) if offsets else None
        if future is not None:
            try:
                await future
            except Exception as e:
                event("commit_failed", error=str(e))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        with self.service.lock:
            event("rebalance", assigned=sorted(tp.partition for tp in assigned))
            self.service.pending_assignment |= {tp.partition for tp in assigned}
            self.service.joined = True


def install_signal_handlers(service: ConsumerService) -> None:
    """SIGTERM or Ctrl-C: finish the batch in hand, checkpoint, commit, exit 0. Ctrl-C
    again: exit at once (nothing is committed past the last checkpoint)."""

    def on_signal(signum: int, frame: Any) -> None:
        if service.stop_requested and signum == signal.SIGINT:
            os._exit(130)
        service.stop_requested = True
        event("signal", signal=signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
