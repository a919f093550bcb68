"""The processing step replay and the consumer service share: learn a block of decoded
examples in order, one step each, predicting each before learning it (progressive
validation), and refusing only the examples whose margin overflows.

>>> from stream_logreg import LogisticRegression
>>> model = LogisticRegression(lr=0.5)
>>> done = learn_examples(model, [{"a": 1e200}, {"a": 1e200}, {"b": 1.0}], [True, True, False])
>>> done.learned, [position for position, _ in done.refused], done.probas.round(4).tolist(), done.version
([0, 2], [1], [0.5, 0.5012], 0)
>>> done.refused[0][1][:45]  # the second's margin overflows: refused, the model as it was
'the margin theta^T x + b is not finite on x={'
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stream_logreg._learner import LogisticRegression
from stream_logreg.exceptions import MarginError

__all__ = ["Learned", "learn_examples", "learn_rows"]


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


def learn_examples(model: LogisticRegression, xs: list[dict[str, float]], ys: list[bool]) -> Learned:
    """Learn the dicts in order: the whole block through the kernel, or, when an example's
    margin overflows (the kernel then undoes the block), one by one so only it is refused."""
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


def learn_rows(model: LogisticRegression, features: list[str], values: np.ndarray, labels: np.ndarray) -> Learned:
    """Learn the rows of a float64 matrix (columns named ``features``, labels 0.0/1.0, all
    finite) in order, as :func:`learn_examples` learns dicts, without making them."""
    version = model.n_steps
    try:
        probas = model.learn_array(values, features, labels)
    except MarginError:
        xs = [dict(zip(features, row, strict=True)) for row in values.tolist()]
        return learn_examples(model, xs, [label == 1.0 for label in labels.tolist()])
    return Learned(list(range(len(values))), probas, labels, [], version)
