"""Prometheus metrics of the consumer service, served on --metrics-address:--metrics-port.

Telemetry reads a :class:`Snapshot` of the service's figures, never the service itself.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = [
    "Snapshot",
    "Telemetry",
]


@dataclass(frozen=True)
class Snapshot:
    """The service's figures at one moment: what the metrics show."""

    consumed: int
    learned: int
    dead_lettered: int
    assigned: int  # partitions owned
    lags: dict[int, int]  # partition -> records not yet consumed, where known
    log_loss: float
    accuracy: float
    rolling_log_loss: float
    rolling_accuracy: float
    model_version: int
    checkpoint_version: int
    last_checkpoint: float  # time.monotonic() of the last checkpoint
    join: dict[str, float | None] | None = None  # with --labels-topic: the label join's figures


class Telemetry:
    """The service's figures as Prometheus metrics (``stream_logreg_*``), updated at most
    once a second from a :class:`Snapshot`."""

    def __init__(self, first: Snapshot) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter("stream_logreg_records_consumed", "Records read from Kafka", registry=r)
        self.learned = Counter("stream_logreg_records_learned", "Records the model learned", registry=r)
        self.dead = Counter("stream_logreg_records_dead_lettered", "Records refused (dead letters)", registry=r)
        self.rate = Gauge("stream_logreg_records_per_second", "Records learned per second, last second", registry=r)
        self.lag = Gauge("stream_logreg_lag", "Records not yet consumed, per partition", ["partition"], registry=r)
        self.log_loss = Gauge("stream_logreg_log_loss", "Progressive log loss", ["window"], registry=r)
        self.accuracy = Gauge("stream_logreg_accuracy", "Progressive accuracy", ["window"], registry=r)
        self.since = Gauge("stream_logreg_seconds_since_checkpoint", "Seconds since the last checkpoint", registry=r)
        self.since.set_function(lambda: time.monotonic() - self._last.last_checkpoint)
        self.version = Gauge("stream_logreg_model_version", "Records the model has learned (its version)", registry=r)
        self.checkpoint = Gauge("stream_logreg_checkpoint_version", "Version of the last checkpoint", registry=r)
        self.assigned = Gauge("stream_logreg_assigned_partitions", "Partitions this instance owns", registry=r)
        self.join = Gauge("stream_logreg_label_join", "The label join (--labels-topic): events, joined, join_rate, "
                          "events_expired, labels_unmatched, duplicates, events_waiting, labels_waiting, "
                          "delay_p50/p90/p99 (seconds)", ["figure"], registry=r)  # fmt: skip
        self._last = first
        self.consumed.inc(first.consumed)
        self.learned.inc(first.learned)
        self.dead.inc(first.dead_lettered)
        self._rate_mark = (time.monotonic(), first.learned)
        self._updated = 0.0

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Serve /metrics on ``address``:``port`` (port 0: do not serve); OSError if taken."""
        if port:
            start_http_server(port, addr=address, registry=self.registry)

    def due(self) -> bool:
        """Whether a second has passed since the last update."""
        return time.monotonic() - self._updated >= 1.0

    def update(self, now: Snapshot) -> None:
        """Show ``now``."""
        self._updated = time.monotonic()
        last, self._last = self._last, now
        self.consumed.inc(now.consumed - last.consumed)
        self.learned.inc(now.learned - last.learned)
        self.dead.inc(now.dead_lettered - last.dead_lettered)
        then, learned_then = self._rate_mark
        if self._updated - then >= 1.0:
            self.rate.set((now.learned - learned_then) / (self._updated - then))
            self._rate_mark = (self._updated, now.learned)
        self.assigned.set(now.assigned)
        for partition, lag in now.lags.items():
            self.lag.labels(partition=str(partition)).set(lag)
        self.log_loss.labels(window="cumulative").set(_finite(now.log_loss))
        self.log_loss.labels(window="rolling").set(_finite(now.rolling_log_loss))
        self.accuracy.labels(window="cumulative").set(_finite(now.accuracy))
        self.accuracy.labels(window="rolling").set(_finite(now.rolling_accuracy))
        self.version.set(now.model_version)
        self.checkpoint.set(now.checkpoint_version)
        for figure, value in (now.join or {}).items():
            self.join.labels(figure=figure).set(_finite(math.nan if value is None else value))


def _finite(value: float) -> float:
    return value if not math.isnan(value) else 0.0
