"""The state topic: the service's state in a compacted Kafka topic, the truth of the
exactly-once mode (no local folder needed).

Each instance (``--instance-id``) keeps its newest snapshot there: the model, the clock of
the changes it holds (:mod:`consumers.group_sync`), where it read the changes topic up to,
and its own progress (counters, metrics). A snapshot is cut into parts keyed
``<instance>/<i>`` and announced by a head keyed ``<instance>`` (its version, part count and
SHA-256), all produced in the checkpoint's transaction; compaction keeps the newest of each
key, so the topic holds one snapshot per instance. Readers use ``read_committed`` and take
only snapshots whose parts are all there and match the head's checksum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from consumers.framing import committed_reader, pack, read_to_end, split, unpack
from stream_logreg import LogisticRegression

__all__ = ["KafkaStateStore", "StateSnapshot"]


@dataclass
class StateSnapshot:
    """One instance's newest snapshot."""

    instance: str
    version: int
    model: LogisticRegression
    clock: dict[str, int]  # author -> the last change the model holds
    changes_position: int  # the changes topic is read from here on after a restore
    progress: dict[str, Any]  # the instance's own counters and metrics
    parts: int  # messages it took


class KafkaStateStore:
    """The snapshots of every instance in one state topic (one partition, compacted)."""

    def __init__(self, bootstrap_servers: str, topic: str, instance_id: str) -> None:
        self.bootstrap_servers, self.topic, self.instance_id = bootstrap_servers, topic, instance_id
        self.key = f"{topic}/{instance_id}"
        self.parts_written = 0  # by this instance's newest snapshot (more parts are deleted)

    def lock(self) -> None:
        """Nothing to take here: the broker fences an instance's older runs when its
        producer starts (one transactional id per ``--instance-id``)."""

    def unlock(self) -> None:
        """Nothing to let go."""

    def read(self, timeout: float = 120.0) -> tuple[dict[str, StateSnapshot], list[str]]:
        """Every instance's newest complete snapshot, and why others were passed over."""
        consumer, partition = committed_reader(self.bootstrap_servers, self.topic, 0)
        latest: dict[bytes, tuple[bytes | None, dict[str, bytes]]] = {}
        try:
            for record in read_to_end(consumer, partition, timeout):
                latest[record.key] = (record.value, dict(record.headers))
        finally:
            consumer.close()
        snapshots, passed = {}, []
        for key, (value, _) in latest.items():
            if b"/" in key or value is None:
                continue
            instance = key.decode()
            try:
                snapshots[instance] = self._assemble(instance, json.loads(value), latest)
            except (KeyError, TypeError, ValueError) as e:
                passed.append(f"the snapshot of instance {instance!r} in {self.topic} is unusable: {e}")
        return snapshots, passed

    def _assemble(self, instance: str, head: dict[str, Any], latest: dict) -> StateSnapshot:
        version, count = head["version"], head["parts"]
        blob = b""
        for i in range(count):
            value, headers = latest.get(f"{instance}/{i}".encode(), (None, {}))
            if value is None or headers.get("version") != str(version).encode():
                raise ValueError(f"part {i} of version {version} is missing")
            blob += value
        if hashlib.sha256(blob).hexdigest() != head["sha256"]:
            raise ValueError(f"version {version} fails its checksum")
        header, coef = unpack(blob)
        clock = {str(k): int(v) for k, v in header["clock"].items()}
        position, progress = int(header["changes_position"]), header["progress"]
        if position < 0 or not isinstance(progress, dict):
            raise ValueError("its changes position or progress is invalid")
        model = LogisticRegression.from_parts(header["model"], coef)
        return StateSnapshot(instance, version, model, clock, position, progress, count)

    def write(
        self, producer: Any, version: int, model: LogisticRegression, clock: dict[str, int],
        changes_position: int, progress: dict[str, Any],
    ) -> int:  # fmt: skip
        """Produce this instance's snapshot in the producer's open transaction, deleting
        the parts its previous one had beyond this one's; return its size in bytes."""
        model_header, coef = model.to_parts()
        header = {"model": model_header, "instance": self.instance_id, "version": version, "clock": clock,
                  "changes_position": changes_position, "progress": progress}  # fmt: skip
        blob = pack(header, coef)
        parts = split(blob)
        tag = [("version", str(version).encode())]
        for i, part in enumerate(parts):
            producer.send(self.topic, key=f"{self.instance_id}/{i}".encode(), value=part, headers=tag, partition=0)
        for i in range(len(parts), self.parts_written):
            producer.send(self.topic, key=f"{self.instance_id}/{i}".encode(), value=None, partition=0)
        head = {"version": version, "parts": len(parts), "sha256": hashlib.sha256(blob).hexdigest()}
        producer.send(self.topic, key=self.instance_id.encode(), value=json.dumps(head).encode(), partition=0)
        self.parts_written = len(parts)
        return len(blob)
