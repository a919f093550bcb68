"""Kafka administration the commands need: making sure a topic exists."""

from __future__ import annotations

__all__ = [
    "ensure_topic",
    "partition_count",
]


def ensure_topic(
    bootstrap_servers: str, topic: str, partitions: int = -1, configs: dict[str, str] | None = None
) -> None:
    """Create ``topic`` with ``partitions`` partitions (-1: the broker's default), the
    broker's default replication factor and the topic ``configs`` given, unless it exists.

    Raises ``kafka.errors.KafkaTimeoutError`` (a ``KafkaError``) when no broker answers
    within 10 s.
    """
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, bootstrap_timeout_ms=10_000)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": -1, "configs": configs or {}}})
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def partition_count(bootstrap_servers: str, topic: str, timeout_ms: int = 5000) -> int:
    """How many partitions ``topic`` has (0 when it does not exist); never creates it.

    Raises ``kafka.errors.KafkaError`` when no broker answers within ``timeout_ms``.
    """
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms
    )
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return len(described["partitions"]) if described["error_code"] == 0 else 0
