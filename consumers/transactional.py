"""TransactionalCheckpointer: the exactly-once mode's checkpoints, each one Kafka transaction.

Between two checkpoints the service produces its predictions and dead letters into an open
transaction. A checkpoint then adds, in that transaction:

1. the change the model made since the last checkpoint, to the changes topic (the other
   instances of the group fold it in: :mod:`consumers.group_sync`);
2. this instance's snapshot (model, clock, position in the changes topic, counters,
   metrics), to the compacted state topic (:mod:`consumers.state_topic`);
3. the consumed offsets of the partitions it owns, with the group generation in which it
   was given them, so the broker refuses them from an instance whose partitions have moved
   on (KIP-447);

and commits it. Either all of it is visible to ``read_committed`` readers, or none of it.
When a transaction cannot be committed (fenced after a stall, the broker away), it is
aborted and the service stops with a retryable failure: ``consume`` starts it again from
what Kafka holds.

On start, this instance's producer first completes or aborts what its previous run left
open; then the model is the newest snapshot of any instance (the one that read the changes
topic furthest) plus every change published after it that it does not hold; the counters
and metrics are this instance's own.
"""

from __future__ import annotations

import time
from typing import Any

from kafka.errors import KafkaError, ProducerFencedError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.changes_topic import ChangesFeed
from consumers.checkpointing import Failure, checkpoint_due, fresh_progress
from consumers.checkpoints import Checkpoint
from consumers.config import ServiceConfig, event
from consumers.group_sync import GroupSync
from consumers.label_join import LabelJoiner
from consumers.outputs import Outputs
from consumers.state_topic import KafkaStateStore
from stream_logreg import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import ServiceStartError
from stream_logreg.kafka_admin import ensure_topic
from stream_logreg.options import build_model, flag, settings_of

__all__ = ["TransactionalCheckpointer"]


