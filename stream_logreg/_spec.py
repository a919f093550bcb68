"""river's objects as the kernel's typed records (a :class:`~stream_logreg._kernel.Rule`).

The kernel runs river's ``SGD``, ``AdaGrad``, ``RMSProp``, ``Adam`` and ``FTRLProximal``
with the ``Log`` loss and new weights starting at 0, when their learning rates are floats,
``Constant`` or ``InverseScaling`` schedulers (the kernel computes
``base / (t + 1) ** power`` itself). For anything else there is no rule, and the model
takes the exact path (:mod:`stream_logreg._exact`), river's own code.

>>> from river import optim
>>> rule_for(optim.Adam(0.1), optim.losses.Log(), optim.schedulers.Constant(0.01), 0.0, 0.0, 1e12,
...          optim.initializers.Zeros()).optimizer
Adam(lr=Rate(base=0.1, power=0.0), beta_1=0.9, beta_2=0.999, eps=1e-08)
>>> n_slots(optim.FTRLProximal(), l1=0.0), n_slots(optim.SGD(), l1=0.1)
(2, 1)
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_logreg._kernel import Rule


def rule_for(
    optimizer: Any, loss: Any, intercept_lr: Any, l2: float, l1: float, clip_gradient: float, initializer: Any
) -> Rule | None:
    """The kernel's rule for every step, or None when a part has no compiled form."""
    from river import optim

    from stream_logreg import _kernel

    compiled = _kernel_optimizer(optimizer)
    intercept_rate = _kernel_rate(intercept_lr)
    zeros = type(initializer) is optim.initializers.Zeros or (
        type(initializer) is optim.initializers.Constant and initializer.value == 0.0
    )
    if compiled is None or intercept_rate is None or type(loss) is not optim.losses.Log or not zeros:
        return None
    log = _kernel.Log(float(loss.weight_pos), float(loss.weight_neg))
    penalty = _kernel.L1(float(l1)) if l1 else None
    return _kernel.Rule(compiled, log, intercept_rate, float(l2), penalty, float(clip_gradient))


def slot_names(optimizer: Any) -> tuple[str, ...]:
    """The names of river's per-feature state of the optimizer that the model keeps in its
    slots (``("g2",)`` for AdaGrad; none for SGD and for optimizers the kernel lacks)."""
    from stream_logreg import _kernel

    kind = _KERNEL_KINDS.get(type(optimizer).__name__) if _is_river(optimizer) else None
    return () if kind is None else _kernel.SLOT_NAMES[getattr(_kernel, kind)]


def additive_slots(optimizer: Any, l1: float) -> list[int]:
    """The rows of the model's slots that are sums over the steps (AdaGrad's g2, FTRL's z and
    n, the cumulative L1 penalties), which instances sharing one model add up; the others
    (RMSProp's and Adam's moving averages) are each instance's own.

    >>> from river import optim
    >>> additive_slots(optim.FTRLProximal(), 0.0), additive_slots(optim.Adam(), 0.1)
    ([0, 1], [2])
    """
    names = slot_names(optimizer)
    sums = _SUMS.get(type(optimizer).__name__, ())
    return [row for row, name in enumerate(names) if name in sums] + ([len(names)] if l1 else [])


def n_slots(optimizer: Any, l1: float) -> int:
    """How many rows of per-feature state the model keeps: the optimizer's, then L1's."""
    return len(slot_names(optimizer)) + (l1 != 0.0)


def keeps_state_of(optimizer: Any) -> bool:
    """Whether the model keeps all of the optimizer's state (in its slots; SGD has none), so
    that saving the model saves the optimizer too."""
    return _is_river(optimizer)


# The per-feature state of these optimizers that is a sum over the steps.
_SUMS = {"AdaGrad": ("g2",), "FTRLProximal": ("z", "n")}
# river's optimizers the kernel runs, by class name, and the kernel's record for each.
_KERNEL_KINDS = {"SGD": "SGD", "AdaGrad": "AdaGrad", "RMSProp": "RMSProp", "Adam": "Adam", "FTRLProximal": "FTRL"}


def _is_river(optimizer: Any) -> bool:
    """Whether optimizer is exactly one of river's classes the kernel runs (not a subclass,
    which may step differently)."""
    from river import optim

    name = type(optimizer).__name__
    return name in _KERNEL_KINDS and type(optimizer) is getattr(optim, name)


def _kernel_optimizer(optimizer: Any) -> Any:
    from stream_logreg import _kernel

    if not _is_river(optimizer):
        return None
    name = type(optimizer).__name__
    if name == "FTRLProximal":
        return _kernel.FTRL(*(float(getattr(optimizer, f)) for f in ("alpha", "beta", "l1", "l2")))
    rate = _kernel_rate(optimizer.lr)
    if rate is None:
        return None
    fields = {"SGD": (), "AdaGrad": ("eps",), "RMSProp": ("rho", "eps"), "Adam": ("beta_1", "beta_2", "eps")}[name]
    return getattr(_kernel, name)(rate, *(float(getattr(optimizer, f)) for f in fields))


def _kernel_rate(rate: Any) -> Any:
    """The kernel's Rate for a float or a scheduler, or None when it cannot express it."""
    from river.optim import schedulers

    from stream_logreg._kernel import Rate

    if isinstance(rate, numbers.Real):
        return Rate(float(rate), 0.0)
    if type(rate) is schedulers.Constant:
        return Rate(float(rate.learning_rate), 0.0)
    if type(rate) is schedulers.InverseScaling:
        return Rate(float(rate.learning_rate), float(rate.power))
    return None
