"""kafka-python's consumer, returning each record batch as one block of parallel lists.

kafka-python parses every record of a fetch in Python and wraps it in a ConsumerRecord,
about 4 us a record: most of what a consumer costs. ``read_in_blocks(consumer)`` keeps
everything else of that consumer (fetching, group membership, positions, commits, CRC
checks, transactions) and replaces only that step: each record batch (message format v2)
is read in C into one ``RecordBlock`` of offsets, keys and values, so ``poll()`` returns
``{TopicPartition: [RecordBlock, ...]}``. The records, their order and the positions are
exactly the stock consumer's (tests/test_record_blocks.py checks this against the stock
consumer on a real broker).

It hooks kafka-python 3.0's ``Fetcher.PartitionRecords`` (pinned ``>=3.0,<3.1``); the
batch-level logic below (CRC, aborted transactions, control batches, the skip to the
fetch offset) follows kafka-python's own ``_unpack_records``.

Decompression is bounded (gzip and zstd, the codecs installed with this package; lz4 and
snappy batches are left to kafka-python): a batch may expand to ``max_record_bytes`` plus
64 KiB per record, at most 64 MiB, and one that would expand further (a decompression
bomb) is not decompressed past that: its records come back without keys or values, each
with the reason as its ``problem``.

>>> block = RecordBlock("t", 0, [5, 6, 7], [None, b"k", None], [b"a", b"b", None])
>>> len(block), block[1], block[1:].offsets
(3, Record(topic='t', partition=0, offset=6, key=b'k', value=b'b', problem=None), [6, 7])
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple, overload

import zstandard
from kafka import KafkaConsumer
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel

from consumers._records import read_records

__all__ = [
    "MAX_BATCH_BYTES",
    "Record",
    "RecordBlock",
    "read_in_blocks",
]


class Record(NamedTuple):
    """One record of a block (what the service uses of a ConsumerRecord); ``problem`` says
    why it could not be read (its key and value are then None)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    problem: str | None = None


class RecordBlock:
    """Consecutive records of one partition, in offset order, as parallel lists;
    ``problems`` (None when every record was read, the usual case) says, per record, why
    it could not be read."""

    __slots__ = ("keys", "offsets", "partition", "problems", "topic", "values")

    def __init__(
        self, topic: str, partition: int, offsets: list[int], keys: list[bytes | None], values: list[bytes | None],
        problems: list[str | None] | None = None,
    ) -> None:  # fmt: skip
        self.topic, self.partition = topic, partition
        self.offsets, self.keys, self.values = offsets, keys, values
        self.problems = problems

    @classmethod
    def join(cls, blocks: list[RecordBlock]) -> RecordBlock:
        """The blocks of one partition as one (they are in offset order already)."""
        if len(blocks) == 1:
            return blocks[0]
        first = blocks[0]
        return cls(
            first.topic,
            first.partition,
            [o for b in blocks for o in b.offsets],
            [k for b in blocks for k in b.keys],
            [v for b in blocks for v in b.values],
            None if all(b.problems is None for b in blocks) else [p for b in blocks for p in b.problems_or_none()],
        )

    def problems_or_none(self) -> list[str | None]:
        """``problems``, or a None for each record when every record was read."""
        return self.problems if self.problems is not None else [None] * len(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> RecordBlock: ...
    def __getitem__(self, i: int | slice) -> Record | RecordBlock:
        if isinstance(i, slice):
            problems = None if self.problems is None else self.problems[i]
            return RecordBlock(self.topic, self.partition, self.offsets[i], self.keys[i], self.values[i], problems)
        problem = None if self.problems is None else self.problems[i]
        return Record(self.topic, self.partition, self.offsets[i], self.keys[i], self.values[i], problem)

    def __iter__(self) -> Iterator[Record]:
        for offset, key, value, problem in zip(self.offsets, self.keys, self.values, self.problems_or_none(),
                                               strict=True):  # fmt: skip
            yield Record(self.topic, self.partition, offset, key, value, problem)


class _BlockRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """One fetch's records of one partition, yielded a batch at a time as RecordBlocks."""

    max_record_bytes = 1 << 20

    def _maybe_skip_record(self, record: Any) -> bool:
        return False  # each block starts at the fetch offset already

    def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any) -> Iterator[Any]:
        if key_deserializer is not None or value_deserializer is not None:
            raise ValueError("read_in_blocks returns raw bytes: make the consumer without deserializers")
        batch = records.next_batch()
        while batch is not None:
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {tp} at offset {batch.base_offset} failed crc check"
                )
            skip = False
            if batch.magic == 2:
                self.leader_epoch = batch.leader_epoch
                if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                    self._consume_aborted_transactions_up_to(batch.last_offset)
                    if self._contains_abort_marker(batch):
                        self.aborted_producer_ids.discard(batch.producer_id)
                    skip = self._is_batch_aborted(batch)
                skip = skip or batch.is_control_batch
            block = None if skip else self._read(tp, batch)  # the position moves only past what was read
            if batch.magic == 2:
                self.next_fetch_offset = batch.next_offset
            elif block:
                self.next_fetch_offset = block.offsets[-1] + 1
            if block:
                self.records_read += len(block)
                self.bytes_read += batch.size_in_bytes
                yield block
            batch = records.next_batch()
        self.drain()

    def _read(self, tp: Any, batch: Any) -> RecordBlock:
        first = self.fetch_offset
        if batch.magic < 2:  # the legacy formats (no broker since Kafka 4.0 writes them)
            kept = [r for r in batch if r.offset >= first]
            return RecordBlock(tp.topic, tp.partition, [r.offset for r in kept], [r.key for r in kept],
                               [r.value for r in kept])  # fmt: skip
        records: bytes | memoryview | None
        if batch.compression_type in _BOUNDED:
            limit = min(batch.records_count * (self.max_record_bytes + (64 << 10)), MAX_BATCH_BYTES)
            records = _decompress(batch.compression_type, memoryview(batch._buffer)[batch._pos :], limit)
            if records is None:
                return _refused(tp, batch, first, limit)
        else:
            iter(batch)  # decompresses the records into batch._buffer, from batch._pos
            records = memoryview(batch._buffer)[batch._pos :]
        try:
            offsets, keys, values = read_records(records, batch.base_offset, batch.records_count, first)
        except ValueError as e:
            raise CorruptRecordError(f"Record batch for partition {tp} at offset {batch.base_offset}: {e}") from e
        return RecordBlock(tp.topic, tp.partition, offsets, keys, values)


