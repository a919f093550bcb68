"""learn_one throughput: stream_logreg versus river, on the same dict streams, in one run.

    python benchmarks/bench_learn_one.py [--rows 200000]

Prints examples/second for each and the ratio, and checks the weights are identical. Each
library learns one example before the clock starts: stream_logreg loads its compiled step
on its first learn_one, once per process (the time that takes is printed too).
"""

from __future__ import annotations

import argparse
import random
import time

from river import linear_model

from stream_logreg import LogisticRegression


def dict_stream(rows: int, features: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    names = [f"f{j}" for j in range(features)]
    return [({n: rng.gauss(0.0, 1.0) for n in names}, rng.random() < 0.5) for _ in range(rows)]


def throughput(model, data) -> float:
    start = time.perf_counter()
    for x, y in data:
        model.learn_one(x, y)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    start = time.perf_counter()
    LogisticRegression().learn_one({"a": 1.0}, True)
    first_call = time.perf_counter() - start
    linear_model.LogisticRegression().learn_one({"a": 1.0}, True)
    print("| features | river learn_one (ex/s) | stream_logreg learn_one (ex/s) | ratio | weights equal |")
    print("|---|---|---|---|---|")
    for features in (10, 20):
        data = dict_stream(args.rows, features, seed=features)
        ours, theirs = LogisticRegression(), linear_model.LogisticRegression()
        river_rate = throughput(theirs, data)
        our_rate = throughput(ours, data)
        equal = ours.weights == theirs.weights and ours.intercept == theirs.intercept
        ratio = our_rate / river_rate
        print(f"| {features} | {river_rate:,.0f} | {our_rate:,.0f} | {ratio:.2f}x | {equal} |")
    print(f"\nstream_logreg's first learn_one in this process (loading the compiled step): {first_call:.2f} s")


if __name__ == "__main__":
    main()
