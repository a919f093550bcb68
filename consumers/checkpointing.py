"""Checkpointer: when the service checkpoints, what a checkpoint holds, the offsets it
covers, and where each newly assigned partition starts.

Offsets are committed only after the checkpoint that covers them is written, with metadata
naming this instance, the checkpoint and the store (``instance:version:store key``). A
partition starts from this service's own checkpoint if the last commit was its own (a
crash replays exactly what the model has not seen), or from the later of the two if
another instance committed since (it learned those records).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.checkpoints import Checkpoint, CheckpointStore
from consumers.config import ServiceConfig, event
from consumers.outputs import Outputs
from stream_logreg import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import ServiceStartError
from stream_logreg.options import flag, settings_of

__all__ = ["Checkpointer", "Failure", "checkpoint_due", "fresh_progress"]

_COMMIT_METADATA = re.compile(r"[0-9a-f]{32}:\d+:([0-9a-f]{12})")  # instance:checkpoint:store key


class Failure(Exception):
    """The service cannot go on: it stops, committing nothing more, and exits with ``status``
    (``retry``: ``consume`` starts it again, from its state)."""

    def __init__(self, status: int, why: str, retry: bool = False) -> None:
        super().__init__(why)
        self.status, self.retry = status, retry


class Checkpointer:
    """The checkpoints of one service in its state store."""

    def __init__(self, config: ServiceConfig, store: CheckpointStore, outputs: Outputs) -> None:
        self.config, self.store, self.outputs = config, store, outputs
        self.version = 0  # of the newest checkpoint
        self.since = 0  # records processed since it
        self.last = time.monotonic()  # when it was written
        self.fresh = True  # no model was restored, and no partition placed yet

    def restore(self) -> Checkpoint | None:
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
            if settings_of(restored.model)[name] != value:
                raise ServiceStartError(
                    f"{flag(name)} {value} differs from the {settings_of(restored.model)[name]} the model in "
                    f"{config.checkpoint_dir} learns with; pass that value, or use a new --checkpoint-dir"
                )
        self.version, self.fresh = restored.version, False
        return restored

    def fold_changes(self) -> None:
        """Nothing to fold: in this mode each instance learns a model of its own."""

    def close(self) -> None:
        """Nothing to close."""

    def due(self) -> bool:
        return checkpoint_due(self.config, self.since, self.last)

    def write(
        self,
        model: LogisticRegression,
        metrics: ProgressiveMetrics,
        counters: dict,
        positions: dict[int, int],
        features: dict[str, Any],
    ) -> bool:
        """Flush the outputs, then write a checkpoint; False (postponed, tried later) when the
        outputs could not be flushed. Raises Failure when the store cannot be written."""
        why = self.outputs.flush(timeout=10)
        if why is not None:  # the broker is away: keep going, checkpoint later
            event("checkpoint_postponed", reason=f"the producer could not flush: {why}")
            return False
        progress = {
            "instance": self.store.instance_id,
            "group": self.config.group_id,
            "topic": self.config.topic,
            "offsets": {str(p): o for p, o in sorted(positions.items())},
            "counters": counters,
            "metrics": metrics.to_state(),
            "features": features,
        }
        try:
            checkpoint = self.store.write(model, progress)
        except OSError as e:  # a read-only or full disk: stop, committing nothing past the last checkpoint
            event("checkpoint_failed", folder=str(self.config.checkpoint_dir), error=str(e))
            raise Failure(1, (
                f"cannot write a checkpoint in {self.config.checkpoint_dir}: {e}; nothing was committed past "
                f"checkpoint {self.version}; fix the folder, then restart (it goes on from there)"
            )) from None  # fmt: skip
        self.version = checkpoint.version
        self.since, self.last = 0, time.monotonic()
        event("checkpoint", version=checkpoint.version, learned=counters["learned"], offsets=positions,
              rss_mb=round(_resident_mb(), 1))  # fmt: skip
        return True

    def offsets(self, positions: dict[int, int], partitions: set[int]) -> dict[Any, Any]:
        """The last checkpoint's offsets for ``partitions``, with their metadata, to commit."""
        metadata = f"{self.store.instance_id}:{self.version}:{self.store.key}"
        return {
            TopicPartition(self.config.topic, p): OffsetAndMetadata(o, metadata, -1)
            for p, o in positions.items()
            if p in partitions
        }

    def start(self, partition: int, committed: Any, mine: int | None) -> int | None:
        """Where a newly assigned partition starts, from the group's commit (or None) and this
        service's own position (or None); None: from the beginning. Raises Failure when the
        commit names a checkpoint of this store that it no longer holds (a fresh model would
        leave those records out) and --reset-model was not given."""
        if committed is None or committed.offset is None or committed.offset < 0:
            return mine
        metadata = str(committed.metadata)
        made = _COMMIT_METADATA.fullmatch(metadata)
        if self.fresh and not self.config.reset_model and made is not None and made.group(1) == self.store.key:
            event("missing_checkpoint", partition=partition, committed=committed.offset, metadata=metadata)
            raise Failure(2, (
                f"the group's offset {committed.offset} of partition {partition} was committed with checkpoint "
                f"{metadata}, which {self.config.checkpoint_dir} does not hold (empty, deleted or "
                "another folder): starting there with a fresh model would leave those records out of it; "
                "restore the folder, or pass --reset-model to start a fresh model there on purpose"
            ))  # fmt: skip
        if metadata.startswith(self.store.instance_id + ":"):
            return mine if mine is not None else committed.offset
        return max(committed.offset, mine or 0)


def fresh_progress(config: ServiceConfig) -> dict[str, Any]:
    """The progress of a service that has learned nothing yet: counters and metric state."""
    metrics = ProgressiveMetrics(every=config.curve_every, curve_limit=1000)
    counters = {"consumed": 0, "learned": 0, "dead_lettered": 0, "by_partition": {}}
    return {"group": config.group_id, "topic": config.topic, "counters": counters, "metrics": metrics.to_state(),
            "offsets": {}}  # fmt: skip


def checkpoint_due(config: ServiceConfig, since: int, last: float) -> bool:
    """Whether a checkpoint is due, ``since`` records and ``last`` (monotonic) after the last."""
    if since == 0:
        return False
    return since >= config.checkpoint_every or time.monotonic() - last >= config.checkpoint_interval


def _resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
