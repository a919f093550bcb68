"""Labels that arrive later: each event is predicted when it arrives and waits for its label;
when the label comes, the event's features (as they were at prediction time) are learned
with it, one step, and the prediction made at event time is scored (delayed progressive
validation, as river's ``progressive_val_score(delay=...)`` scores).

:class:`LabelJoin` does no I/O and keeps no model: whoever reads the events and the labels
(the file replay, the service) feeds it both, and the passing of time, in time order, and
learns the pairs it hands back. An event whose label has not come ``timeout`` seconds after
it is dropped or handed back as a negative (``on_timeout``); a label whose event has not come
within ``timeout`` seconds (it came first, its event is unknown, or its event expired) is
handed back as unmatched. A record at exactly ``timeout`` seconds is still in time.

What waits is kept in two :class:`~stream_logreg.join_store.JoinStore`: at most
``memory_bytes`` in memory (the events' features encoded as bytes), the oldest beyond that in
a temporary SQLite file; :meth:`LabelJoin.close` deletes it.

>>> join = LabelJoin(timeout=10.0, on_timeout="negative")
>>> join.event("a", {"x": 1.0}, proba=0.7, time=0.0)
>>> join.event("b", {"x": 2.0}, proba=0.4, time=1.0)
>>> join.label("a", True, time=4.0)
Pair(key='a', x={'x': 1.0}, y=True, proba=0.7)
>>> join.advance(12.0)  # b's 10 seconds are over: learned as a negative
([Pair(key='b', x={'x': 2.0}, y=False, proba=0.4)], [])
>>> join.counts()["joined"], join.counts()["events_expired"]
(1, 1)
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal, NamedTuple

from stream_logreg.join_store import JoinStore, decode_event, decode_label, encode_event, encode_label

__all__ = ["DelayHistogram", "JoinTally", "LabelJoin", "Pair", "join_key", "parse_time"]


class Pair(NamedTuple):
    """An event's features and its label, to learn, and the probability predicted at event
    time, to score."""

    key: str
    x: dict
    y: bool
    proba: float


class DelayHistogram:
    """Label delays (seconds) in buckets 1% wide, from 1 ms to about a year, and one bucket
    for each side beyond: fixed memory whatever the stream; percentiles within 1% (the
    upper edge of the bucket).

    >>> h = DelayHistogram()
    >>> for d in [1.0, 2.0, 3.0, 4.0]:
    ...     h.add(d)
    >>> round(h.percentile(50), 1), round(h.percentile(100), 1)
    (2.0, 4.0)
    """

    LOW, RATIO, N = 1e-3, 1.01, 2430  # 1e-3 * 1.01**2430 = 3.2e7 s, about a year

    def __init__(self) -> None:
        self.counts = [0] * (self.N + 2)
        self.n = 0

    def add(self, delay: float) -> None:
        """Count one delay (a negative one, a label before its event, counts as 0)."""
        bucket = 0
        if delay >= self.LOW:
            bucket = min(int(math.log(delay / self.LOW) / math.log(self.RATIO)) + 1, self.N + 1)
        self.counts[bucket] += 1
        self.n += 1

    def percentile(self, q: float) -> float:
        """The delay below which q% of them fall (the upper edge of its bucket, rounded to
        the 1%); NaN when there is none."""
        if self.n == 0:
            return math.nan
        rank, seen = max(math.ceil(self.n * q / 100.0), 1), 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return 0.0 if bucket == 0 else self.LOW * self.RATIO ** min(bucket, self.N)
        return math.inf  # unreachable: the counts add up to n

    def to_state(self) -> dict[str, int]:
        """The counts as JSON-ready data (the buckets that hold any)."""
        return {str(bucket): count for bucket, count in enumerate(self.counts) if count}

    @classmethod
    def from_state(cls, state: dict[str, int]) -> DelayHistogram:
        histogram = cls()
        for bucket, count in state.items():
            histogram.counts[int(bucket)] = int(count)
        histogram.n = sum(histogram.counts)
        return histogram


class JoinTally:
    """What joins have done: events seen, pairs joined, events expired, labels unmatched,
    records refused as duplicates, and the label delays. Apart from the join, so that the
    service's joins (one per partition) add up into one tally, saved with its state.

    >>> tally = JoinTally.from_state({"events": 3, "joined": 1, "delays": {"5": 1}})
    >>> tally.joined, tally.delays.n, JoinTally.from_state(tally.to_state()).to_state() == tally.to_state()
    (1, 1, True)
    """

    COUNTS = ("events", "joined", "events_expired", "labels_unmatched", "duplicates")

    def __init__(self) -> None:
        self.events = self.joined = self.events_expired = self.labels_unmatched = self.duplicates = 0
        self.delays = DelayHistogram()

    def to_state(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in self.COUNTS}, "delays": self.delays.to_state()}

    def figures(self) -> dict[str, float]:
        """The counts, the join rate (joined / events) and the label delay percentiles (s)."""
        return {
            "events": self.events,
            "joined": self.joined,
            "join_rate": self.joined / self.events if self.events else math.nan,
            "events_expired": self.events_expired,
            "labels_unmatched": self.labels_unmatched,
            "duplicates": self.duplicates,
            "delay_p50": self.delays.percentile(50),
            "delay_p90": self.delays.percentile(90),
            "delay_p99": self.delays.percentile(99),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> JoinTally:
        tally = cls()
        for name in cls.COUNTS:
            setattr(tally, name, int(state.get(name, 0)))
        tally.delays = DelayHistogram.from_state(state.get("delays", {}))
        return tally


class LabelJoin:
    """The events waiting for their labels and the labels waiting for their events, both
    for at most ``timeout`` seconds, keyed by the join key (a str); fed in time order.

    Memory: at most ``memory_bytes`` for each of the two (the rest spills to a temporary
    file, :mod:`stream_logreg.join_store`).
    """

    def __init__(
        self, timeout: float, on_timeout: Literal["drop", "negative"] = "drop",
        memory_bytes: int = 100 * 2**20, tally: JoinTally | None = None,
    ) -> None:  # fmt: skip
        if not (isinstance(timeout, (int, float)) and timeout >= 0 and math.isfinite(timeout)):
            raise ValueError(f"the label timeout must be a number of seconds >= 0, got {timeout!r}")
        if on_timeout not in ("drop", "negative"):
            raise ValueError(f"on_timeout must be 'drop' or 'negative', got {on_timeout!r}")
        self.timeout, self.on_timeout = float(timeout), on_timeout
        self.events = JoinStore(memory_bytes)  # key -> (time, the features and proba encoded)
        self.labels = JoinStore(memory_bytes)  # key -> (time, the label and where it came from encoded)
        self.tally = tally if tally is not None else JoinTally()

    def advance(self, now: float) -> tuple[list[Pair], list[tuple[str, Any]]]:
        """Time is ``now``: return the events whose timeout passed, to learn as negatives
        (with ``on_timeout="negative"``; none when dropping), and the labels that waited in
        vain (their key and where they came from)."""
        negatives: list[Pair] = []
        unmatched: list[tuple[str, Any]] = []
        while (oldest := self.events.oldest()) is not None and oldest[1] + self.timeout < now:
            key, _, payload = oldest
            self.events.pop(key)
            self.tally.events_expired += 1
            if self.on_timeout == "negative":
                x, proba = decode_event(payload)
                negatives.append(Pair(key, x, False, proba))
        while (oldest := self.labels.oldest()) is not None and oldest[1] + self.timeout < now:
            key, _, payload = oldest
            self.labels.pop(key)
            self.tally.labels_unmatched += 1
            unmatched.append((key, decode_label(payload)[1]))
        return negatives, unmatched

    def event(self, key: str, x: dict, proba: float, time: float) -> Pair | None:
        """An event predicted ``proba`` at ``time``: the pair to learn at once if its label
        came first, else None (it waits). ValueError if an event of that key waits already."""
        tally = self.tally
        tally.events += 1
        if key in self.events:
            tally.duplicates += 1
            raise ValueError(f"an event with the join key {key!r} is waiting for its label already; join keys "
                             "must be unique within the label timeout")  # fmt: skip
        early = self.labels.pop(key)
        if early is not None:
            tally.joined += 1
            tally.delays.add(early[0] - time)
            return Pair(key, x, decode_label(early[1])[0], proba)
        self.events.put(key, time, encode_event(x, proba))
        return None

    def label(self, key: str, y: bool, time: float, where: Any = None) -> Pair | None:
        """A label at ``time`` (from ``where``: a line, an offset): the pair to learn if its
        event waits, else None (it waits for its event). ValueError if a label of that key
        waits already."""
        waiting = self.events.pop(key)
        if waiting is not None:
            event_time, payload = waiting
            x, proba = decode_event(payload)
            self.tally.joined += 1
            self.tally.delays.add(time - event_time)
            return Pair(key, x, y, proba)
        if key in self.labels:
            self.tally.duplicates += 1
            raise ValueError(f"a label with the join key {key!r} is waiting for its event already")
        self.labels.put(key, time, encode_label(y, where))
        return None

    def close(self) -> None:
        """Delete the spill files; nothing waits afterwards."""
        self.events.close()
        self.labels.close()

    def counts(self) -> dict[str, Any]:
        """The join's figures: events seen, pairs joined and the join rate (joined / events),
        events expired, labels unmatched, records refused as duplicates, events and labels
        waiting now, label delay percentiles (s), the size of the spill files."""
        return {**self.tally.figures(), "events_waiting": len(self.events), "labels_waiting": len(self.labels),
                "spilled_bytes": self.events.disk_bytes() + self.labels.disk_bytes()}  # fmt: skip


def parse_time(field: str, value: Any) -> float:
    """A timestamp as seconds: a number, a string of one, or an ISO 8601 date-time (UTC
    unless it says otherwise); ValueError naming the field otherwise.

    >>> parse_time("ts", "2026-01-01T00:00:10Z") - parse_time("ts", "2026-01-01T00:00:00")
    10.0
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
            if math.isfinite(number):
                return number
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
    raise ValueError(f"field {field!r} has the value {str(value)[:60]!r}, which is not a timestamp "
                     "(seconds, or an ISO 8601 date-time)")  # fmt: skip


def join_key(field: str, record: dict[str, Any]) -> str:
    """The join key of a record, as a string (the number 17 and the string "17" are one key,
    so that a CSV and a JSON file join); ValueError naming the field otherwise."""
    value = record.get(field)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise ValueError(f"field {field!r} (the join key) is {str(value)[:60]!r}; it must be a string or an integer")
