"""The label join's memory and disk over a full window: events at --rate a second, each of 20
features, a --click share labelled after a delay drawn uniformly within --timeout, the rest
never; the window fills with rate x timeout events waiting (10 minutes at 20,000 events/s:
12,000,000), spilling what passes --memory-mb to disk.

    python benchmarks/bench_join.py [--rate 20000] [--timeout 600] [--minutes 12] [--memory-mb 100]

Prints, each simulated minute, the events waiting, the resident memory of this process and
the spill file's size, then the records (events and labels) a second through
``LabelJoin`` (encoding, storing, joining, expiring; no model) against the same loop with an
OrderedDict of the events as they are (no bound, no encoding), on the first minute's records.
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from collections import OrderedDict

from stream_logreg.delayed import LabelJoin


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def stream(rate: int, timeout: float, click: float, seconds: float, seed: int = 0):
    """(time, kind, key, x): events at ``rate`` a second for ``seconds``, and the labels of a
    ``click`` share of them after a uniform delay within ``timeout``, merged in time order
    (kind 0, a label, before 1, an event, at one moment)."""
    rng = random.Random(seed)
    labels: list[tuple[float, int, str, None]] = []
    for i in range(int(rate * seconds)):
        now = i / rate
        while labels and labels[0][0] <= now:
            yield heapq.heappop(labels)
        key = f"e{i}"
        yield now, 1, key, {f"f{j}": rng.random() for j in range(20)}
        if rng.random() < click:
            heapq.heappush(labels, (now + rng.uniform(0, timeout), 0, key, None))
    while labels:
        yield heapq.heappop(labels)


def run_join(join: LabelJoin, records, report_every: float) -> tuple[int, float]:
    n, began, next_report = 0, time.perf_counter(), report_every
    for now, kind, key, x in records:
        join.advance(now)
        if kind == 1:
            join.event(key, x, 0.5, now)
        else:
            join.label(key, True, now)
        n += 1
        if now >= next_report:
            next_report += report_every
            counts = join.counts()
            print(f"minute {now / 60:5.1f}: {counts['events_waiting']:>12,} events waiting, "
                  f"{rss_mb():8.1f} MB resident, {counts['spilled_bytes'] / 2**20:9.1f} MB on disk, "
                  f"{n / (time.perf_counter() - began):,.0f} records/s so far", flush=True)  # fmt: skip
    return n, time.perf_counter() - began


def run_dict(records, timeout: float) -> tuple[int, float]:
    """The unbounded baseline: the events as they came, expired from the front (an
    OrderedDict: a dict's first key is found past every deleted one, quadratic here)."""
    waiting: OrderedDict[str, tuple[float, dict]] = OrderedDict()
    n, began = 0, time.perf_counter()
    for now, kind, key, x in records:
        while waiting:
            first = next(iter(waiting))
            if waiting[first][0] + timeout >= now:
                break
            del waiting[first]
        if kind == 1:
            waiting[key] = (now, x)
        else:
            waiting.pop(key, None)
        n += 1
    return n, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=20_000, help="events a second (stream time)")
    parser.add_argument("--timeout", type=float, default=600.0, help="the label timeout, seconds")
    parser.add_argument("--minutes", type=float, default=12.0, help="stream time to run (past the timeout: full)")
    parser.add_argument("--click", type=float, default=0.05, help="the share of events labelled")
    parser.add_argument("--memory-mb", type=float, default=100.0, help="the join's memory for each side")
    args = parser.parse_args()
    print(f"baseline: {rss_mb():.1f} MB resident")
    join = LabelJoin(args.timeout, "drop", memory_bytes=int(args.memory_mb * 2**20))
    try:
        n, seconds = run_join(join, stream(args.rate, args.timeout, args.click, args.minutes * 60), 60.0)
        counts = join.counts()
        print(f"\n{n:,} records (events and labels) through the join in {seconds:.0f} s: {n / seconds:,.0f}/s; "
              f"{counts['events_waiting']:,} events waiting at the end; {rss_mb():.1f} MB resident, "
              f"{counts['spilled_bytes'] / 2**20:,.1f} MB on disk; joined {counts['joined']:,}, "
              f"expired {counts['events_expired']:,}")  # fmt: skip
    finally:
        join.close()
    first_minute = list(stream(args.rate, args.timeout, args.click, 60.0))
    bounded = LabelJoin(args.timeout)
    n, seconds = run_join(bounded, first_minute, 1e18)
    bounded.close()
    print(f"first minute, LabelJoin (encoded, bounded): {n / seconds:,.0f} records/s")
    n, seconds = run_dict(first_minute, args.timeout)
    print(f"first minute, an OrderedDict of the events (no bound): {n / seconds:,.0f} records/s")


if __name__ == "__main__":
    main()
