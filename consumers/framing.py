"""The bytes the service writes to its Kafka topics (the state and changes topics, one
partition each): a JSON header and a float64 array in one blob, cut into parts that fit in a
Kafka message; and the reading of such a topic, committed records only. No pickle: every
field is checked on read.

>>> import numpy as np
>>> blob = pack({"n": 2}, np.array([0.5, -1.0]))
>>> header, array = unpack(blob)
>>> header, array.tolist()
({'n': 2}, [0.5, -1.0])
>>> b"".join(split(blob, 10)) == blob
True
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

__all__ = ["PART_BYTES", "committed_reader", "pack", "read_to_end", "split", "unpack"]

PART_BYTES = 900_000  # a part, at most (Kafka's default message limit is 1 MiB)
_MAGIC = b"SLR1"


def pack(header: dict[str, Any], array: np.ndarray) -> bytes:
    """The header as JSON, then the array as little-endian float64."""
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    return _MAGIC + struct.pack("<Q", len(text)) + text + np.ascontiguousarray(array, dtype="<f8").tobytes()


def unpack(blob: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Read :func:`pack`'s output; ValueError naming the problem if it is not one."""
    if blob[:4] != _MAGIC or len(blob) < 12:
        raise ValueError("not a stream_logreg blob (bad magic)")
    (size,) = struct.unpack("<Q", blob[4:12])
    rest = len(blob) - 12 - size
    if rest < 0 or rest % 8:
        raise ValueError(f"a blob of {len(blob)} bytes cannot hold a {size}-byte header and float64 values")
    header = json.loads(blob[12 : 12 + size])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header, np.frombuffer(blob, dtype="<f8", offset=12 + size).astype(np.float64)


def split(blob: bytes, size: int = PART_BYTES) -> list[bytes]:
    """The blob in parts of at most ``size`` bytes (at least one part)."""
    return [blob[i : i + size] for i in range(0, max(len(blob), 1), size)]


def committed_reader(
    bootstrap_servers: str, topic: str, position: int, partition_number: int = 0
) -> tuple[KafkaConsumer, TopicPartition]:
    """A consumer of one partition of the topic (default: its first) from ``position`` on
    (no group), seeing only records of committed transactions."""
    partition = TopicPartition(topic, partition_number)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
        isolation_level="read_committed", max_partition_fetch_bytes=8 << 20,
    )  # fmt: skip
    consumer.assign([partition])
    consumer.seek(partition, position)
    return consumer, partition


def read_to_end(consumer: KafkaConsumer, partition: TopicPartition, timeout: float) -> Iterator[Any]:
    """The records up to what is committed now (TimeoutError past ``timeout`` s)."""
    end, deadline = consumer.end_offsets([partition])[partition], time.monotonic() + timeout
    while consumer.position(partition) < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read {partition.topic} to its end ({end}) in {timeout:.0f} s")
        for records in consumer.poll(timeout_ms=500).values():
            yield from records
