"""Progressive validation: predict each record, score the prediction, then learn it.

:class:`ProgressiveMetrics` takes, batch by batch, the probability predicted for each
record before it was learned (what ``LogisticRegression.learn_batch`` returns) and its
label, and keeps:

- cumulative log loss and accuracy, computed exactly as river's ``metrics.LogLoss`` and
  ``metrics.Accuracy`` do (same clamping to [1e-15, 1 - 1e-15], same running mean), so
  they equal ``river.evaluate.progressive_val_score`` on the same data and model;
- cumulative ROC AUC from two histograms of the predicted probability (10,000 bins per
  class, ties within a bin counted half), within ~1e-4 of the exact value; river's own
  ``metrics.ROCAUC`` is likewise an approximation (10 thresholds by default);
- log loss, accuracy and exact ROC AUC over a rolling window of the last ``window`` records;
- a learning curve: all of the above every ``every`` records.

Its whole state is plain JSON (``to_state``/``from_state``), so a replay or a consumer
can checkpoint it and resume with the same figures.

>>> import numpy as np
>>> metrics = ProgressiveMetrics(window=2, every=2)
>>> metrics.update(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]))
>>> round(metrics.log_loss, 6), round(metrics.accuracy, 6)
(0.414932, 0.666667)
>>> metrics.curve[0]["records"], round(metrics.curve[0]["accuracy"], 6)
(2, 1.0)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BINS = 10_000
_EPS = 1e-15


def _losses(probas: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """river's LogLoss._eval, elementwise: -log(clamp(p)) or -log(1 - clamp(p))."""
    p = np.clip(probas, _EPS, 1.0 - _EPS)
    return np.where(labels == 1.0, -np.log(p), -np.log(1.0 - p))


