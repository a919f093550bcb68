"""The stall and idle checks of the run loop, without a broker."""

from kafka.structs import TopicPartition

from consumers.config import ServiceConfig
from consumers.idle import caught_up, stalled


class FakeConsumer:
    """Just what ``stalled`` reads of a KafkaConsumer."""

    def __init__(self, positions: dict, ends: dict, broker_away: bool = False) -> None:
        self.positions, self.ends, self.broker_away = positions, ends, broker_away
        self.group: dict = {}  # the group's committed offsets

    def assignment(self):
        return set(self.positions)

    def end_offsets(self, partitions, timeout_ms=None):
        if self.broker_away:
            from kafka.errors import KafkaTimeoutError

            raise KafkaTimeoutError("no broker")
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp, timeout_ms=None):
        return self.positions[tp]

    def partitions_for_topic(self, topic):
        return {tp.partition for tp in self.ends if tp.topic == topic}

    def committed(self, tp, timeout_ms=None):
        return self.group.get(tp)


def test_a_consumer_is_stalled_only_when_the_broker_answers_and_records_wait():
    assert stalled(FakeConsumer({"p0": 5, "p1": 10}, {"p0": 5, "p1": 12}))
    assert not stalled(FakeConsumer({"p0": 5, "p1": 12}, {"p0": 5, "p1": 12}))  # read to the end
    assert not stalled(FakeConsumer({}, {}))  # nothing assigned
    assert not stalled(FakeConsumer({"p0": 0}, {"p0": 9}, broker_away=True))  # the broker's fault


def test_an_instance_given_no_partition_is_idle_only_once_the_group_has_read_everything():
    """A member that died holds its partitions until its session ends; the instance given
    none meanwhile must not stop at --idle-timeout while their records wait."""
    config = ServiceConfig("unused", "t", "g", "label", None)
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = FakeConsumer({}, {p0: 10, p1: 4})
    consumer.group = {p0: 10, p1: 3}  # p1: a record past the group's commit
    assert not caught_up(consumer, config, joined=True)
    consumer.group = {p0: 10, p1: 4}
    assert caught_up(consumer, config, joined=True)
    assert not caught_up(consumer, config, joined=False)  # still joining
    consumer.group = {p0: 10}  # nobody ever committed p1
    assert not caught_up(consumer, config, joined=True)
    mine = FakeConsumer({p0: 10}, {p0: 10, p1: 4})  # its own partition read to its end: idle, whatever the others
    assert caught_up(mine, config, joined=True)
    away = FakeConsumer({}, {p0: 10}, broker_away=True)
    assert not caught_up(away, config, joined=True)