class TransactionalCheckpointer:
    """Checkpoints of one instance (``config.instance_id``) as Kafka transactions."""

    def __init__(self, config: ServiceConfig, outputs: Outputs) -> None:
        self.config, self.outputs = config, outputs
        self.store = KafkaStateStore(config.bootstrap_servers, config.state_topic, config.instance_id)
        self.version = 0  # of this instance's newest snapshot
        self.since = 0  # records processed since it
        self.last = time.monotonic()  # when it was written
        self.fresh = False
        self.consumer: Any = None  # the service's consumer, for its assignment
        # The group's generation in which this instance was given its partitions: every
        # commit carries it, so the broker refuses it once the group has moved on (KIP-447).
        # (Not the consumer's current metadata: once a stalled consumer knows it lost its
        # membership, that has no generation, and the broker would take the commit.)
        self.generation: Any = None
        self.sync: GroupSync | None = None
        self.feed: ChangesFeed | None = None
        self.folded = 0  # other instances' changes folded in by this process
        self.delays: list[float] = []  # seconds from their making to their folding in, since the last checkpoint
        self.join: LabelJoiner | None = None  # with --labels-topic: its changes and offsets go in each transaction

    def restore(self) -> Checkpoint | None:
        config = self.config
        try:
            for topic, configs in ((config.state_topic, {"cleanup.policy": "compact"}),
                                   (config.changes_topic, {"cleanup.policy": "delete"})):  # fmt: skip
                ensure_topic(config.bootstrap_servers, topic, partitions=1, configs=configs)
            # First the producer: its init_transactions finishes what this instance's last
            # run left (committing or aborting), so that run's last snapshot is read here.
            self.outputs.connect()
            return self._restore()
        except (KafkaError, TimeoutError) as e:
            raise ServiceStartError(
                f"cannot read the state in {config.state_topic} ({e!r}); start the broker at "
                f"{config.bootstrap_servers}, or check --bootstrap-servers"
            ) from None

    def _restore(self) -> Checkpoint:
        config = self.config
        snapshots, passed = self.store.read()
        for why in passed:
            event("snapshot_skipped", reason=why)
        chosen = max(snapshots.values(), key=lambda s: s.changes_position, default=None)
        own = snapshots.get(config.instance_id)
        model = chosen.model if chosen is not None else build_model(config.model, config.hash_bits)
        for name, value in config.model.items():
            if settings_of(model)[name] != value:
                raise ServiceStartError(
                    f"{flag(name)} {value} differs from the {settings_of(model)[name]} the group's model in "
                    f"{config.state_topic} learns with; pass that value, or use a new --state-topic"
                )
        self.sync = GroupSync(model, config.instance_id, dict(chosen.clock) if chosen else {})
        start = chosen.changes_position if chosen else 0
        self.feed = ChangesFeed(config.bootstrap_servers, config.changes_topic, start)
        folded = sum(self.sync.fold(change) for change in self.feed.catch_up())
        if own is not None:
            self.version, self.store.parts_written = own.version, own.parts
        progress = own.progress if own is not None else fresh_progress(config)
        event("restored", snapshot_of=chosen and chosen.instance, version=chosen and chosen.version,
              changes_folded=folded, steps=model.n_steps)  # fmt: skip
        return Checkpoint(None, self.version, model, {**progress, "offsets": {}})

    def due(self) -> bool:
        return checkpoint_due(self.config, self.since, self.last)

    def fold_changes(self) -> None:
        """Fold in the other instances' changes that have arrived; Failure (status 2) for a
        change this model cannot take (another optimizer's)."""
        assert self.sync is not None and self.feed is not None
        for change in self.feed.poll():
            try:
                folded = self.sync.fold(change)
            except ValueError as e:
                raise Failure(2, f"{e}; give every instance of the group the same --optimizer and --l1") from None
            if folded:
                self.folded += 1
                self.delays.append(time.time() - change.made)

    def write(
        self,
        model: LogisticRegression,
        metrics: ProgressiveMetrics,
        counters: dict,
        positions: dict[int, int],
        features: dict[str, Any],
    ) -> bool:
        """Commit one transaction: the change, the snapshot, the offsets (and the outputs
        produced since the last one). Raises Failure when it had to be aborted."""
        assert self.sync is not None and self.feed is not None
        producer, config = self.outputs.producer, self.config
        owned = {tp.partition for tp in self.consumer.assignment() if tp.topic == config.topic}
        try:
            change = self.sync.take()
            if change is not None:
                self.feed.publish(producer, change)
            if self.join is not None:
                counters["join"] = self.join.tally.to_state()
            progress = {"group": config.group_id, "topic": config.topic, "counters": counters,
                        "metrics": metrics.to_state(), "features": features}  # fmt: skip
            size = self.store.write(producer, self.version + 1, model, self.sync.clock, self.feed.position(), progress)
            offsets = {TopicPartition(config.topic, p): OffsetAndMetadata(o, "", -1)
                       for p, o in positions.items() if p in owned}  # fmt: skip
            if self.join is not None:
                join_changes = self.join.write_changes(producer)
                offsets.update(self.join.offsets(owned))
            if offsets:
                producer.send_offsets_to_transaction(offsets, self.generation)
            producer.commit_transaction()
        except ProducerFencedError:
            raise Failure(3, (
                f"another instance with --instance-id {config.instance_id} took over (its transactions fence "
                "this one's); give each instance its own --instance-id"
            )) from None  # fmt: skip
        except (KafkaError, OSError) as e:
            event("transaction_aborted", version=self.version + 1, error=repr(e))
            try:
                producer.abort_transaction()
            except Exception as abort_error:
                event("abort_failed", error=repr(abort_error))
            raise Failure(75, (
                f"checkpoint {self.version + 1} was aborted ({e!r}): nothing since checkpoint {self.version} was "
                "committed; starting again from the state in Kafka"
            ), retry=True) from None  # fmt: skip
        producer.begin_transaction()
        self.version += 1
        self.since, self.last = 0, time.monotonic()
        event("checkpoint", version=self.version, learned=counters["learned"], offsets=positions, bytes=size,
              steps=model.n_steps, changes_folded=self.folded,
              fold_delay_s=round(max(self.delays), 3) if self.delays else None,
              **({} if self.join is None else {"join": self.join.figures(), "join_changes": join_changes}))  # fmt: skip
        self.delays = []
        return True

    def offsets(self, positions: dict[int, int], partitions: set[int]) -> dict[Any, Any]:
        """None to commit apart: the offsets are committed in each checkpoint's transaction."""
        return {}

    def start(self, partition: int, committed: Any, mine: int | None) -> int | None:
        """The group's committed offset (committed with the state that covers it)."""
        if committed is None or committed.offset is None or committed.offset < 0:
            return None
        return int(committed.offset)

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
