"""Waiting without spinning: for the topic to exist, and to know whether there is nothing
left to read (what --idle-timeout counts). Neither mistakes a broker that does not answer
for an empty topic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from consumers.config import ServiceConfig, event
from stream_logreg.kafka_admin import partition_count

__all__ = ["caught_up", "stalled", "wait_for_topic"]


def caught_up(consumer: Any, config: ServiceConfig, joined: bool) -> bool:
    """Whether there is nothing to read: the group has given this instance its share
    and the broker says every partition of it is read to its end. An instance given no
    partition is idle only once the group has committed every partition to its end (a
    member that died holds its partitions until its session ends, then they come here).
    An unreachable broker, a group still joining or records not yet read are not idleness."""
    assigned = consumer.assignment()
    try:
        if assigned:
            ends = consumer.end_offsets(list(assigned), timeout_ms=5000)
        else:
            behind = _group_behind(consumer, config)
    except KafkaError as e:
        event("idle_clock_held", reason=f"the broker does not answer ({e})")
        return False
    if not joined:
        return False
    if not assigned:
        return not behind
    return all(ends[tp] <= consumer.position(tp, timeout_ms=5000) for tp in assigned)


def _group_behind(consumer: Any, config: ServiceConfig) -> bool:
    """Whether some partition of the topics has records past the group's committed offset
    (KafkaError when the broker does not answer)."""
    topics = [config.topic] if config.labels_topic is None else [config.topic, config.labels_topic]
    partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    if not partitions:
        partition_count(config.bootstrap_servers, config.topic)  # does the broker answer?
        return False
    ends = consumer.end_offsets(partitions, timeout_ms=5000)
    return any((consumer.committed(tp, timeout_ms=5000) or 0) < ends[tp] for tp in partitions)


def stalled(consumer: Any) -> bool:
    """Whether the broker answers and says some assigned partition has records past this
    consumer's position (called when nothing has been fetched for a long time)."""
    assigned = consumer.assignment()
    try:
        ends = consumer.end_offsets(list(assigned), timeout_ms=5000) if assigned else {}
        return any(ends[tp] > consumer.position(tp, timeout_ms=5000) for tp in assigned)
    except KafkaError:
        return False  # the broker is away: not the consumer's fault


def wait_for_topic(config: ServiceConfig, stop_requested: Callable[[], bool], topic: str | None = None) -> bool:
    """Wait, without spinning, until the topic (default: the events topic) exists; False
    when a stop or the idle timeout (counted while the broker answers) comes first."""
    topic = topic or config.topic
    since, said = time.monotonic(), ""
    while not stop_requested():
        try:
            if partition_count(config.bootstrap_servers, topic) > 0:
                return True
            reason = "the topic does not exist yet"
        except KafkaError as e:
            reason, since = f"the broker does not answer ({e})", time.monotonic()
        if reason != said:
            event("waiting_for_topic", topic=topic, reason=reason)
            said = reason
        if time.monotonic() - since > (config.idle_timeout or math.inf):
            event("idle", seconds=config.idle_timeout, reason="the topic never appeared")
            return False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not stop_requested():
            time.sleep(0.05)
    return False
