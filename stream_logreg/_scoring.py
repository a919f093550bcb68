"""The metrics pass of progressive validation, compiled by numba (apart from the learning
kernel: scoring never changes the model)."""

from __future__ import annotations

import math

from numba import njit

from stream_logreg._paths import use_user_cache_for_numba

use_user_cache_for_numba()


@njit(cache=True, nogil=True)
def score(probas, labels, thresholds, positives_above, negatives_above, counts, mean):
    """Progressive-validation scores of a batch, in one pass, the way river's metrics count.

    Log loss: river's ``stats.Mean`` of -log(clamp(p)) (or -log(1 - clamp(p)) for label 0),
    record by record: n += 1; mean += (1 / n) (loss - mean); the new mean is returned.
    ``counts`` (int64 [n, correct, positives, negatives]) and, per threshold, the positives
    and negatives predicted above it are updated in place. A hit: True is predicted exactly
    when p > 1 - p.
    """
    n, correct, positives, negatives = counts[0], counts[1], counts[2], counts[3]
    for i in range(probas.shape[0]):
        p, positive = probas[i], labels[i] == 1.0
        clamped = min(max(p, 1e-15), 1.0 - 1e-15)
        loss = -math.log(clamped) if positive else -math.log(1.0 - clamped)
        n += 1
        mean += (1.0 / n) * (loss - mean)
        correct += (p > 1.0 - p) == positive
        above = positives_above if positive else negatives_above
        for k in range(thresholds.shape[0]):
            above[k] += p > thresholds[k]
        positives += positive
        negatives += not positive
    counts[0], counts[1], counts[2], counts[3] = n, correct, positives, negatives
    return mean
