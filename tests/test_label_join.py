"""The service's label join (consumers/label_join.py) without a broker: whatever the order
and sizes in which the two topics' records are fetched, the result is the plain pass's
(tests/test_delayed.py). The consumer is a stand-in for what the join asks of it (how far
each partition was read, pausing); the Kafka path itself is tested in test_label_service.py."""

import json
import random

import pytest
from kafka.structs import TopicPartition
from test_delayed import plain_pass, stream

from consumers import label_join
from consumers.config import ServiceConfig
from consumers.label_join import LabelJoiner
from consumers.record_blocks import RecordBlock
from stream_logreg import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.options import build_model

EVENTS, LABELS = TopicPartition("ev", 0), TopicPartition("lab", 0)


class ReadSoFar:
    """What the join asks of the consumer: each partition's end and how far it was read."""

    def __init__(self, ends: dict) -> None:
        self.ends, self.read = ends, dict.fromkeys(ends, 0)
        self.paused_now: set = set()

    def highwater(self, tp):
        return self.ends[tp]

    def position(self, tp):
        return self.read[tp]

    def pause(self, tp):
        self.paused_now.add(tp)

    def resume(self, tp):
        self.paused_now.discard(tp)

    def paused(self):
        return set(self.paused_now)


class Published:
    def __init__(self) -> None:
        self.predictions: list[tuple[int, str, float, int]] = []
        self.dead: list[tuple[str, int, str]] = []

    def event_prediction(self, message, join_key, probability, version):
        self.predictions.append((message.offset, join_key, probability, version))

    def dead_letter(self, message, reason):
        self.dead.append((message.topic, message.offset, reason))


def joiner(model: LogisticRegression, consumer: ReadSoFar, outputs: Published) -> LabelJoiner:
    config = ServiceConfig(bootstrap_servers="unused", topic="ev", group_id="g", target="clicked",
                           checkpoint_dir=None, processing_guarantee="exactly-once", labels_topic="lab",
                           join_key="id", label_timeout=60.0, on_timeout="negative", model={})  # fmt: skip
    counters = {"consumed": 0, "learned": 0, "dead_lettered": 0, "by_partition": {}}
    join = LabelJoiner(config, model, ProgressiveMetrics(), counters, {}, outputs)  # type: ignore[arg-type]
    join.consumer = consumer
    join.pairs[0] = label_join.PartitionJoin(label_join.LabelJoin(60.0, "negative", tally=join.tally))
    return join


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_fetch_order_gives_the_plain_pass(seed, monkeypatch):
    monkeypatch.setattr(label_join, "MAX_FETCHED", 50)  # the queues fill: partitions are paused
    events, labels = stream(1500, seed=seed)
    values = {EVENTS: [json.dumps(e).encode() for e in events], LABELS: [json.dumps(x).encode() for x in labels]}
    values[EVENTS].insert(700, b"not json")  # a poison record, dead-lettered where it stands
    consumer = ReadSoFar({tp: len(v) for tp, v in values.items()})
    outputs = Published()
    model = build_model({"optimizer": "adagrad", "lr": 0.2})
    join = joiner(model, consumer, outputs)
    rng = random.Random(seed)
    while any(consumer.read[tp] < consumer.ends[tp] for tp in values):
        fetchable = [tp for tp in values if consumer.read[tp] < consumer.ends[tp] and tp not in consumer.paused()]
        if fetchable:  # (a paused partition is not fetched)
            tp = rng.choice(fetchable)
            start = consumer.read[tp]
            piece = values[tp][start : start + rng.randrange(1, 200)]
            consumer.read[tp] += len(piece)
            join.fetched(tp, RecordBlock(tp.topic, 0, list(range(start, start + len(piece))), [None] * len(piece),
                                         list(piece)))  # fmt: skip
        taken = join.process(rng.randrange(1, 300))
        assert fetchable or taken, "neither fetching nor taking: stuck"
        assert all(len(q) < 50 + 200 for q in (join.pairs[0].events, join.pairs[0].labels))
    while join.process(1000):
        pass
    want, scored, counts = plain_pass(events, labels, 60.0, "negative")
    assert model.weights == want.weights and model.intercept == want.intercept  # bit for bit
    assert join.counters["learned"] == len(scored) and join.tally.joined == counts["joined"]
    assert join.counters["consumed"] == len(events) + len(labels) + 1
    assert [d[:2] for d in outputs.dead if "not json" in d[2] or "JSON" in d[2]] == [("ev", 700)]
    assert len(outputs.dead) == 1 + counts["unmatched"]
    assert sorted(int(key) for _, key, _, _ in outputs.predictions) == [e["id"] for e in events]
    assert join.positions[0] == len(values[EVENTS]) and join.label_positions[0] == len(values[LABELS])
    assert not consumer.paused()


def test_a_partition_read_to_its_end_lets_the_other_go_on_and_one_not_read_holds_it():
    consumer = ReadSoFar({EVENTS: 3, LABELS: 1})
    join = joiner(build_model({}), consumer, Published())
    events = [{"id": i, "timestamp": float(i), "a": 1.0} for i in range(3)]
    join.fetched(EVENTS, RecordBlock("ev", 0, [0, 1, 2], [None] * 3, [json.dumps(e).encode() for e in events]))
    consumer.read[EVENTS] = 3
    assert join.process(100) == 0  # the labels partition holds a record not read yet: it could come first
    join.fetched(LABELS, RecordBlock("lab", 0, [0], [None], [b'{"id": 1, "timestamp": 1.5, "clicked": true}']))
    consumer.read[LABELS] = 1
    assert join.process(100) == 4  # e0, e1, the label, e2: the labels partition is read to its end
    assert join.counters["learned"] == 1 and join.positions[0] == 3 and join.label_positions[0] == 1
