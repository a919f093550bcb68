"""The records the service produces about the records it reads: a prediction for each one
learned, a dead letter for each one it cannot learn.

At least once, by default: after a crash, those sent since the last checkpoint are sent
again. Exactly once with ``--processing-guarantee exactly-once``: the producer is
transactional, and what it sends between two checkpoints is committed with the second one
(consumers/transactional.py), or aborted with it. A send that fails is logged with where its
record came from; the service goes on. Without a predictions or dead-letter topic (and at
least once) there is no producer, and dead letters are logged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.config import ServiceConfig, event
from consumers.record_blocks import Record, RecordBlock
from stream_logreg.kafka_admin import ensure_topic

__all__ = ["DEAD_LETTER_BYTES", "REASON_BYTES", "Outputs"]

REASON_BYTES = 512  # a dead letter's reason header, at most
DEAD_LETTER_BYTES = 900_000  # a dead letter's key and value, at most (Kafka's default limit is 1 MiB)
MAX_UNFLUSHED = 20_000  # records sent before the producer is made to catch up


class Outputs:
    """The predictions and dead-letter topics of one service (``connect`` makes the producer)."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.producer: Any = None
        self.unflushed = 0  # records sent since the producer last caught up

    def connect(self) -> None:
        """Create the output topics now (the broker's defaults), so the first record sent to
        them does not wait on the broker's auto-creation, and make the producer (once)."""
        if self.producer is not None:
            return
        topics = [topic for topic in (self.config.predictions_topic, self.config.dead_letter_topic) if topic]
        for topic in topics:
            try:
                ensure_topic(self.config.bootstrap_servers, topic)
            except KafkaError as e:
                event("topic_not_created", topic=topic, error=str(e))
        if self.config.exactly_once:
            self.producer = KafkaProducer(
                bootstrap_servers=self.config.bootstrap_servers, acks="all", linger_ms=20,
                transactional_id=self.config.transactional_id,
                # A transaction is open from one checkpoint to the next; a stalled instance's
                # is aborted by the broker this long after it began.
                transaction_timeout_ms=int(1000 * (self.config.checkpoint_interval + 30)),
            )  # fmt: skip
            self.producer.init_transactions()  # aborts what a crashed run of this instance left open
            self.producer.begin_transaction()
        elif topics:
            self.producer = KafkaProducer(bootstrap_servers=self.config.bootstrap_servers, acks="all", linger_ms=20)

    def predictions(
        self, partition: int, messages: RecordBlock | list[Record], probas: np.ndarray, version: int
    ) -> None:
        """Publish the probability predicted for each learned record (the k-th by the model
        at step ``version + k``), keyed as the record was."""
        if not self.config.predictions_topic:
            return
        for i, (message, p) in enumerate(zip(messages, probas.tolist(), strict=True)):
            value = {"partition": partition, "offset": message.offset, "probability": p, "model_version": version + i}
            self._send(self.config.predictions_topic, message, json.dumps(value).encode(), message.key, [])

    def event_prediction(self, message: Record, join_key: str, probability: float, version: int) -> None:
        """Publish the probability predicted for an event whose label comes later, with its
        join key and the model's version (its steps) that made it, keyed as the event was."""
        if not self.config.predictions_topic:
            return
        value = {"partition": message.partition, "offset": message.offset, "join_key": join_key,
                 "probability": probability, "model_version": version}  # fmt: skip
        self._send(self.config.predictions_topic, message, json.dumps(value).encode(), message.key, [])

    def dead_letter(self, message: Record, reason: str) -> None:
        """Send the record to the dead-letter topic, or log it; a dead letter always fits:
        the reason is cut to 512 bytes and a value too large is cut, with headers saying so."""
        if not self.config.dead_letter_topic:
            event("dead_letter", partition=message.partition, offset=message.offset, reason=reason[:REASON_BYTES])
            return
        headers = [
            ("reason", reason.encode()[:REASON_BYTES]),
            ("source_topic", message.topic.encode()),
            ("source_partition", str(message.partition).encode()),
            ("source_offset", str(message.offset).encode()),
        ]
        value, key = message.value, message.key
        room = DEAD_LETTER_BYTES - len(key or b"")
        if value is not None and len(value) > room:
            headers += [("truncated", b"true"), ("original_size", str(len(value)).encode()),
                        ("original_sha256", hashlib.sha256(value).hexdigest().encode())]  # fmt: skip
            value = value[: max(room, 0)]
            if key is not None and len(key) > DEAD_LETTER_BYTES // 2:
                key = key[: DEAD_LETTER_BYTES // 2]
                headers.append(("key_truncated", b"true"))
        if value is None and key is None:  # Kafka takes no record without both; the headers say what it was
            value = b""
        self._send(self.config.dead_letter_topic, message, value, key, headers)

    def _send(self, topic: str, message: Record, value: bytes | None, key: bytes | None, headers: list) -> None:
        def failed(error: Exception) -> None:
            event("send_failed", topic=topic, partition=message.partition, offset=message.offset, error=str(error))

        try:
            self.producer.send(topic, value=value, key=key, headers=headers).add_errback(failed)
        except Exception as e:  # refused before it left (too large for the producer, buffer full): logged
            failed(e)
        self.unflushed += 1
        if self.unflushed >= MAX_UNFLUSHED:  # kafka-python's producer has no memory bound of its own
            self.unflushed = 0
            if (why := self.flush(timeout=30)) is not None:  # the broker is away: the records wait and retry
                event("producer_behind", error=why)

    def flush(self, timeout: float) -> str | None:
        """Wait until everything sent is on the broker; why not, if it could not be."""
        if self.producer is None:
            return None
        try:
            self.producer.flush(timeout=timeout)
        except Exception as e:
            return str(e)
        self.unflushed = 0
        return None

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close()
