"""The processing step replay and the consumer service share: learn a block of decoded
examples in order, one step each, predicting each before learning it and scoring that
prediction (progressive validation), and refusing only the examples whose margin
overflows. Pure: no Kafka, no files; the caller does what it does with the refused ones
(dead letters, skipped lines) and the predictions.

>>> from stream_logreg import LogisticRegression
>>> from stream_logreg.evaluate import ProgressiveMetrics
>>> from river import optim
>>> model, metrics = LogisticRegression(optim.SGD(0.5)), ProgressiveMetrics()
>>> done = learn_examples(model, metrics, [{"a": 1e200}, {"a": 1e200}, {"b": 1.0}], [True, True, False])
>>> done.learned, [position for position, _ in done.refused], done.probas.round(4).tolist(), done.version
([0, 2], [1], [0.5, 0.5012], 0)
>>> done.refused[0][1][:45]  # the second's margin overflows: refused, the model as it was
'the margin theta^T x + b is not finite on x={'
>>> metrics.n  # the two learned were scored
2
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import numpy as np

from stream_logreg._learner import LogisticRegression
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import MarginError
from stream_logreg.features import Features
from stream_logreg.scaling import Scaler

__all__ = ["Learned", "Named", "learn_examples", "learn_rows", "learn_scaled"]

# A record as Features.named gives it: (x before hashing, y, the names of its numeric features).
Named = tuple[dict[Hashable, float], bool, list[str]]


class Learned(NamedTuple):
    """What one block did: the examples learned (their positions in the block, in order),
    the probability of True predicted for each just before it was learned, their labels,
    the examples refused with why, and the model's step count before the block (the k-th
    example learned was predicted by the model at ``version + k``)."""

    learned: list[int]
    probas: np.ndarray
    labels: np.ndarray
    refused: list[tuple[int, str]]
    version: int


def learn_examples(
    model: LogisticRegression, metrics: ProgressiveMetrics, xs: list[dict[Hashable, float]], ys: list[bool]
) -> Learned:
    """Learn the dicts in order and score their predictions: the whole block through the
    kernel, or, when an example's margin overflows (the kernel then undoes the block), one
    by one so only it is refused."""
    done = _learn_dicts(model, xs, ys)
    metrics.update(done.probas, done.labels)
    return done


def _learn_dicts(model: LogisticRegression, xs: list[dict[Hashable, float]], ys: list[bool]) -> Learned:
    version = model.n_steps
    try:
        probas = model.learn_batch(xs, ys)
    except MarginError:
        learned, kept, refused = [], [], []
        for position, (x, y) in enumerate(zip(xs, ys, strict=True)):
            try:
                p = model.predict_proba_one(x)[True]
                model.learn_one(x, y)
            except MarginError as e:
                refused.append((position, str(e)))
                continue
            learned.append(position)
            kept.append(p)
        labels = np.array([float(ys[position]) for position in learned])
        return Learned(learned, np.array(kept), labels, refused, version)
    return Learned(list(range(len(xs))), probas, np.array(ys, dtype=np.float64), [], version)


def learn_rows(
    model: LogisticRegression,
    metrics: ProgressiveMetrics,
    features: list[Hashable],
    values: np.ndarray,
    labels: np.ndarray,
) -> Learned:
    """Learn the rows of a float64 matrix (columns named ``features``, labels 0.0/1.0, all
    finite) in order, as :func:`learn_examples` learns dicts, without making them."""
    version = model.n_steps
    try:
        probas = model.learn_array(values, features, labels)
    except MarginError:
        xs = [dict(zip(features, row, strict=True)) for row in values.tolist()]
        return learn_examples(model, metrics, xs, [label == 1.0 for label in labels.tolist()])
    metrics.update(probas, labels)
    return Learned(list(range(len(values))), probas, labels, [], version)


def learn_scaled(
    model: LogisticRegression, metrics: ProgressiveMetrics, scaler: Scaler, features: Features, examples: list[Named]
) -> Learned:
    """Learn records standardized by ``scaler`` in front of the model, as river's
    ``StandardScaler() | model`` does: each predicted scaled with the statistics before it,
    then the statistics learn it, then the model learns it scaled with the new ones (then
    hashed, if ``features`` hashes). A refused record leaves both as they were."""
    version, steps = model.n_steps, [scaler.step(x, numeric) for x, _, numeric in examples]
    ys = [y for _, y, _ in examples]
    try:  # the whole block through the kernel
        probas = model.learn_batch([features.hash(after) for _, after, _ in steps], ys,
                                   predict=[features.hash(before) for before, _, _ in steps])  # fmt: skip
    except MarginError:  # the model is as it was: put the scaler back too, and go one by one
        for _, _, undo in reversed(steps):
            scaler.undo(undo)
    else:
        done = Learned(list(range(len(examples))), probas, np.array(ys, dtype=np.float64), [], version)
        metrics.update(done.probas, done.labels)
        return done
    learned, kept, refused = [], [], []
    for position, (x, y, numeric) in enumerate(examples):
        before, after, undo = scaler.step(x, numeric)
        try:
            p = model.predict_proba_one(features.hash(before))[True]
            model.learn_one(features.hash(after), y)
        except MarginError as e:
            scaler.undo(undo)
            refused.append((position, str(e)))
            continue
        learned.append(position)
        kept.append(p)
    done = Learned(learned, np.array(kept), np.array([float(examples[i][1]) for i in learned]), refused, version)
    metrics.update(done.probas, done.labels)
    return done
