"""Streams of (x, y) from Python iterables and Kafka topics.

>>> list(iter_records([{"a": 1, "label": 0}, {"a": "2.5", "label": "1"}], target="label"))
[({'a': 1.0}, False), ({'a': 2.5}, True)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from stream_logreg.decode import DecodeError, Example, Schema, SchemaError, make_decoder


def iter_records(
    records: Iterable[Mapping[str, Any]],
    target: str,
    features: Iterable[str] | None = None,
    drop: Iterable[str] = (),
    categorical: Iterable[str] = (),
) -> Iterator[Example]:
    """Yield (x, y) for each dict record; a bad record raises SchemaError naming it."""
    schema = Schema(target, features, drop, categorical)
    for number, record in enumerate(records):
        try:
            yield schema.decode(record)
        except SchemaError as e:
            raise SchemaError(f"record {number}: {e}") from None


class KafkaRecord(NamedTuple):
    """One decoded Kafka message."""

    x: dict[str, float]
    y: bool
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None


class KafkaSource:
    """An iterator of :class:`KafkaRecord` over a topic, made by :func:`iter_kafka`.

    A message that cannot be decoded raises :class:`DecodeError` from ``next()``; the
    iterator stays usable, so the caller can dead-letter the message and go on. The
    underlying ``KafkaConsumer`` is ``.consumer`` (for commits, seeks, closing).
    """

    def __init__(self, consumer: Any, schema: Schema, decode: Any) -> None:
        self.consumer = consumer
        self._schema = schema
        self._decode = decode
        self._messages = iter(consumer)

    def __iter__(self) -> KafkaSource:
        return self

    def __next__(self) -> KafkaRecord:
        message = next(self._messages)
        where = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        if message.value is None:
            raise DecodeError(None, "the message has no value (a tombstone)", key=message.key, **where)
        try:
            x, y = self._schema.decode(self._decode(message.value))
        except SchemaError as e:
            raise DecodeError(message.value, str(e), key=message.key, **where) from None
        return KafkaRecord(x, y, message.topic, message.partition, message.offset, message.timestamp, message.key)

    def close(self) -> None:
        """Close the consumer (without committing anything)."""
        self.consumer.close(autocommit=False)

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_kafka(
    topic: str | list[str],
    bootstrap_servers: str | list[str],
    target: str,
    group_id: str | None = None,
    decoder: str = "json",
    header: list[str] | None = None,
    features: Iterable[str] | None = None,
    drop: Iterable[str] = (),
    categorical: Iterable[str] = (),
    auto_offset_reset: str = "earliest",
    **consumer_options: Any,
) -> KafkaSource:
    """Consume a topic as a stream of decoded records (x, y, topic, partition, offset, ...).

    Offsets are never committed automatically (``enable_auto_commit=False``): committing
    is the caller's job, after whatever it learned is safely stored. ``decoder`` is
    "json" (orjson), "csv" (with ``header``) or "msgpack"; ``target``, ``features``,
    ``drop`` and ``categorical`` are the file sources' schema options. Every other
    keyword goes to ``kafka.KafkaConsumer`` as is: ``security_protocol``,
    ``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``, ``ssl_cafile``,
    ``ssl_certfile``, ``ssl_keyfile``, ``client_id``, ``max_poll_records``,
    ``fetch_max_bytes``, ``max_partition_fetch_bytes``, ``consumer_timeout_ms`` (stop
    iterating after that long without a message), and so on.
    """
    from kafka import KafkaConsumer

    if consumer_options.get("enable_auto_commit"):
        raise ValueError("iter_kafka never auto-commits; commit offsets yourself once the model state is durable")
    consumer_options["enable_auto_commit"] = False
    topics = [topic] if isinstance(topic, str) else list(topic)
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        auto_offset_reset=auto_offset_reset,
        **consumer_options,
    )
    return KafkaSource(consumer, Schema(target, features, drop, categorical), make_decoder(decoder, header))
