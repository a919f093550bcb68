"""A generated click-like event stream whose true model is known: strings, a nested object,
lists, a boolean, unscaled numbers, nulls and one high-cardinality id.

The label is drawn from a logistic model of the fields (each user has an affinity of their
own), so :func:`true_probability` gives the Bayes-optimal prediction of every record and
the best log loss any learner can reach.

>>> event = next(click_events(seed=1))
>>> sorted(event)
['clicked', 'country', 'device', 'dwell_ms', 'new_user', 'price', 'tags', 'user_id']
>>> 0.0 < true_probability(event) < 1.0
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

__all__ = ["click_events", "true_probability"]

COUNTRIES = {"DE": 0.3, "FR": 0.1, "US": 0.0, "BR": -0.4, "JP": 0.2, "IN": -0.2}
OSES = {"ios": 0.5, "android": 0.0, "web": -0.3}
TAGS = {"sale": 0.6, "new": 0.3, "gift": -0.2, "bulk": -0.5, "promo": 0.4}
USER_SPREAD = 1.0  # the standard deviation of a user's own affinity


def _affinity(user: str, seed: int) -> float:
    """A user's own affinity: a fixed draw from N(0, USER_SPREAD) per (user, seed)."""
    return random.Random(f"{seed}:{user}").gauss(0.0, USER_SPREAD)


def _margin(event: dict[str, Any], seed: int) -> float:
    z = -1.0 + COUNTRIES[event["country"]] + OSES[event["device"]["os"]] + sum(TAGS[t] for t in event["tags"])
    z += 0.8 * math.log1p(event["dwell_ms"] / 10_000) - 0.004 * event["price"] / 100
    z += 0.3 * bool(event["new_user"]) + _affinity(event["user_id"], seed)
    return z


def true_probability(event: dict[str, Any], seed: int = 0) -> float:
    """The probability that ``event`` is clicked under the model that generated it."""
    return 1.0 / (1.0 + math.exp(-_margin(event, seed)))


def click_events(n: int | None = None, seed: int = 0, users: int = 100_000, target: str = "clicked") -> Iterator[dict]:
    """``n`` events (None: without end), with ``users`` distinct user ids drawn uniformly."""
    rng = random.Random(seed)
    count = 0
    while n is None or count < n:
        event: dict[str, Any] = {
            "user_id": f"u{rng.randrange(users)}",
            "country": rng.choice(list(COUNTRIES)),
            "device": {"os": rng.choice(list(OSES)), "version": rng.choice(["17.2", "16.4", "14.0", None])},
            "tags": rng.sample(list(TAGS), rng.randrange(0, 3)),
            "price": round(rng.lognormvariate(8.0, 1.0), 2),  # in cents, unscaled
            "dwell_ms": int(rng.expovariate(1 / 20_000)),  # unscaled
            "new_user": rng.random() < 0.2,
        }
        event[target] = int(rng.random() < true_probability(event, seed))
        yield event
        count += 1
