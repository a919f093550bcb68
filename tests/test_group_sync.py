"""GroupSync without a broker: the shared model is the sum of every instance's steps, each
change is folded in once, and a model restored from a snapshot plus the later changes is the
live one."""

import math
import random
from typing import Any

import numpy as np
import pytest
from river import optim

from consumers.framing import pack, unpack
from consumers.group_sync import Change, GroupSync
from stream_logreg import LogisticRegression


def stream(seed: int, n: int) -> list[tuple[dict, bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        names = rng.sample([f"f{j}" for j in range(12)], rng.randint(1, 6))  # features come and go
        x = {name: rng.gauss(0, 2) for name in names}
        out.append((x, rng.random() < 1 / (1 + math.exp(-x.get("f0", 0.0)))))
    return out


def test_after_exchanging_changes_every_instance_holds_the_sum_of_all_steps():
    streams = [stream(seed, 400) for seed in range(3)]
    models = [LogisticRegression(intercept_init=0.25) for _ in streams]
    syncs = [GroupSync(model, f"i{k}", {}) for k, model in enumerate(models)]
    # The reference: what each single step did, measured around it, summed by hand.
    steps: dict[str, float] = {}
    intercept_steps = 0.0
    log: list[Change] = []
    for start in range(0, 400, 50):  # learn 50 records each, publish, read what has arrived
        for model, sync, data in zip(models, syncs, streams, strict=True):
            for x, y in data[start : start + 50]:
                before, intercept = model.weights, model.intercept
                model.learn_one(x, y)
                for name, value in model.weights.items():
                    steps[name] = steps.get(name, 0.0) + value - before.get(name, 0.0)
                intercept_steps += model.intercept - intercept
            if (change := sync.take()) is not None:
                log.append(change)
            for change in log:
                sync.fold(change)
    for sync in syncs:
        for change in log:
            sync.fold(change)
    for model in models:
        assert model.n_steps == 1200
        assert sorted(model.weights) == sorted(steps)
        assert max(abs(model.weights[n] - total) for n, total in steps.items()) <= 1e-12
        assert abs(model.intercept - (0.25 + intercept_steps)) <= 1e-12
        assert max(abs(model.weights[n] - models[0].weights[n]) for n in steps) <= 1e-12


def test_a_change_is_folded_in_once():
    a, b = LogisticRegression(), LogisticRegression()
    sync_a, sync_b = GroupSync(a, "a", {}), GroupSync(b, "b", {})
    a.learn_one({"x": 1.0}, True)
    change = sync_a.take()
    assert change is not None and sync_a.take() is None
    assert sync_b.fold(change) and not sync_b.fold(change)
    assert b.weights == a.weights and b.n_steps == 1
    assert sync_a.fold(change) is False  # its own change, read back from the topic
    assert a.n_steps == 1
    assert sync_b.take() is None  # what b folded in is not b's change


def test_a_model_restored_from_a_snapshot_and_the_later_changes_is_the_live_one():
    models = [LogisticRegression(), LogisticRegression()]
    syncs = [GroupSync(model, name, {}) for model, name in zip(models, "ab", strict=True)]
    data = [stream(10, 300), stream(11, 300)]
    log: list[Change] = []
    snapshot = None
    for step in range(0, 300, 30):
        for model, sync, records in zip(models, syncs, data, strict=True):
            for x, y in records[step : step + 30]:
                model.learn_one(x, y)
            if (change := sync.take()) is not None:
                log.append(change)
        for change in log:
            syncs[1].fold(change)
        if step == 120:  # b's snapshot, taken with its change as the service does
            snapshot = (*models[1].to_parts(), dict(syncs[1].clock), len(log))
    for change in log:
        syncs[1].fold(change)
    assert snapshot is not None
    header, coef, clock, position = snapshot
    restored = LogisticRegression.from_parts(header, coef)
    sync = GroupSync(restored, "b", clock)
    folded = [sync.fold(change) for change in log[position:]]
    assert any(folded)
    live = models[1]
    assert restored.n_steps == live.n_steps == 600
    assert max(abs(restored.weights[n] - w) for n, w in live.weights.items()) <= 1e-12
    assert restored.weights.keys() == live.weights.keys()


def test_changes_round_trip_and_bad_ones_are_refused_naming_the_field():
    change = Change("a", 3, ["x", 7], np.array([[0.5, -1e-300], [2.0, 0.0]]), -0.25, 12, 1.5e9, 0.125)
    back = Change.decode(change.encode())
    assert (back.author, back.seq, back.names, back.intercept, back.steps) == ("a", 3, ["x", 7], -0.25, 12)
    assert back.values.tolist() == [[0.5, -1e-300], [2.0, 0.0]] and back.l1_total == 0.125
    for header, values in (
        ({"author": "a", "seq": "3", "names": ["x"], "intercept": 0.0, "steps": 1, "made": 0.0}, [1.0]),
        ({"author": "a", "seq": 3, "names": ["x", "x"], "intercept": 0.0, "steps": 1, "made": 0.0}, [1.0, 2.0]),
        ({"author": "a", "seq": 3, "names": ["x"], "intercept": 0.0, "steps": 1, "made": 0.0}, [math.nan]),
        ({"author": "a", "seq": 3, "names": ["x"], "intercept": 0.0}, [1.0]),
        ({"author": "a", "seq": 3, "names": ["x"], "intercept": 0.0, "steps": 1, "made": 0.0, "rows": 2}, [1.0]),
        ({"author": "a", "seq": 3, "names": ["x"], "intercept": 0.0, "steps": 1, "made": 0.0, "l1_total": "1"}, [1.0]),
    ):
        with pytest.raises(ValueError):
            Change.decode(pack(header, np.array(values)))
    for blob in (b"", b"SLR1", b"XXXX" + bytes(20), pack({}, np.zeros(2))[:-3]):
        with pytest.raises(ValueError):
            unpack(blob)


def summed_state(model: LogisticRegression) -> dict[Any, list[float]]:
    """Each feature's slots (AdaGrad's g2, FTRL's z and n, the cumulative L1), by name."""
    n = len(model._space)
    return dict(zip(model._space.names(), model._state.slots[:, :n].T.tolist(), strict=True))


@pytest.mark.parametrize("kind", ["adagrad_l1", "ftrl"])
def test_the_optimizers_summed_state_is_exchanged_with_the_weights(kind):
    def make() -> LogisticRegression:
        if kind == "ftrl":
            return LogisticRegression(optim.FTRLProximal(alpha=0.1, l1=0.05))
        return LogisticRegression(optim.AdaGrad(0.1), l1=0.001)

    streams = [stream(seed, 300) for seed in range(3)]
    models = [make() for _ in streams]
    syncs = [GroupSync(model, f"i{k}", {}) for k, model in enumerate(models)]
    own: dict[Any, np.ndarray] = {}  # what each instance's own steps added to each feature's state
    own_l1 = 0.0
    log: list[Change] = []
    for start in range(0, 300, 60):
        for model, sync, data in zip(models, syncs, streams, strict=True):
            before, l1_before = summed_state(model), model._state.l1_total
            for x, y in data[start : start + 60]:
                model.learn_one(x, y)
            for name, values in summed_state(model).items():
                own[name] = own.get(name, 0.0) + np.array(values) - np.array(before.get(name, [0.0] * len(values)))
            own_l1 += model._state.l1_total - l1_before
            change = sync.take()
            assert change is not None and len(change.values) == len(model._state.slots) + 1
            log.append(change)
        for sync in syncs:
            for change in log:
                sync.fold(change)
    for model in models:
        state = summed_state(model)
        assert max(np.max(np.abs(np.array(state[name]) - total)) for name, total in own.items()) <= 1e-9
        assert abs(model._state.l1_total - own_l1) <= 1e-12
        assert max(abs(model.weights[k] - models[0].weights[k]) for k in own) <= 1e-9
        assert model.n_steps == 900


def test_a_change_from_an_instance_with_another_optimizer_is_refused():
    adagrad, sgd = LogisticRegression(optim.AdaGrad(0.1)), LogisticRegression()
    sync = GroupSync(adagrad, "a", {})
    adagrad.learn_one({"x": 1.0}, True)
    change = sync.take()
    assert change is not None
    with pytest.raises(ValueError, match="carries 1 rows of optimizer state, this model sums 0"):
        GroupSync(sgd, "b", {}).fold(change)
