"""Prometheus metrics of the consumer service, served on --metrics-port."""

from __future__ import annotations

import math
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = [
    "Telemetry",
]


class Telemetry:
    """The service's figures as Prometheus metrics (``stream_logreg_*``), updated after each poll."""

    def __init__(self, service: Any) -> None:
        self.service = service
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
        self.since.set_function(lambda: time.monotonic() - service.last_checkpoint)
        self.version = Gauge("stream_logreg_model_version", "Records the model has learned (its version)", registry=r)
        self.checkpoint = Gauge("stream_logreg_checkpoint_version", "Version of the last checkpoint", registry=r)
        self.assigned = Gauge("stream_logreg_assigned_partitions", "Partitions this instance owns", registry=r)
        counters = service.counters
        self._seen = {
            "consumed": counters["consumed"],
            "learned": counters["learned"],
            "dead": counters["dead_lettered"],
        }
        self.consumed.inc(counters["consumed"])
        self.learned.inc(counters["learned"])
        self.dead.inc(counters["dead_lettered"])
        self._rate_mark = (time.monotonic(), counters["learned"])
        self._updated = 0.0

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Serve /metrics on ``address``:``port`` (port 0: do not serve); OSError if taken."""
        if port:
            start_http_server(port, addr=address, registry=self.registry)

    def update(self, force: bool = False) -> None:
        """Refresh the metrics from the service (at most once a second unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._updated < 1.0:
            return
        self._updated = now
        service, counters = self.service, self.service.counters
        for name, counter, key in (("consumed", self.consumed, "consumed"), ("learned", self.learned, "learned"),
                                   ("dead", self.dead, "dead_lettered")):  # fmt: skip
            counter.inc(counters[key] - self._seen[name])
            self._seen[name] = counters[key]
        then, learned_then = self._rate_mark
        if now - then >= 1.0:
            self.rate.set((counters["learned"] - learned_then) / (now - then))
            self._rate_mark = (now, counters["learned"])
        assignment = service.consumer.assignment()
        self.assigned.set(len(assignment))
        for tp in assignment:
            high = service.consumer.highwater(tp)
            if high is not None and tp.partition in service.positions:
                self.lag.labels(partition=str(tp.partition)).set(max(high - service.positions[tp.partition], 0))
        metrics = service.metrics
        rolling = metrics.rolling()
        self.log_loss.labels(window="cumulative").set(_finite(metrics.log_loss))
        self.log_loss.labels(window="rolling").set(_finite(rolling["log_loss"]))
        self.accuracy.labels(window="cumulative").set(_finite(metrics.accuracy))
        self.accuracy.labels(window="rolling").set(_finite(rolling["accuracy"]))
        self.version.set(service.model.n_steps)
        self.checkpoint.set(service.checkpoint_version)


def _finite(value: float) -> float:
    return value if not math.isnan(value) else 0.0
