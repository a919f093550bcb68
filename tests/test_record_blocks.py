"""The block reader (consumers/record_blocks.py) against kafka-python's own record reader:
in process on batches kafka-python's builder writes, and end to end on a real broker."""

from __future__ import annotations

import random
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record import MemoryRecords
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from consumers.record_blocks import RecordBlock, _BlockRecords, read_in_blocks
from stream_logreg.kafka_admin import ensure_topic

TP = TopicPartition("t", 0)
CODECS = {"none": 0, "gzip": 1, "zstd": 4}


def random_batch(rng: random.Random, base_offset: int, n: int, codec: int) -> bytes:
    """A v2 record batch of n records, written by kafka-python's own builder: keys and values
    null, empty or up to 20,000 bytes (varints of one to three bytes), with headers."""

    def blob() -> bytes | None:
        return rng.choice([None, b"", rng.randbytes(rng.randrange(1, 200)), rng.randbytes(rng.randrange(200, 20_000))])

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 30,
    )  # fmt: skip
    for i in range(n):
        headers = [(f"h{j}", rng.choice([None, rng.randbytes(rng.randrange(30))])) for j in range(rng.randrange(3))]
        builder.append(i, timestamp=1_700_000_000_000 + i, key=blob(), value=blob(), headers=headers)
    buffer = builder.build()
    buffer[:8] = base_offset.to_bytes(8, "big")  # the broker sets the base offset the same way
    return bytes(buffer)


def stock(data: bytes, fetch_offset: int, check_crcs: bool = True) -> list[tuple[int, bytes | None, bytes | None]]:
    part = Fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(data), check_crcs=check_crcs)
    return [(r.offset, r.key, r.value) for r in part.take()]


def blocks(data: bytes, fetch_offset: int, check_crcs: bool = True) -> list[RecordBlock]:
    return _BlockRecords(fetch_offset, TP, MemoryRecords(data), check_crcs=check_crcs).take()


def flat(found: list[RecordBlock]) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for block in found for r in block]


@pytest.mark.parametrize("codec", CODECS)
def test_blocks_hold_exactly_the_records_kafka_pythons_reader_returns(codec):
    rng = random.Random(CODECS[codec])
    batches = [random_batch(rng, 1000, 40, CODECS[codec]), random_batch(rng, 1040, 1, CODECS[codec])]
    batches.append(random_batch(rng, 1041, 300, CODECS[codec]))
    data = b"".join(batches)
    for fetch_offset in [0, 1000, 1001, 1039, 1040, 1041, 1200, 1340]:
        found = blocks(data, fetch_offset)
        assert flat(found) == stock(data, fetch_offset)
        assert all(block.topic == "t" and block.partition == 0 for block in found)
    assert [len(block) for block in blocks(data, 1020)] == [20, 1, 300]  # one block per batch


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_message_sets_are_read_as_kafka_python_reads_them(magic):
    """Message formats v0 and v1, which brokers before Kafka 4.0 may still hold on disk."""
    rng = random.Random(magic)
    builder = LegacyRecordBatchBuilder(magic, 0, 1 << 30)
    for i in range(30):
        builder.append(i, timestamp=1_700_000_000_000 + i if magic else None, key=rng.choice([None, b"k"]),
                       value=rng.randbytes(rng.randrange(50)))  # fmt: skip
    data = bytes(builder.build())
    for fetch_offset in [0, 7, 29]:
        assert flat(blocks(data, fetch_offset)) == stock(data, fetch_offset)
    part = _BlockRecords(7, TP, MemoryRecords(data))
    part.take()
    assert part.next_fetch_offset == 30


def test_positions_follow_the_blocks_as_they_are_taken():
    rng = random.Random(1)
    data = random_batch(rng, 0, 10, 0) + random_batch(rng, 10, 10, 0)
    part = _BlockRecords(5, TP, MemoryRecords(data))
    assert [block.offsets for block in part.take(1)] == [list(range(5, 10))]
    assert part.next_fetch_offset == 10
    assert [block.offsets for block in part.take(1)] == [list(range(10, 20))]
    assert part.next_fetch_offset == 20


def test_a_cut_short_batch_is_a_corrupt_record_error_at_every_length():
    data = random_batch(random.Random(2), 0, 5, 0)
    header = 61
    for end in range(header + 1, len(data)):
        damaged = bytearray(data[:end])
        damaged[8:12] = (end - 12).to_bytes(4, "big")  # the batch length agrees: only the records are short
        with pytest.raises(CorruptRecordError, match="offset 0"):
            blocks(bytes(damaged), 0, check_crcs=False)


