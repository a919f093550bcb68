"""The run loop: poll, decode, learn, checkpoint, and only then commit.

Exactly-once model state: the checkpoint (model, metrics, next offset of each partition)
is the truth; offsets are committed to Kafka only after the checkpoint that covers them is
written, and each partition starts where its checkpoint says (consumers/checkpointing.py).
Every record therefore changes exactly one model exactly once.

The consumer reads each record batch in C as one block of offsets, keys and values
(consumers/record_blocks.py), not one Python object per record. Each poll's blocks are
decoded on a second thread (in C, without the GIL) while the main thread polls the next
ones; they are learned (consumers/processor.py), in offset order, when that poll returns,
and before any checkpoint: at a revocation, at a stop. Nothing is checkpointed or
committed that the model has not learned.

Dead letters and predictions are produced at least once (consumers/outputs.py): after a
crash, those sent since the last checkpoint are sent again; exactly once in the exactly-once
mode (consumers/transactional.py). With ``--labels-topic`` the records of both topics go
through the label join (consumers/label_join.py) instead of the decoding thread.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from consumers.checkpointing import Checkpointer, Failure, fresh_progress
from consumers.checkpoints import CheckpointStore, StateStore
from consumers.config import ServiceConfig, consumer_settings, event, prepare_process, restored_scaler
from consumers.idle import caught_up, stalled, wait_for_topic
from consumers.label_join import LabelJoiner, coassignment_problem, copartition_problem
from consumers.outputs import Outputs
from consumers.processor import RecordProcessor
from consumers.record_blocks import RecordBlock, read_in_blocks
from consumers.telemetry import Snapshot, Telemetry
from consumers.transactional import TransactionalCheckpointer
from stream_logreg.decode import JsonRows, Rows
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import FolderLockedError, ServiceStartError
from stream_logreg.join_store import SpillError
from stream_logreg.options import build_model

STALLED_AFTER = 60.0  # seconds without a record, while records wait, before starting the consumer again
# Seconds from a revocation without the assignment that should follow before starting the
# consumer again: kafka-python 3.0.12 can lose a join's completion when a poll's timeout runs
# out during it, and then never fetches again (the poll's timeout is made longer than a
# checkpoint, which the revocation listener writes, to keep that from happening).
REJOIN_STUCK_AFTER = 20.0

__all__ = [
    "ConsumerService",
    "ServiceConfig",
    "consumer_settings",
    "event",
    "install_signal_handlers",
    "prepare_process",
]


class ConsumerService:
    """One instance of the live learner. ``run()`` returns the process exit status.

    Raises ServiceStartError when its checkpoint folder is another service's (locked, or
    holding another topic's or group's checkpoints).
    """

    def __init__(self, config: ServiceConfig, consumed_at_start: int | None = None) -> None:
        self.config = config
        self.failure: Failure | None = None  # when the service cannot go on
        self.outputs = Outputs(config)
        if config.exactly_once:
            self.checkpoints: Checkpointer | TransactionalCheckpointer = TransactionalCheckpointer(config, self.outputs)
            self.store: StateStore = self.checkpoints.store
        else:
            assert config.checkpoint_dir is not None
            self.store = CheckpointStore(config.checkpoint_dir, keep=config.keep_checkpoints)
            self.checkpoints = Checkpointer(config, self.store, self.outputs)
        try:
            self.store.lock()
        except FolderLockedError as e:
            raise ServiceStartError(str(e)) from None
        try:
            restored = self.checkpoints.restore()
            progress = restored.progress if restored is not None else fresh_progress(config)
            self.scaler = restored_scaler(config, progress.get("features"))
        except ServiceStartError:
            self.store.unlock()
            raise
        self.model = restored.model if restored is not None else build_model(config.model, config.hash_bits)
        self.metrics = ProgressiveMetrics.from_state(progress["metrics"])
        self.positions = {int(p): int(o) for p, o in progress["offsets"].items()}
        self.counters: dict[str, Any] = progress["counters"]
        # What --max-records counts from: the state's count when the process started (a
        # service started again after an aborted transaction goes on counting from there).
        self.consumed_at_start = self.counters["consumed"] if consumed_at_start is None else consumed_at_start
        features = config.featurizer
        self.processor = RecordProcessor(self.model, self.metrics, self.counters, self.positions, features,
                                         self.outputs, config.max_record_bytes, self.scaler)  # fmt: skip
        self.join: LabelJoiner | None = None  # with --labels-topic
        self.join_backlog = False  # records the join could take wait: poll without waiting
        if config.labels_topic:
            self.join = LabelJoiner(config, self.model, self.metrics, self.counters, self.positions, self.outputs)
            assert isinstance(self.checkpoints, TransactionalCheckpointer)  # the command refuses it otherwise
            self.checkpoints.join = self.join
        self.rows = JsonRows(features)
        # Batches being decoded (in C, without the GIL, on a second thread) while the main
        # thread polls the next one: (partition, messages, decoded rows), in poll order.
        self.decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.decoding: list[tuple[int, RecordBlock, Future[Rows]]] = []
        self.lock = threading.Lock()
        self.stop_requested = False
        self.pending_assignment: set[TopicPartition] = set()
        self.joined = False  # the group has assigned this instance its share (maybe none) once
        self.revoked_at: float | None = None  # when partitions were revoked, until the next assignment
        self.checkpoint_seconds = 0.0  # how long the last checkpoint took
        self.consumer: Any = None  # made by run()
        self.telemetry = Telemetry(self.snapshot())

    def run(self) -> int:
        config = self.config
        event("start", topic=config.topic, group=config.group_id, instance=self.store.instance_id,
              checkpoint=self.checkpoints.version, learned=self.counters["learned"],
              offsets=self.positions)  # fmt: skip
        try:
            self.telemetry.serve(config.metrics_port, config.metrics_address)
        except OSError as e:
            raise ServiceStartError(
                f"cannot serve metrics on {config.metrics_address}:{config.metrics_port} ({e.strerror}); "
                "pick a free --metrics-port (0: none)"
            ) from None
        self.consumer = read_in_blocks(KafkaConsumer(**consumer_settings(config)), config.max_record_bytes)
        if isinstance(self.checkpoints, TransactionalCheckpointer):
            self.checkpoints.consumer = self.consumer  # its group metadata goes with each commit
        topics = [config.topic] if config.labels_topic is None else [config.topic, config.labels_topic]
        if all(wait_for_topic(config, lambda: self.stop_requested, topic) for topic in topics):
            self.outputs.connect()
            for topic in topics:
                self.consumer.partitions_for_topic(topic)  # the group's first assignment sees its partitions
            if self.join is not None:
                self.join.consumer = self.consumer
                if problem := copartition_problem(config, self.consumer):
                    self._fail(Failure(2, problem))
            if self.failure is None:
                self.consumer.subscribe(topics, listener=_Rebalance(self))
                self._loop()
        with self.lock:
            self._learn_decoded()
            offsets = self._checkpoint()  # None after a failure: nothing more is committed
        self.decoder.shutdown()
        if self.join is not None:
            self.join.close()
        self.telemetry.update(self.snapshot())
        if offsets:
            try:
                self.consumer.commit(offsets)
            except Exception as e:
                event("commit_failed", error=str(e))
        self.consumer.close(autocommit=False)
        self.outputs.close()
        self.checkpoints.close()
        self.store.unlock()
        event("stop", checkpoint=self.checkpoints.version, learned=self.counters["learned"],
              dead_lettered=self.counters["dead_lettered"], offsets=self.positions,
              error=self.failure and str(self.failure))  # fmt: skip
        return 0 if self.failure is None else self.failure.status

    def _loop(self) -> None:
        """Poll, learn and checkpoint until a stop, --max-records or --idle-timeout."""
        config = self.config
        last_record = last_fetched = time.monotonic()
        while not self.stop_requested:
            try:
                timeout_ms = 0 if self.join_backlog else self._poll_timeout_ms()
                batch = self.consumer.poll(timeout_ms=timeout_ms)  # last poll's batches decode meanwhile
            except KafkaError as e:  # kafka-python 3.0 can raise a lost connection from poll
                event("poll_failed", error=repr(e))
                time.sleep(0.5)  # the broker is away: it reconnects with backoff meanwhile
                batch = {}
            with self.lock:
                self._learn_decoded()
                try:
                    self.checkpoints.fold_changes()
                except Failure as e:
                    self._fail(e)
                placed, self.pending_assignment = self.pending_assignment, set()
            self._place(placed)
            if placed:
                last_record = time.monotonic()
            with self.lock:
                for tp, blocks in batch.items():
                    if tp in placed or tp not in self.consumer.assignment():
                        continue  # fetched before this partition's start was decided; it is fetched again
                    messages = RecordBlock.join(blocks)
                    if config.max_records is not None:
                        messages = messages[: config.max_records - self._consumed()]
                    if messages:
                        if self.join is not None:
                            self.join.fetched(tp, messages)
                        else:
                            self._decode(tp.partition, messages)
                        last_record = last_fetched = time.monotonic()
                if self.join is not None and self.failure is None and self._take_joined():
                    last_record = time.monotonic()  # learning what was fetched before is not idleness
                if self.checkpoints.due():
                    self._checkpoint_and_commit()
            if self.telemetry.due():
                self.telemetry.update(self.snapshot())
            if config.max_records is not None and self._consumed() >= config.max_records:
                return
            if time.monotonic() - last_record > (config.idle_timeout or math.inf):
                if caught_up(self.consumer, self.config, self.joined):
                    event("idle", seconds=config.idle_timeout)
                    return
                last_record = time.monotonic()
            if self.revoked_at is not None and time.monotonic() - self.revoked_at > REJOIN_STUCK_AFTER:
                self._fail(Failure(75, (
                    f"no assignment came {REJOIN_STUCK_AFTER:.0f} s after a revocation (a kafka-python consumer "
                    "stuck in a rebalance); starting again"
                ), retry=True))  # fmt: skip
                return
            if time.monotonic() - last_fetched > STALLED_AFTER:
                if stalled(self.consumer):
                    self._fail(Failure(75, (
                        f"the consumer fetched nothing for {STALLED_AFTER:.0f} s though its partitions have records "
                        "to read (a kafka-python consumer stuck after a rebalance); starting again"
                    ), retry=True))  # fmt: skip
                    return
                last_fetched = time.monotonic()

    def _poll_timeout_ms(self) -> int:
        """Long enough for a rebalance whose revocation checkpoints: kafka-python 3.0.12 loses
        a join's completion when the poll's timeout runs out during it (a poll returns as soon
        as records come, so a long timeout costs nothing while they do)."""
        return int(1000 * (0.5 + 2 * self.checkpoint_seconds))

    def _consumed(self) -> int:
        """Records consumed since the process started (learned, or being decoded or joined)."""
        decoding = sum(len(m) for _, m, _ in self.decoding) + (self.join.waiting() if self.join else 0)
        return self.counters["consumed"] - self.consumed_at_start + decoding

    def _take_joined(self) -> int:
        """Take what the label joins can take now, up to --max-poll-records, checkpointing
        where the count since the last checkpoint reaches --checkpoint-every (call with
        self.lock held); returns how many. ``join_backlog`` says whether more could be taken."""
        assert self.join is not None
        budget = self.config.max_poll_records  # then back to poll (a rebalance waits for it)
        try:
            while self.failure is None and budget > 0:
                taken = self.join.process(min(max(self.config.checkpoint_every - self.checkpoints.since, 1), budget))
                self.checkpoints.since += taken
                budget -= taken
                if not taken:
                    break
                if self.checkpoints.since >= self.config.checkpoint_every:
                    self._checkpoint_and_commit()
        except SpillError as e:
            self._fail(Failure(1, f"{e}; nothing was committed past checkpoint {self.checkpoints.version}"))
        self.join_backlog = budget <= 0
        return self.config.max_poll_records - budget

    def _decode(self, partition: int, messages: RecordBlock) -> None:
        """Hand the messages to the decoding thread; where the count since the last
        checkpoint reaches --checkpoint-every, learn what is decoded and checkpoint there."""
        while messages:
            decoding = sum(len(m) for _, m, _ in self.decoding)
            room = self.config.checkpoint_every - self.checkpoints.since - decoding
            cut = room if 0 < room < len(messages) else len(messages)
            piece, messages = messages[:cut], messages[cut:]
            self.decoding.append((partition, piece, self.decoder.submit(self.rows.decode, piece.values)))
            if messages and self.failure is None:
                self._learn_decoded()
                self._checkpoint_and_commit()

    def _learn_decoded(self) -> None:
        """Learn the batches being decoded, in poll order (call with self.lock held); after
        a failure, drop them (nothing more will be committed)."""
        for partition, messages, rows in self.decoding if self.failure is None else []:
            self.processor.block(partition, messages, rows.result())
            self.checkpoints.since += len(messages)
        self.decoding = []

    def _checkpoint_and_commit(self) -> None:
        if offsets := self._checkpoint():
            self.consumer.commit_async(offsets, callback=_log_commit)  # sent in order, not awaited

    def _checkpoint(self, partitions: set[int] | None = None) -> dict[Any, Any] | None:
        """Write a checkpoint (call with self.lock held); return the offsets it covers for
        ``partitions`` (default: the ones owned), ready to commit. None when it was
        postponed (tried later) or the service has failed."""
        if self.failure is not None:
            return None
        began = time.monotonic()
        try:
            features = {"settings": self.config.feature_settings(),
                        "scaler": None if self.scaler is None else self.scaler.to_state()}  # fmt: skip
            if not self.checkpoints.write(self.model, self.metrics, self.counters, self.positions, features):
                return None
            self.checkpoint_seconds = time.monotonic() - began
        except Failure as e:
            self._fail(e)
            return None
        return self._offsets(partitions)

    def _offsets(self, partitions: set[int] | None = None) -> dict[Any, Any]:
        if partitions is None:
            partitions = {tp.partition for tp in self.consumer.assignment()}
        return self.checkpoints.offsets(self.positions, partitions)

    def _fail(self, failure: Failure) -> None:
        self.failure = failure
        self.stop_requested = True

    def _place(self, partitions: set[TopicPartition]) -> None:
        """Decide where each newly assigned partition starts (and read its label join back),
        and seek there (main thread, without the lock: it waits on the broker)."""
        for tp in sorted(partitions):
            partition, labels = tp.partition, tp.topic != self.config.topic
            committed = self.consumer.committed(tp, metadata=True)
            mine = None if labels else self.positions.get(partition)
            try:
                start = self.checkpoints.start(partition, committed, mine)
                began = time.monotonic()
                restored = None if self.join is None or labels else self.join.restore(partition)
            except Failure as e:
                self._fail(e)
                return
            except (KafkaError, TimeoutError, SpillError) as e:
                self._fail(Failure(75, f"cannot read the label join of partition {partition} back ({e!r})",
                                   retry=True))  # fmt: skip
                return
            if start is None:
                start = self.consumer.beginning_offsets([tp])[tp]
            if tp not in self.consumer.assignment():  # revoked while this waited on the broker (an outage)
                event("placement_skipped", topic=tp.topic, partition=partition, reason="revoked while placing")
                if restored is not None:
                    self.join.forget({partition})  # type: ignore[union-attr]
                continue
            self.consumer.seek(tp, start)
            if labels:
                assert self.join is not None
                self.join.label_positions[partition] = start
            else:
                self.positions[partition] = start
            join = {} if restored is None else {"join_changes_read": restored,
                                                "join_read_s": round(time.monotonic() - began, 3)}  # fmt: skip
            event("assigned", topic=tp.topic, partition=partition, start=start,
                  committed=committed and committed.offset, mine=mine, **join)  # fmt: skip
        self.checkpoints.fresh = False
        if self.join is not None and partitions and (problem := coassignment_problem(self.config, self.consumer)):
            self._fail(Failure(2, problem))

    def snapshot(self) -> Snapshot:
        """The figures the metrics show, now."""
        assignment = self.consumer.assignment() if self.consumer is not None else set()
        lags = {}
        for tp in assignment:
            high = self.consumer.highwater(tp)
            if high is not None and tp.topic == self.config.topic and tp.partition in self.positions:
                lags[tp.partition] = max(high - self.positions[tp.partition], 0)
        rolling, counters = self.metrics.rolling(), self.counters
        return Snapshot(
            consumed=counters["consumed"], learned=counters["learned"], dead_lettered=counters["dead_lettered"],
            assigned=len(assignment), lags=lags, log_loss=self.metrics.log_loss, accuracy=self.metrics.accuracy,
            rolling_log_loss=rolling["log_loss"], rolling_accuracy=rolling["accuracy"],
            model_version=self.model.n_steps, checkpoint_version=self.checkpoints.version,
            last_checkpoint=self.checkpoints.last, join=self.join.figures() if self.join is not None else None,
        )  # fmt: skip


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
            event("rebalance", revoked=sorted(tp.partition for tp in revoked if tp.topic == service.config.topic))
            service.revoked_at = time.monotonic()
            service._learn_decoded()
            partitions = {tp.partition for tp in revoked}
            checkpoints = service.checkpoints
            offsets = service._checkpoint(partitions) if checkpoints.since else service._offsets(partitions)
            future = service.consumer.commit_async(offsets) if offsets else None
            if service.join is not None:
                service.join.forget(partitions)
        if future is not None:
            try:
                await future
            except Exception as e:
                event("commit_failed", error=str(e))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        with self.service.lock:
            event(
                "rebalance", assigned=sorted(tp.partition for tp in assigned if tp.topic == self.service.config.topic)
            )
            if isinstance(self.service.checkpoints, TransactionalCheckpointer):
                self.service.checkpoints.generation = self.service.consumer.group_metadata()
            self.service.pending_assignment |= set(assigned)
            self.service.joined, self.service.revoked_at = True, None


def install_signal_handlers(service: ConsumerService, signalled: list[int] | None = None) -> None:
    """SIGTERM or Ctrl-C: finish the batch in hand, checkpoint, commit, exit 0. Ctrl-C
    again: exit at once (nothing is committed past the last checkpoint). The signals
    received are appended to ``signalled``."""

    def on_signal(signum: int, frame: Any) -> None:
        if service.stop_requested and signum == signal.SIGINT:
            os._exit(130)
        service.stop_requested = True
        if signalled is not None:
            signalled.append(signum)
        event("signal", signal=signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
