"""The changes topic: where the instances of a group publish their models' changes
(:class:`consumers.group_sync.Change`) and read each other's.

One partition, so every instance reads the changes in the same order. A change is cut into
parts (Kafka's message limit), all produced in the checkpoint's transaction; readers use
``read_committed``, so they see a change whole, once its checkpoint is committed, or never.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from consumers.framing import split
from consumers.group_sync import Change

__all__ = ["ChangesFeed"]


class ChangesFeed:
    """Reads the changes topic from a position on, whole changes only."""

    def __init__(self, bootstrap_servers: str, topic: str, position: int) -> None:
        self.topic = topic
        self.partition = TopicPartition(topic, 0)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", max_partition_fetch_bytes=8 << 20,
        )  # fmt: skip
        self.consumer.assign([self.partition])
        self.consumer.seek(self.partition, position)
        self.parts: dict[bytes, tuple[int, list[bytes]]] = {}  # key -> (first part's offset, parts so far)

    def position(self) -> int:
        """Where a reader must start to see every change not yet read whole."""
        read = self.consumer.position(self.partition)
        return min([read, *(first for first, _ in self.parts.values())])

    def poll(self, timeout_ms: int = 0) -> list[Change]:
        """The changes completed by what has arrived (a bad one raises ValueError)."""
        changes = []
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                headers = dict(record.headers)
                index, count = int(headers["part"]), int(headers["parts"])
                first, parts = self.parts.pop(record.key, (record.offset, []))
                if index != len(parts):  # a part of an earlier, aborted attempt: start again
                    first, parts = record.offset, []
                    if index != 0:
                        continue
                parts.append(record.value)
                if len(parts) == count:
                    changes.append(Change.decode(b"".join(parts)))
                else:
                    self.parts[record.key] = (first, parts)
        return changes

    def catch_up(self, timeout: float = 120.0) -> list[Change]:
        """Every change committed up to now (raises TimeoutError past ``timeout`` s)."""
        end = self.consumer.end_offsets([self.partition])[self.partition]
        changes, deadline = [], time.monotonic() + timeout
        while self.consumer.position(self.partition) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic} to its end ({end}) in {timeout:.0f} s")
            changes += self.poll(timeout_ms=500)
        return changes

    def publish(self, producer: Any, change: Change) -> None:
        """Produce the change, in parts, in the producer's open transaction."""
        parts = split(change.encode())
        key = f"{change.author}/{change.seq}".encode()
        for i, part in enumerate(parts):
            headers = [("part", str(i).encode()), ("parts", str(len(parts)).encode())]
            producer.send(self.topic, key=key, value=part, headers=headers, partition=0)

    def close(self) -> None:
        self.consumer.close()
