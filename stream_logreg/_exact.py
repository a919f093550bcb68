"""The exact path: one step taken by river's own code, for what the kernel does not run
(optimizers such as Momentum or Nadam, losses such as Hinge, initializers other than zeros,
schedulers other than Constant and InverseScaling).

river's ``GLM.learn_one`` runs on a view of the model: the weights, the optimizer's
per-feature state kept in the model's slots (AdaGrad's g2, Adam's m and v, FTRL's z and n)
and the cumulative L1 penalties of the features in x, the intercept and the step count.
What it changed is written back once the step is done and every number is finite. An
optimizer whose state the model does not keep (Momentum, AdaDelta, ...) keeps it in itself,
as in river.
"""

from __future__ import annotations

import collections
import math
from typing import Any

from river import optim, utils

from stream_logreg import _dictstep, _spec
from stream_logreg.exceptions import MarginError


def learn_one(model: Any, x: dict, label: float, weight: float) -> None:
    """One step of river's ``LogisticRegression.learn_one`` on the model, with the same
    parameters (l1 and l2 together as well: L2 in the gradient, then the L1 penalty)."""
    from river.linear_model.base import GLM  # here: river.linear_model imports scipy.stats (0.5 s at start-up)

    space, state = model._space, model._state
    _dictstep.margin(space.index, state.coef, x, state.intercept)  # checks every value of x
    if not state.writeable():  # a model loaded read-only copies its arrays on its first step
        state.reserve(len(state.coef))
    known = {name: column for name in x if (column := space.column_of(name)) is not None}
    glm = GLM(model.optimizer, model.loss, 0.0, 0.0, state.intercept, model.intercept_lr, model.clip_gradient,
              model.initializer)  # fmt: skip
    glm.l2, glm.l1 = model.l2, model.l1
    glm._weights = utils.VectorDict({name: float(state.coef[c]) for name, c in known.items()})
    slots = _spec.slot_names(model.optimizer)
    on_vectors = type(model.optimizer)._step_with_vector is not optim.base.Optimizer._step_with_vector
    for row, attribute in enumerate(slots):  # as river keeps them: a VectorDict where it steps on one
        column_state = {name: float(state.slots[row, c]) for name, c in known.items()}
        kept: Any = utils.VectorDict(column_state) if on_vectors else collections.defaultdict(float, column_state)
        setattr(model.optimizer, attribute, kept)
    if model.l1:
        glm.max_cum_l1 = state.l1_total
        penalties = {name: float(state.slots[-1, c]) for name, c in known.items()}
        glm.cum_l1 = utils.VectorDict(penalties, optim.initializers.Zeros())
    model.optimizer.n_iterations = state.n_steps
    glm.learn_one(x, label == 1.0, weight)

    weights = glm._weights.to_dict()
    rows = [dict(getattr(model.optimizer, attribute).items()) for attribute in slots]
    if model.l1:
        rows.append(glm.cum_l1.to_dict())
    numbers = [*weights.values(), glm.intercept, *(v for row in rows for v in row.values())]
    if not all(math.isfinite(v) for v in numbers):
        raise MarginError(x)
    columns = space.columns(list(x))
    state.reserve(len(space))
    for name, c in zip(x, columns.tolist(), strict=True):
        state.coef[c] = weights.get(name, 0.0)
        for row, values in enumerate(rows):
            state.slots[row, c] = values.get(name, 0.0)
    state.intercept = glm.intercept
    if model.l1:
        state.l1_total = glm.max_cum_l1
    state.n_steps += 1
