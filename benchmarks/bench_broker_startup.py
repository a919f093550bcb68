"""LocalKafka start-up: from nothing running (jars cached) to a broker that accepts clients.

    python benchmarks/bench_broker_startup.py [--runs 3]

Prints, for each run, the seconds from LocalKafka() to ready on a fresh data directory
(formatting included), and for a stop/start on the same directory and port.
"""

from __future__ import annotations

import argparse
import statistics
import time

from stream_logreg.broker import KAFKA_VERSION, LocalKafka, broker_classpath


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    broker_classpath()
    print(f"Kafka {KAFKA_VERSION} jars ready in {time.perf_counter() - start:.1f} s (cached after the first run)")
    cold, restart = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        with LocalKafka() as kafka:
            cold.append(time.perf_counter() - start)
            kafka.stop()
            start = time.perf_counter()
            kafka.start()
            restart.append(time.perf_counter() - start)
    print("| start-up | median s | runs (s) |")
    print("|---|---|---|")
    print(f"| fresh data directory to ready | {statistics.median(cold):.1f} | {', '.join(f'{s:.1f}' for s in cold)} |")
    print(f"| restart, same directory and port | {statistics.median(restart):.1f} | "
          f"{', '.join(f'{s:.1f}' for s in restart)} |")  # fmt: skip


if __name__ == "__main__":
    main()