def test_damaged_record_bytes_are_read_as_kafka_python_reads_them_or_refused_never_a_crash():
    """Random damage to the records of a batch with small records (so the damage often hits
    lengths and varints), read without the CRC check that would otherwise catch it."""
    rng = random.Random(3)
    builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 30)
    for i in range(30):
        builder.append(i, timestamp=i, key=rng.choice([None, b"k"]), value=rng.randbytes(rng.randrange(8)),
                       headers=[("h", b"v")] if i % 4 == 0 else [])  # fmt: skip
    data = bytes(builder.build())
    attributes, pos = set(), 61  # where each record's attributes byte is (its length is one byte)
    while pos < len(data):
        attributes.add(pos + 1)
        pos += 1 + data[pos] // 2
    outcomes = {"read": 0, "refused": 0}
    for _ in range(3000):
        damaged = bytearray(data)
        for _ in range(rng.randrange(1, 3)):
            damaged[rng.randrange(61, len(damaged))] = rng.randrange(256)
        if any(damaged[i] >= 0x80 for i in attributes):
            continue  # an int8 that kafka-python reads as a varint (Kafka's Java client reads one byte, as we do)
        try:
            expected = [(r.offset, r.key, r.value) for r in MemoryRecords(bytes(damaged)).next_batch()]
        except CorruptRecordError as e:
            if "UnicodeDecodeError" in str(e):
                continue  # a header key that is not UTF-8: Kafka's Java client reads it, as we do
            expected = None
        if expected and not all(0 <= offset < 2**31 for offset, _, _ in expected):
            expected = None  # an offset before the batch's: kafka-python reads it, we refuse it
        try:
            found = flat(blocks(bytes(damaged), 0, check_crcs=False))
        except CorruptRecordError:
            found = None
        assert found == expected
        outcomes["read" if found is not None else "refused"] += 1
    assert outcomes["read"] > 100 and outcomes["refused"] > 100, outcomes  # both were exercised


def test_a_damaged_batch_fails_its_crc_check_as_in_kafka_python():
    damaged = bytearray(random_batch(random.Random(4), 0, 5, 0))
    damaged[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="crc"):
        blocks(bytes(damaged), 0)


def test_a_consumer_with_deserializers_is_refused():
    part = _BlockRecords(0, TP, MemoryRecords(random_batch(random.Random(5), 0, 1, 0)), value_deserializer=bytes)
    with pytest.raises(ValueError, match="without deserializers"):
        part.take()


# -- end to end, real broker ----------------------------------------------------------------


def read_all(consumer: KafkaConsumer, topic: str, starts: dict[int, int], expected: int) -> list[tuple]:
    """(partition, offset, key, value) of every record from ``starts``, read by ``consumer``."""
    tps = [TopicPartition(topic, p) for p in starts]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, starts[tp.partition])
    found: list[tuple] = []
    for _ in range(200):
        for tp, items in consumer.poll(timeout_ms=500).items():
            for item in items:
                records = list(item) if isinstance(item, RecordBlock) else [item]
                found += [(tp.partition, r.offset, r.key, r.value) for r in records]
        if len(found) >= expected:
            break
    positions = [consumer.position(tp) for tp in tps]
    consumer.close()
    return [*sorted(found), ("positions", positions)]


def test_the_service_consumer_reads_what_the_stock_consumer_reads(kafka_bootstrap, topic):
    ensure_topic(kafka_bootstrap, topic, 2)
    rng = random.Random(6)
    sent = 0
    for codec in [None, "gzip", "zstd"]:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type=codec, linger_ms=20)
        for i in range(1500):
            key = rng.choice([None, f"k{i}".encode()])
            value = rng.choice([None if key else b"", b"", rng.randbytes(rng.randrange(1, 3000))])
            headers = [("codec", str(codec).encode())] if i % 3 == 0 else None
            producer.send(topic, key=key, value=value, headers=headers, partition=i % 2)
            sent += 1
        producer.flush()
        producer.close()
    starts = {0: 333, 1: 0}  # partition 0 from the middle of a record batch
    expected = sent - 333
    settings = {"bootstrap_servers": kafka_bootstrap, "enable_auto_commit": False}
    stock_records = read_all(KafkaConsumer(**settings), topic, starts, expected)
    block_records = read_all(read_in_blocks(KafkaConsumer(**settings)), topic, starts, expected)
    assert len(stock_records) == expected + 1
    assert block_records == stock_records


@pytest.mark.parametrize("isolation", ["read_committed", "read_uncommitted"])
def test_aborted_transactions_and_their_markers_are_read_as_the_stock_consumer_reads_them(kafka_bootstrap, isolation):
    topic = f"test-{uuid.uuid4().hex[:12]}"
    ensure_topic(kafka_bootstrap, topic, 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{topic}")
    producer.init_transactions()
    for n, commit in enumerate([True, False, True, False, True]):
        producer.begin_transaction()
        for i in range(50):
            producer.send(topic, value=f"{n}-{i}".encode())
        producer.flush()
        producer.commit_transaction() if commit else producer.abort_transaction()
    producer.close()
    expected = 150 if isolation == "read_committed" else 250
    settings = {"bootstrap_servers": kafka_bootstrap, "enable_auto_commit": False, "isolation_level": isolation}
    stock_records = read_all(KafkaConsumer(**settings), topic, {0: 0}, expected)
    block_records = read_all(read_in_blocks(KafkaConsumer(**settings)), topic, {0: 0}, expected)
    assert len(stock_records) == expected + 1
    assert block_records == stock_records
    assert stock_records[-1] == ("positions", [255])  # past the five transaction markers