def _hits(probas: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """river's accuracy on {False: 1 - p, True: p}: True is predicted only when p > 1 - p."""
    return (probas > 1.0 - probas) == (labels == 1.0)


def exact_roc_auc(probas: np.ndarray, labels: np.ndarray) -> float:
    """The Mann-Whitney ROC AUC, ties counted half; NaN when one class is absent."""
    positives = int(np.sum(labels == 1.0))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(probas, kind="mergesort")
    ranks = np.empty(len(probas))
    sorted_p = probas[order]
    # Average ranks over ties.
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    ends = np.r_[starts[1:], len(sorted_p)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    rank_sum = float(np.sum(ranks[labels == 1.0]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


class ProgressiveMetrics:
    """Progressive-validation metrics, cumulative and rolling, with a learning curve."""

    def __init__(self, window: int = 1000, every: int = 1000, curve_limit: int | None = None) -> None:
        if window < 1 or every < 1:
            raise ValueError(f"window and every must be >= 1, got window={window}, every={every}")
        self.window = window
        self.every = every
        self.curve_limit = curve_limit  # keep only the newest points (a service that runs for ever)
        self.n = 0
        self.log_loss = 0.0
        self.correct = 0
        self._positive_bins = np.zeros(BINS, dtype=np.int64)
        self._negative_bins = np.zeros(BINS, dtype=np.int64)
        self._recent_probas = np.zeros(0)
        self._recent_labels = np.zeros(0)
        self.curve: list[dict[str, float]] = []

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else math.nan

    @property
    def roc_auc(self) -> float:
        """Cumulative ROC AUC from the probability histograms."""
        pos, neg = self._positive_bins, self._negative_bins
        total_pos, total_neg = int(pos.sum()), int(neg.sum())
        if total_pos == 0 or total_neg == 0:
            return math.nan
        below = np.cumsum(neg) - neg
        return float(np.sum(pos * (below + 0.5 * neg))) / (total_pos * total_neg)

    def rolling(self) -> dict[str, float]:
        """Log loss, accuracy and exact ROC AUC over the last ``window`` records."""
        p, y = self._recent_probas, self._recent_labels
        if len(p) == 0:
            return {"log_loss": math.nan, "accuracy": math.nan, "roc_auc": math.nan}
        return {
            "log_loss": float(np.mean(_losses(p, y))),
            "accuracy": float(np.mean(_hits(p, y))),
            "roc_auc": exact_roc_auc(p, y),
        }

    def update(self, probas: np.ndarray, labels: np.ndarray) -> None:
        """Score a batch: probas[i] was predicted for record i before it was learned."""
        start = 0
        while start < len(probas):
            # Split at learning-curve points so each point sees exactly its records.
            stop = min(len(probas), start + self.every - self.n % self.every)
            self._update_chunk(probas[start:stop], labels[start:stop])
            if self.n % self.every == 0:
                self.curve.append(self.point())
                if self.curve_limit is not None and len(self.curve) > self.curve_limit:
                    del self.curve[0]
            start = stop

    def _update_chunk(self, probas: np.ndarray, labels: np.ndarray) -> None:
        from stream_logreg._kernel import running_mean

        mean, n = running_mean(_losses(probas, labels), self.log_loss, self.n)
        self.log_loss, self.n = float(mean), int(n)
        self.correct += int(np.sum(_hits(probas, labels)))
        bins = np.minimum((probas * BINS).astype(np.int64), BINS - 1)
        positive = labels == 1.0
        self._positive_bins += np.bincount(bins[positive], minlength=BINS)
        self._negative_bins += np.bincount(bins[~positive], minlength=BINS)
        self._recent_probas = np.concatenate([self._recent_probas, probas])[-self.window :]
        self._recent_labels = np.concatenate([self._recent_labels, labels])[-self.window :]

    def point(self) -> dict[str, float]:
        """The current figures, as one learning-curve point."""
        rolling = self.rolling()
        return {
            "records": self.n,
            "log_loss": self.log_loss,
            "accuracy": self.accuracy,
            "roc_auc": self.roc_auc,
            "rolling_log_loss": rolling["log_loss"],
            "rolling_accuracy": rolling["accuracy"],
            "rolling_roc_auc": rolling["roc_auc"],
        }

    def to_state(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (NaN written as None)."""
        return {
            "window": self.window,
            "every": self.every,
            "curve_limit": self.curve_limit,
            "n": self.n,
            "log_loss": self.log_loss,
            "correct": self.correct,
            "positive_bins": _sparse_counts(self._positive_bins),
            "negative_bins": _sparse_counts(self._negative_bins),
            "recent_probas": self._recent_probas.tolist(),
            "recent_labels": self._recent_labels.tolist(),
            "curve": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in p.items()}
                      for p in self.curve],
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProgressiveMetrics:
        """Rebuild from :meth:`to_state`'s output."""
        metrics = cls(window=state["window"], every=state["every"], curve_limit=state.get("curve_limit"))
        metrics.n, metrics.log_loss, metrics.correct = state["n"], state["log_loss"], state["correct"]
        for name in ("positive_bins", "negative_bins"):
            bins = getattr(metrics, f"_{name}")
            for index, count in state[name]:
                bins[index] = count
        metrics._recent_probas = np.array(state["recent_probas"], dtype=np.float64)
        metrics._recent_labels = np.array(state["recent_labels"], dtype=np.float64)
        metrics.curve = [{k: (math.nan if v is None else v) for k, v in p.items()} for p in state["curve"]]
        return metrics


def _sparse_counts(bins: np.ndarray) -> list[list[int]]:
    return [[int(i), int(bins[i])] for i in np.flatnonzero(bins)]


def plot_curve(curve: list[dict[str, float]], path: str, title: str = "Progressive validation") -> None:
    """Write a PNG of the learning curve: log loss and accuracy against records seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [p["records"] for p in curve]
    figure, (loss_axis, accuracy_axis) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    loss_axis.plot(records, [p["log_loss"] for p in curve], label="cumulative")
    loss_axis.plot(records, [p["rolling_log_loss"] for p in curve], label="rolling window", alpha=0.7)
    loss_axis.set_ylabel("log loss")
    loss_axis.legend()
    accuracy_axis.plot(records, [p["accuracy"] for p in curve], label="cumulative")
    accuracy_axis.plot(records, [p["rolling_accuracy"] for p in curve], label="rolling window", alpha=0.7)
    accuracy_axis.set_ylabel("accuracy")
    accuracy_axis.set_xlabel("records seen")
    accuracy_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
