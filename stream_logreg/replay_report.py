"""What a replay reports: its summary (counts, settings, metrics, speed), printed or as JSON."""

from __future__ import annotations

import math
from typing import Any

from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.features import Features
from stream_logreg.options import scale_setting
from stream_logreg.replay import ReplayState
from stream_logreg.scaling import Scaler

__all__ = ["figure", "json_safe", "print_summary", "summary"]


def summary(
    metrics: ProgressiveMetrics, state: ReplayState, features: Features, scaler: Scaler | None, seconds: float,
    learned_now: int,
) -> dict[str, Any]:  # fmt: skip
    """What a replay reports: counts, settings, metrics (cumulative and rolling), speed."""
    rolling = metrics.rolling()
    return {
        "records_learned": state.learned,
        "records_skipped": state.skipped,
        "first_skipped": [{"line": line, "reason": reason} for line, reason in state.first_skipped],
        "skipped_by_reason": state.reasons,
        "categorical": features.categorical if isinstance(features.categorical, str) else list(features.categorical),
        "hash_bits": features.hash_bits,
        "scale": scale_setting(scaler),
        "log_loss": metrics.log_loss if metrics.n else math.nan,
        "accuracy": metrics.accuracy,
        "roc_auc": metrics.defined_roc_auc,
        "rolling_window": metrics.window,
        "rolling_log_loss": rolling["log_loss"],
        "rolling_accuracy": rolling["accuracy"],
        "rolling_roc_auc": rolling["roc_auc"],
        "seconds": seconds,
        "records_per_second": learned_now / seconds if seconds > 0 else 0.0,
    }


def figure(value: float, form: str) -> str:
    """A number in a form, or n/a for NaN."""
    return "n/a" if math.isnan(value) else format(value, form)


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as aligned lines on stdout."""
    window = summary["rolling_window"]
    categorical = summary["categorical"]
    if categorical == "auto":
        categorical = "auto   (any string that is not a number is one-hot encoded)"
    else:
        categorical = ", ".join(categorical) or "none"
    if summary["hash_bits"] is not None:
        categorical += f"   (features hashed into 2**{summary['hash_bits']} buckets)"
    if summary["scale"] != "none":
        categorical += f"   (standardized: {summary['scale']})"
    lines = [
        ("records learned", f"{summary['records_learned']:,}"),
        ("records skipped", f"{summary['records_skipped']:,}"),
        ("categorical", categorical),
        ("log loss", f"{figure(summary['log_loss'], '.6f')}   "
                     f"(last {window:,}: {figure(summary['rolling_log_loss'], '.6f')})"),
        ("accuracy", f"{figure(summary['accuracy'], '.4%')}   "
                     f"(last {window:,}: {figure(summary['rolling_accuracy'], '.4%')})"),
        ("ROC AUC", f"{figure(summary['roc_auc'], '.6f')}   "
                    f"(last {window:,}: {figure(summary['rolling_roc_auc'], '.6f')})"),
        ("records/second", f"{summary['records_per_second']:,.0f}"),
    ]  # fmt: skip
    for name, value in lines:
        print(f"{name:<16} {value}")
    for item in summary["first_skipped"]:
        print(f"skipped line {item['line']}: {item['reason']}")


def json_safe(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
