"""Numerically stable logistic functions, shared by the learner and the metrics.

Every function here is finite for any finite margin: no overflow warning, no NaN.

>>> sigmoid(0.0)
0.5
>>> sigmoid(-1e6), sigmoid(1e6)
(0.0, 1.0)
>>> log_loss_gradient(1e6, 0.0), log_loss_gradient(-1e6, 1.0)
(1.0, -1.0)
"""

from __future__ import annotations

import math

# exp(709.78) is the largest finite double; past 700 we use the tail form instead.
EXP_LIMIT = 700.0


def sigmoid(z: float) -> float:
    """Return g(z) = 1 / (1 + exp(-z)), computed without overflow for any z."""
    if z > -EXP_LIMIT:
        return 1.0 / (1.0 + math.exp(-z))
    # Here exp(z) < 1e-304, so exp(z) / (1 + exp(z)) == exp(z) in float64.
    return math.exp(z)


def log_loss_gradient(z: float, y: float) -> float:
    """Return dLoss/dz = g(z) - y for a label y in {0.0, 1.0}.

    Written as -s / (exp(s z) + 1) with s = +1 for y = 1 and s = -1 for y = 0, which is
    accurate to the last bits even where g(z) is close to y (no cancellation), and equals
    river's formula wherever river does not cut its tails (|z| <= 18).
    """
    s = 1.0 if y else -1.0
    sz = s * z
    if sz <= EXP_LIMIT:
        return -s / (math.exp(sz) + 1.0)
    # 1 / (exp(sz) + 1) == exp(-sz) to the last bit once exp(sz) > 1e304.
    return -s * math.exp(-sz)


def log_loss(z: float, y: float) -> float:
    """Return the log loss -[y log g(z) + (1 - y) log(1 - g(z))] from the margin z.

    Computed as log(1 + exp(-s z)) in the form max(-s z, 0) + log1p(exp(-|z|)), finite for
    any finite z.
    """
    s = 1.0 if y else -1.0
    return max(-s * z, 0.0) + math.log1p(math.exp(-abs(z)))
