"""The stall check of the run loop, without a broker."""

from consumers.idle import stalled


class FakeConsumer:
    """Just what ``stalled`` reads of a KafkaConsumer."""

    def __init__(self, positions: dict, ends: dict, broker_away: bool = False) -> None:
        self.positions, self.ends, self.broker_away = positions, ends, broker_away

    def assignment(self):
        return set(self.positions)

    def end_offsets(self, partitions, timeout_ms=None):
        if self.broker_away:
            from kafka.errors import KafkaTimeoutError

            raise KafkaTimeoutError("no broker")
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp, timeout_ms=None):
        return self.positions[tp]


def test_a_consumer_is_stalled_only_when_the_broker_answers_and_records_wait():
    assert stalled(FakeConsumer({"p0": 5, "p1": 10}, {"p0": 5, "p1": 12}))
    assert not stalled(FakeConsumer({"p0": 5, "p1": 12}, {"p0": 5, "p1": 12}))  # read to the end
    assert not stalled(FakeConsumer({}, {}))  # nothing assigned
    assert not stalled(FakeConsumer({"p0": 0}, {"p0": 9}, broker_away=True))  # the broker's fault
