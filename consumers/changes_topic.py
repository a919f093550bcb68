"""The changes topic: where the instances of a group publish their models' changes
(:class:`consumers.group_sync.Change`) and read each other's.

One partition, so every instance reads the changes in the same order. A change is cut into
parts (Kafka's message limit), all produced in the checkpoint's transaction; readers use
``read_committed``, so they see a change whole, once its checkpoint is committed, or never.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consumers.framing import committed_reader, read_to_end, split
from consumers.group_sync import Change

__all__ = ["ChangesFeed"]


class ChangesFeed:
    """Reads the changes topic from a position on, whole changes only."""

    def __init__(self, bootstrap_servers: str, topic: str, position: int) -> None:
        self.topic = topic
        self.consumer, self.partition = committed_reader(bootstrap_servers, topic, position)
        self.parts: dict[bytes, tuple[int, list[bytes]]] = {}  # key -> (first part's offset, parts so far)

    def position(self) -> int:
        """Where a reader must start to see every change not yet read whole."""
        read = self.consumer.position(self.partition)
        return min([read, *(first for first, _ in self.parts.values())])

    def poll(self, timeout_ms: int = 0) -> list[Change]:
        """The changes completed by what has arrived (a bad one raises ValueError)."""
        return self._whole(
            record for records in self.consumer.poll(timeout_ms=timeout_ms).values() for record in records
        )

    def catch_up(self, timeout: float = 120.0) -> list[Change]:
        """Every change committed up to now (raises TimeoutError past ``timeout`` s)."""
        return self._whole(read_to_end(self.consumer, self.partition, timeout))

    def _whole(self, records: Iterable[Any]) -> list[Change]:
        changes = []
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

    def publish(self, producer: Any, change: Change) -> None:
        """Produce the change, in parts, in the producer's open transaction."""
        parts = split(change.encode())
        key = f"{change.author}/{change.seq}".encode()
        for i, part in enumerate(parts):
            headers = [("part", str(i).encode()), ("parts", str(len(parts)).encode())]
            producer.send(self.topic, key=key, value=part, headers=headers, partition=0)

    def close(self) -> None:
        self.consumer.close()
