"""Replay with progressive metrics: stream-logreg replay versus river, on the same CSV file.

    python benchmarks/bench_replay.py [--rows 1000000]

Writes a CSV of ROWS x 20 features (in a temporary folder), then times one pass of
``stream-logreg replay`` (log loss, accuracy, ROC AUC, learning curve) and one pass of
``river.stream.iter_csv`` + ``river.evaluate.progressive_val_score`` (LogLoss, Accuracy)
with river's LogisticRegression, and prints both, the ratio, and the two metric values.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from river import evaluate, linear_model, metrics, stream

from stream_logreg.cli import main as cli


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20))
    y = rng.random(rows) < 1.0 / (1.0 + np.exp(-X @ rng.normal(size=20)))
    header = ",".join(f"f{j}" for j in range(20)) + ",label"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="", fmt=["%.17g"] * 20 + ["%d"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_csv(path, args.rows)
        cli(["replay", str(path), "--target", "label", "--max-records", "10"])  # compile the kernel outside the timing
        report = Path(folder) / "report.json"
        start = time.perf_counter()
        cli(["replay", str(path), "--target", "label", "--report", str(report)])
        ours = time.perf_counter() - start
        summary = json.loads(report.read_text())["summary"]

        converters: dict = {f"f{j}": float for j in range(20)} | {"label": lambda v: v == "1"}
        log_loss, accuracy = metrics.LogLoss(), metrics.Accuracy()
        start = time.perf_counter()
        evaluate.progressive_val_score(
            stream.iter_csv(str(path), target="label", converters=converters),
            linear_model.LogisticRegression(),
            metrics.base.Metrics([log_loss, accuracy]),
        )
        theirs = time.perf_counter() - start
    print(f"\n| {args.rows:,} rows x 20 features, CSV, one pass | seconds | records/s | log loss | accuracy |")
    print("|---|---|---|---|---|")
    print(f"| stream-logreg replay | {ours:.2f} | {args.rows / ours:,.0f} | {summary['log_loss']:.12f} "
          f"| {summary['accuracy']:.12f} |")  # fmt: skip
    print(f"| river iter_csv + progressive_val_score | {theirs:.2f} | {args.rows / theirs:,.0f} "
          f"| {log_loss.get():.12f} | {accuracy.get():.12f} |")  # fmt: skip
    print(f"\nstream-logreg replay is {theirs / ours:.1f}x faster end to end")


if __name__ == "__main__":
    main()
