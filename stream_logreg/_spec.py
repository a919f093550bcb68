"""The estimator's parameters as the kernel's typed records (a :class:`~stream_logreg._kernel.Rule`).

A learning rate is a float or one of river's schedulers; the kernel computes
``base / (t + 1) ** power`` itself, which covers floats, ``Constant`` and
``InverseScaling``. For any other scheduler there is no rule for a whole batch, but there
is one for a single step: its rate at t, as a constant.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from river.optim.base import Scheduler

    from stream_logreg._kernel import Rule

    Rate = float | Scheduler


def rule_for(lr: Rate, intercept_lr: Rate, l2: float, clip_gradient: float) -> Rule | None:
    """The rule for every step, or None when a rate is a scheduler the kernel cannot express."""
    from stream_logreg._kernel import Rate as KernelRate

    rates = _kernel_rate(lr), _kernel_rate(intercept_lr)
    if rates[0] is None or rates[1] is None:
        return None
    return _rule(KernelRate(*rates[0]), KernelRate(*rates[1]), l2, clip_gradient)


def rule_at(t: int, lr: Rate, intercept_lr: Rate, l2: float, clip_gradient: float) -> Rule:
    """The rule for step t alone: the rates evaluated at t."""
    from stream_logreg._kernel import Rate as KernelRate

    return _rule(KernelRate(rate_at(lr, t), 0.0), KernelRate(rate_at(intercept_lr, t), 0.0), l2, clip_gradient)


def one_step(
    t: int, lr: Rate, intercept_lr: Rate, l2: float, clip_gradient: float
) -> tuple[int, tuple[float, ...], bool]:
    """For ``_dictstep.step`` at step t: the compiled one-example step's address, the rule's
    flat parameters, and whether those hold for every t (no scheduler the kernel cannot
    express)."""
    from stream_logreg import _kernel

    rule = rule_for(lr, intercept_lr, l2, clip_gradient)
    for_every_t = rule is not None
    if rule is None:
        rule = rule_at(t, lr, intercept_lr, l2, clip_gradient)
    return _kernel.one_step_address(rule), _kernel.flat_params(rule), for_every_t


def _rule(lr: Any, intercept_lr: Any, l2: float, clip_gradient: float) -> Rule:
    from stream_logreg import _kernel

    return _kernel.Rule(_kernel.SGD(lr), _kernel.Log(), intercept_lr, float(l2), float(clip_gradient))


def rate_at(rate: Rate, t: int) -> float:
    """The learning rate at step t."""
    if type(rate) is float:
        return rate
    if isinstance(rate, numbers.Real):
        return float(rate)
    return cast("Scheduler", rate).get(t)


def _kernel_rate(rate: Rate) -> tuple[float, float] | None:
    """(base, power) such that rate(t) = base / (t + 1) ** power, or None."""
    if isinstance(rate, numbers.Real):
        return float(rate), 0.0
    from river.optim import schedulers

    if type(rate) is schedulers.Constant:
        return float(rate.learning_rate), 0.0
    if type(rate) is schedulers.InverseScaling:
        return float(rate.learning_rate), float(rate.power)
    return None
