"""What the service is told (one frozen config), the consumer settings it derives, how it
logs, and how its process is prepared.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kafka.coordinator.assignors.range import RangePartitionAssignor

from stream_logreg import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import ServiceStartError
from stream_logreg.features import Features
from stream_logreg.options import flag, scaler_from
from stream_logreg.scaling import Scaler

__all__ = ["ServiceConfig", "consumer_settings", "event", "prepare_process", "restored_scaler"]


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
    checkpoint_dir: Path | None  # at-least-once only: the exactly-once mode keeps its state in Kafka
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] | str = ()  # or "auto"
    hash_bits: int | None = None
    hash_seed: int = 0
    max_depth: int = 4
    max_list_length: int = 100
    scale: str | None = None  # --scale: None, "all" or comma-separated features
    checkpoint_every: int = 10_000
    checkpoint_interval: float = 30.0
    predictions_topic: str | None = None
    dead_letter_topic: str | None = None
    metrics_port: int = 9108
    metrics_address: str = "127.0.0.1"
    reset_model: bool = False
    max_record_bytes: int = 1 << 20
    max_abs_value: float = 1e9
    model: Mapping[str, Any] = field(default_factory=dict)  # the model's flags (options.model_params)
    max_records: int | None = None
    idle_timeout: float | None = None
    keep_checkpoints: int = 3
    curve_every: int = 10_000
    max_poll_records: int = 5000
    processing_guarantee: str = "at-least-once"  # or "exactly-once"
    instance_id: str = ""  # exactly-once: names this instance's snapshot and transactions
    state_topic_name: str | None = None  # exactly-once: default <group>-<topic>-state
    # Labels that come later (exactly-once only): the events in ``topic``, the labels here.
    labels_topic: str | None = None
    join_key: str = ""
    label_timeout: float = 0.0
    on_timeout: str = "drop"  # or "negative"
    timestamp: str = "timestamp"  # the time field of events and labels
    join_memory_bytes: int = 100 * 2**20  # for the events (and for the labels) waiting, per partition

    @property
    def featurizer(self) -> Features:
        """How records become features (:class:`stream_logreg.features.Features`)."""
        return Features(self.target, self.features, self.drop, self.categorical, self.max_abs_value,
                        self.hash_bits, self.hash_seed, max_depth=self.max_depth,
                        max_list_length=self.max_list_length)  # fmt: skip

    def feature_settings(self) -> dict[str, Any]:
        """The featurizer's settings and --scale, as checkpoints keep them."""
        return {**self.featurizer.settings(), "scale": self.scale or "none"}

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly-once"

    @property
    def state_topic(self) -> str:
        return self.state_topic_name or f"{self.group_id}-{self.topic}-state"

    @property
    def changes_topic(self) -> str:
        """Where the group's instances exchange their models' changes."""
        return f"{self.state_topic}-changes"

    @property
    def join_topic(self) -> str:
        """The label join's compacted changelog, partitioned as the events."""
        return f"{self.state_topic}-join"

    @property
    def transactional_id(self) -> str:
        return f"{self.state_topic}.{self.instance_id}"


def consumer_settings(config: ServiceConfig) -> dict[str, Any]:
    """The service's KafkaConsumer settings (the benchmark's raw consumer uses them too)."""
    settings: dict[str, Any] = {
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
        # Exactly once: read only committed records, and fetch a partition's committed offset
        # only once no transaction that commits it is pending (kafka-python sends the
        # offset fetch with require_stable then): a stalled instance's commit that the broker
        # took before the stall may complete after the partition has moved on.
        "isolation_level": "read_committed" if config.exactly_once else "read_uncommitted",
    }
    if config.labels_topic:
        # Partition p of the events and of the labels topics go to the same instance: the topics
        # have as many partitions, and the range assignor deals each topic's in the same member order.
        settings["partition_assignment_strategy"] = (RangePartitionAssignor,)
    return settings


_ONE_LINE_AT_A_TIME = threading.Lock()


def event(name: str, **fields: Any) -> None:
    """One structured log line (JSON) on stderr. The producer's thread logs too (a failed
    send): the lock keeps two lines from interleaving."""
    line = json.dumps({"ts": round(time.time(), 3), "event": name, **fields}, default=str) + "\n"
    with _ONE_LINE_AT_A_TIME:
        sys.stderr.write(line)
        sys.stderr.flush()


def restored_scaler(config: ServiceConfig, saved: dict[str, Any] | None) -> Scaler | None:
    """The scaler to go on with: the saved one (its statistics), a fresh one per --scale, or
    None. ServiceStartError when the state was saved with other feature settings (its
    weights and statistics mean other features)."""
    mine = config.feature_settings()
    if saved is None:
        return scaler_from(config.scale)
    theirs = saved.get("settings", {})
    for name, value in mine.items():
        if name in theirs and theirs[name] != value:
            raise ServiceStartError(
                f"{flag(name)} {value} differs from the {theirs[name]} the saved state's features were made "
                "with (its weights would mean other features); pass that value, or start a new state"
            )
    return Scaler.from_state(saved["scaler"]) if saved.get("scaler") else scaler_from(config.scale)
