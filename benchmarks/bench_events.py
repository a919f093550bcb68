"""The service on real event records (nested, strings, lists, unscaled numbers, one id per
user) beside today's numeric records, same broker, same run; and its memory as it goes.

    python benchmarks/bench_events.py [--records 1000000] [--users 1000000] [--bits 18] [--rounds 2]
                                      [--events-only]

Starts a LocalKafka (or uses $KAFKA_BOOTSTRAP_SERVERS) and produces two one-partition topics:
--records click-like events (stream_logreg.clicks: --users distinct user ids) and --records
JSON records of 20 numbers (bench_service.py's). Then, in each round, the service learns
each topic from the start (``stream-logreg consume``, a checkpoint every 100,000 records):
the events with ``--categorical auto --hash-bits B --scale all --optimizer adagrad --lr 0.1``,
the numbers with its defaults. Prints the best records/s of each and their ratio, and the
events service's resident memory at each checkpoint (its growth once every hash bucket has
been seen is what a long run adds: 2**B weights at most, whatever the number of users).
--events-only skips the numeric topic (a long memory run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import orjson
from bench_service import produce, service_run
from kafka import KafkaProducer

from stream_logreg.broker import LocalKafka
from stream_logreg.clicks import click_events
from stream_logreg.kafka_admin import ensure_topic


def produce_events(bootstrap: str, topic: str, records: int, users: int) -> None:
    ensure_topic(bootstrap, topic, 1)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    for event in click_events(records, seed=0, users=users, target="label"):
        producer.send(topic, orjson.dumps(event))
    producer.flush()
    producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--bits", type=int, default=18)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events-only", action="store_true", help="skip the numeric records (a memory run)")
    args = parser.parse_args()
    flags = ("--categorical", "auto", "--hash-bits", str(args.bits), "--scale", "all", "--optimizer", "adagrad",
             "--lr", "0.1")  # fmt: skip
    best = {"events": 0.0, "numbers": 0.0}
    memory: dict[int, float] = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap_servers
        stamp = int(time.time())
        events, numbers = f"events-{stamp}", f"numbers-{stamp}"
        start = time.perf_counter()
        produce_events(bootstrap, events, args.records, args.users)
        if not args.events_only:
            produce(bootstrap, numbers, args.records)
        print(f"produced {args.records:,} events{'' if args.events_only else ' and as many numeric records'} "
              f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
        for round_ in range(args.rounds):
            rate, rss = service_run(bootstrap, events, args.records, Path(folder), f"events-{round_}", *flags)
            if rate > best["events"]:
                best["events"], memory = rate, rss
            if args.events_only:
                print(f"round {round_ + 1}: events {rate:,.0f}/s")
                continue
            rate_numbers, _ = service_run(bootstrap, numbers, args.records, Path(folder), f"numbers-{round_}")
            best["numbers"] = max(best["numbers"], rate_numbers)
            print(f"round {round_ + 1}: events {rate:,.0f}/s, numbers {rate_numbers:,.0f}/s")
    print(f"\n| {args.records:,} records, {args.users:,} users, 2**{args.bits} buckets | best records/s |")
    print("|---|---|")
    print(f"| events: nested, one-hot, hashed, standardized, AdaGrad | {best['events']:,.0f} |")
    if not args.events_only:
        print(f"| numbers: 20 floats per record, SGD (the C reader's fast path) | {best['numbers']:,.0f} |")
        print(f"\nevents / numbers: {best['events'] / best['numbers']:.2f}")
    print("resident memory of the events service (MB) at each checkpoint: "
          + ", ".join(f"{n:,}: {mb:.1f}" for n, mb in sorted(memory.items())))  # fmt: skip
    after = sorted(n for n in memory if n >= 1_000_000)
    if len(after) > 1:
        growth = memory[after[-1]] - memory[after[0]]
        print(f"growth from {after[0]:,} to {after[-1]:,} records: {growth:+.1f} MB")


if __name__ == "__main__":
    main()