MAX_BATCH_BYTES = 64 << 20
_BOUNDED = (1, 4)  # gzip, zstd


def _decompress(codec: int, data: memoryview, limit: int) -> bytes | None:
    """The batch's records, or None if they would expand beyond ``limit`` bytes (decompressing
    no further than that); CorruptRecordError if the data is not a whole stream."""
    try:
        if codec == 1:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflate.decompress(data, limit + 1)
            if len(out) > limit:
                return None
            if not inflate.eof:
                raise CorruptRecordError("the gzip stream of a record batch is cut short")
            return out
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            out = reader.read(limit + 1)
        return None if len(out) > limit else out
    except (zlib.error, zstandard.ZstdError) as e:
        raise CorruptRecordError(f"a record batch does not decompress: {e}") from None


def _refused(tp: Any, batch: Any, first: int, limit: int) -> RecordBlock:
    offsets = list(range(max(batch.base_offset, first), batch.last_offset + 1))
    problem = (
        f"its record batch (offsets {batch.base_offset}-{batch.last_offset}, {batch.records_count} records, "
        f"{batch.size_in_bytes:,} bytes compressed) expands beyond {limit:,} bytes (--max-record-bytes per "
        "record); it was not decompressed further"
    )
    none: list[bytes | None] = [None] * len(offsets)
    return RecordBlock(tp.topic, tp.partition, offsets, none, list(none), [problem] * len(offsets))


def read_in_blocks(consumer: KafkaConsumer, max_record_bytes: int = 1 << 20) -> KafkaConsumer:
    """Make ``consumer.poll()`` return RecordBlocks instead of ConsumerRecords (see the
    module's docstring), decompressing at most ``max_record_bytes`` plus 64 KiB per record
    of a batch; returns the consumer."""
    fetcher = getattr(consumer, "_fetcher", None)
    if not isinstance(fetcher, Fetcher) or not hasattr(Fetcher.PartitionRecords, "_unpack_records"):
        raise RuntimeError("read_in_blocks needs kafka-python 3.0's Fetcher: install kafka-python>=3.0,<3.1")
    fetcher.PartitionRecords = type("BlockRecords", (_BlockRecords,), {"max_record_bytes": max_record_bytes})
    return consumer
