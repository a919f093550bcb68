"""pytest plugin: run river's own tests with ``stream_logreg.LogisticRegression`` in place of
``river.linear_model.LogisticRegression``. Load it with ``-p river_swap`` (this folder on
PYTHONPATH); tests/test_river_suite.py does so in a subprocess.

Importing this module changes nothing (our own suite collects it for its doctests): the swap
happens in ``pytest_configure`` of the run that loads it as a plugin, before any test module is
imported. Where river refers to the class:

- ``river.linear_model.LogisticRegression`` (the package attribute): swapped. river's tests
  (``from river import linear_model as lm``; ``lm.LogisticRegression``), its doctests
  (``linear_model.LogisticRegression(...)``), the ``_unit_test_params`` of river's wrappers
  (``multiclass.OneVsRestClassifier``, the ensembles, ...) and ``tests/test_estimators.py``'s
  ``inspect.getmembers(river.linear_model)`` all read it there, at call time.
- ``river.linear_model.log_reg.LogisticRegression``: left alone. Nothing in river's tests or
  doctests reads it there; ``Perceptron`` subclassed it at import (it stays river's, unchanged);
  and pytest's doctest finder keeps a class's docstring only when the class is defined in the
  module it scans, so swapping it would drop river's LogisticRegression docstring example from
  the run instead of running it against our class.

Checks, so the harness cannot quietly test river's own class: ``pytest_sessionstart`` asserts the
swap; river's original ``__init__`` is wrapped (delegating, signature kept) to record every test
that builds an instance of exactly river's class (its subclass ``Perceptron`` still may); a
``tests/test_estimators.py`` case whose estimator holds river's original class is an error.

Options: ``--river-swap-report=PATH`` (JSON: per-test outcomes, the swap checks, deselections),
``--river-swap-deselect=ID`` (repeatable; an id as in the report, see ``report_id``; each must
match a collected test), ``--river-swap-only-logreg-estimators`` (keep only the
``tests/test_estimators.py`` cases whose estimator contains our class).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

_STATE: dict[str, Any] = {
    "swap_ok": False,
    "original_instantiated_in": [],
    "estimators_kept": 0,
    "estimators_dropped": 0,
    "deselected": [],
    "collection_errors": {},
    "results": {},
}
_CURRENT: list[str] = []  # the report id of the test running now, if any
_IDS: dict[str, str] = {}  # node id -> report id, for every collected test


def _river_site() -> Path:
    """The folder holding the installed ``river`` package (site-packages)."""
    import river

    return Path(river.__file__).resolve().parent.parent


def report_id(item_path: Path | str, nodeid: str) -> str:
    """A test's id as the report and ``--river-swap-deselect`` spell it: pytest's node id for
    river's test files (relative to the sdist's root, e.g. ``tests/evaluate/test_x.py::test_y``);
    for the installed package's doctests, the path from site-packages
    (``river/linear_model/ad_predictor.py::river.linear_model.ad_predictor.AdPredictor``)."""
    path = Path(item_path).resolve()
    try:
        rel = path.relative_to(_river_site())
    except ValueError:
        return nodeid
    _, sep, rest = nodeid.partition("::")
    return rel.as_posix() + sep + rest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("river_swap")
    group.addoption("--river-swap-report", default=None, help="write the JSON report here")
    group.addoption("--river-swap-deselect", action="append", default=[], help="deselect this test id")
    group.addoption(
        "--river-swap-only-logreg-estimators",
        action="store_true",
        default=False,
        help="keep only the tests/test_estimators.py cases whose estimator contains our class",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    import river.linear_model
    import river.linear_model.log_reg

    import stream_logreg

    original = river.linear_model.log_reg.LogisticRegression
    if original is stream_logreg.LogisticRegression:
        raise pytest.UsageError("river_swap: river.linear_model.log_reg.LogisticRegression is already ours")
    config.stash[_ORIGINAL] = original
    river.linear_model.LogisticRegression = stream_logreg.LogisticRegression  # type: ignore[misc,assignment]
    _watch_original(original)


_ORIGINAL = pytest.StashKey[Any]()


def _watch_original(original: Any) -> None:
    """Wrap river's original ``__init__`` so that building exactly that class (not a subclass
    such as ``Perceptron``) during a test is recorded. Behaviour is unchanged."""
    init = original.__init__
    if getattr(init, "_river_swap_watch", False):
        return

    @functools.wraps(init)
    def watched(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is original:
            where = _CURRENT[0] if _CURRENT else "(outside a test: import or collection)"
            if where not in _STATE["original_instantiated_in"]:
                _STATE["original_instantiated_in"].append(where)
        init(self, *args, **kwargs)

    watched._river_swap_watch = True  # type: ignore[attr-defined]
    original.__init__ = watched  # type: ignore[misc]


def pytest_sessionstart(session: pytest.Session) -> None:
    import river.linear_model
    from river.linear_model import LogisticRegression as from_import

    import stream_logreg

    ok = (
        river.linear_model.LogisticRegression is stream_logreg.LogisticRegression
        and from_import is stream_logreg.LogisticRegression
        and session.config.stash[_ORIGINAL] is not stream_logreg.LogisticRegression
    )
    if not ok:
        raise pytest.UsageError("river_swap: river.linear_model.LogisticRegression is not stream_logreg's")
    _STATE["swap_ok"] = True


def _holds(obj: Any, cls: type, seen: set[int] | None = None) -> bool:
    """Whether ``obj`` is, or holds somewhere in its attributes, lists, tuples or dicts, an
    instance of exactly ``cls``."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if type(obj) is cls:
        return True
    if isinstance(obj, dict):
        return any(_holds(v, cls, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return any(_holds(v, cls, seen) for v in obj)
    attrs = getattr(obj, "__dict__", None)
    if attrs is not None and type(obj).__module__.split(".")[0] in ("river", "stream_logreg"):
        return any(_holds(v, cls, seen) for v in attrs.values())
    return False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    import stream_logreg

    original = config.stash[_ORIGINAL]
    wanted = list(config.getoption("river_swap_deselect"))
    only_logreg = config.getoption("river_swap_only_logreg_estimators")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    matched: set[str] = set()
    for item in items:
        rid = _IDS[item.nodeid] = report_id(item.path, item.nodeid)
        if rid in wanted:
            matched.add(rid)
            drop.append(item)
            _STATE["deselected"].append(rid)
            continue
        if item.path.name == "test_estimators.py" and hasattr(item, "callspec"):
            estimator = item.callspec.params.get("estimator")
            if _holds(estimator, original):
                raise pytest.UsageError(f"river_swap: {rid} builds river's own LogisticRegression")
            if only_logreg and not _holds(estimator, stream_logreg.LogisticRegression):
                drop.append(item)
                _STATE["estimators_dropped"] += 1
                continue
            _STATE["estimators_kept"] += 1
        keep.append(item)
    stale = sorted(set(wanted) - matched)
    if stale:
        raise pytest.UsageError(f"river_swap: --river-swap-deselect matched no collected test: {stale}")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _CURRENT[:] = [_IDS.get(item.nodeid, item.nodeid)]
    try:
        return (yield)
    finally:
        _CURRENT.clear()


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr)[-2000:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    rid = _IDS.get(report.nodeid, report.nodeid)
    entry = _STATE["results"].setdefault(rid, {"outcome": "passed", "when": "", "message": "", "seconds": 0.0})
    entry["seconds"] += report.duration
    if report.outcome == "passed" or entry["outcome"] in ("failed", "error"):
        return
    if report.outcome == "skipped":
        if entry["outcome"] == "passed":
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            entry.update(outcome=outcome, when=report.when, message=_message(report))
        return
    entry.update(outcome="failed" if report.when == "call" else "error", when=report.when, message=_message(report))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _STATE["collection_errors"][report.nodeid] = str(report.longrepr)[-2000:]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("river_swap_report")
    if not path:
        return
    state = dict(_STATE, exitstatus=int(exitstatus), collected=session.testscollected)
    Path(path).write_text(json.dumps(state, indent=1, default=str))
