"""river 0.26.1's own tests, run with our LogisticRegression swapped in for river's.

The tests come from river's sdist (it ships them; the wheel does not), downloaded once with pip
into the per-user cache (``$STREAM_LOGREG_CACHE``, else ``$XDG_CACHE_HOME/stream_logreg``, else
``~/.cache/stream_logreg``, folder ``river-0.26.1``). Only the sdist's ``tests/``,
``conftest.py``, ``pyproject.toml`` (river's pytest config) and ``LICENSE`` are extracted: the
library under test is the installed river 0.26.1 wheel, never the sdist's source. If the
download fails, the test fails.

They run in a subprocess, from the sdist's folder under river's own pytest config and conftest,
with the plugin ``tests/river_swap.py`` (``-p river_swap``), which sets
``river.linear_model.LogisticRegression = stream_logreg.LogisticRegression`` before collection,
checks the swap at session start, records any test that still builds river's own class, keeps
only the ``tests/test_estimators.py`` cases whose estimator contains our class, and writes a JSON
report of every test's outcome. The doctests of the installed ``river/optim`` and
``river/linear_model`` run in the same session (``--doctest-modules``, on by river's config).

Run it alone: ``pytest tests/test_river_suite.py``. The subprocess's output
is kept next to its report in the cache folder (``last-run.log``, ``last-run.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream_logreg._paths import user_cache_dir

RIVER_VERSION = "0.26.1"
SDIST_SHA256 = "2326f87f396801cfd8672ac02d9f9731c10e936696e7a0a1f89a378b994fba3f"
HERE = Path(__file__).resolve().parent

# river's tests that use LogisticRegression (paths in the sdist), then the installed package's
# folders whose doctests run.
TEST_PATHS = [
    "tests/linear_model/test_glm.py",
    "tests/test_estimators.py",  # only the cases whose estimator contains a LogisticRegression
    "tests/multiclass",
    "tests/compat/test_sklearn.py",
    "tests/evaluate",
]
DOCTEST_PACKAGES = ["river.optim", "river.linear_model"]

# Tests taken out of the run, each with its reason. Ids as the plugin spells them
# (river_swap.report_id): sdist tests by node id, installed doctests from site-packages. The
# plugin fails the run if one of them matches no collected test (a stale list).
NETWORK_MUSIC = "needs the network: river.checks iterates datasets.Music, a RemoteDataset (downloads music.csv)"
_MULTIOUTPUT_CHECKS = [
    "check_learn_one", "check_pickling", "check_shuffle_features_no_impact", "check_emerging_features",
    "check_disappearing_features", "check_radically_disappearing_features", "check_no_state_aliasing_with_input",
    "check_clone_is_independent", "check_bounded_memory_growth",
]  # fmt: skip
PRIVATE_GLM = (
    "reads river's private internals: calls model._eval_gradient_one(x, y, 1) and model._raw_dot_one(x), "
    "reads and assigns model._weights (a utils.VectorDict), which are GLM's and not our class's"
)
DESELECTED: dict[str, str] = {
    "tests/evaluate/test_progressive_validation.py::test_progressive_val_score_anomaly_filter": (
        "needs the network: downloads datasets.CreditCard (a RemoteDataset); uses no LogisticRegression"
    ),
    "river/linear_model/ad_predictor.py::river.linear_model.ad_predictor.AdPredictor": (
        "needs the network: downloads datasets.CriteoAds (a RemoteDataset); uses no LogisticRegression"
    ),
    **{
        f"tests/test_estimators.py::test_check_estimator[{wrapper}(LogisticRegression):{check}]": NETWORK_MUSIC
        for wrapper, checks in [
            ("ClassifierChain", _MULTIOUTPUT_CHECKS),
            ("MonteCarloClassifierChain", [*_MULTIOUTPUT_CHECKS, "check_seeding_is_idempotent"]),
            ("PerOutputClassifier", _MULTIOUTPUT_CHECKS),
            ("ProbabilisticClassifierChain", _MULTIOUTPUT_CHECKS),
        ]
        for check in checks
    },
    **{
        f"tests/linear_model/test_glm.py::test_finite_differences[LogisticRegression - {optimizer} - {init}]": (
            PRIVATE_GLM
        )
        for optimizer in ["AdaBound", "AdaDelta", "AdaGrad", "AdaMax", "Adam", "AMSGrad", "RMSProp", "SGD"]
        for init in ["Zeros", "Normal"]
    },
}

# Tests of river's scikit-learn wrappers (no LogisticRegression in them) that fail with river's
# own classes too when narwhals refuses non-string column names in ``nw.from_numpy(schema=[0, 1])``
# (narwhals 2.29.0 does, raising "TypeError: cannot unpack non-iterable int object" from
# river.utils.dataframe.to_native_frame; river 0.26.1 was locked with narwhals 2.18.1, which takes
# them). Taken out only while the installed narwhals does so.
NARWHALS_INT_LABELS = (
    "fails with river's own classes too: the installed narwhals refuses integer column names "
    "(nw.from_numpy(..., schema=[0, 1]) in river.utils.dataframe.to_native_frame); uses no LogisticRegression"
)
NARWHALS_INT_LABEL_TESTS = [
    "tests/compat/test_sklearn.py::test_not_fitted_still_works_regression[StandardScaler | SKL2RiverRegressor]",
    *(
        "tests/compat/test_sklearn.py::test_not_fitted_still_works_classification"
        f"[{prefix}SKL2RiverClassifier-{n} classes]"
        for n in (2, 3)
        for prefix in ("", "StandardScaler | ")
    ),
    *(
        f"tests/compat/test_sklearn.py::test_sklearn_classifier_mini_batch_is_backend_agnostic[{backend}]"
        for backend in ["pandas", "pandas[nullable]", "pandas[pyarrow]", "polars", "pyarrow"]
    ),
]


def narwhals_refuses_integer_labels() -> bool:
    import narwhals.stable.v2 as nw
    import numpy as np

    try:
        nw.from_numpy(np.zeros((1, 2)), schema=[0, 1], backend="pandas")  # type: ignore[arg-type]
    except TypeError:
        return True
    return False


def deselected() -> dict[str, str]:
    """Every test taken out of this run, with its reason."""
    out = dict(DESELECTED)
    if narwhals_refuses_integer_labels():
        out.update(dict.fromkeys(NARWHALS_INT_LABEL_TESTS, NARWHALS_INT_LABELS))
    return out


# Skips (and xfails) reported by river's tests that are allowed, each with its reason; any other
# counts as a failure (e.g. the frame_backend cases skipped when polars is not installed).
ALLOWED_SKIPS: dict[str, str] = {}

# At least this many tests must run in each part (measured: these exact counts, with our class's
# seven _unit_test_params giving 343 of tests/test_estimators.py's cases; the compat file runs 10
# more where narwhals takes integer labels).
MIN_RAN = {
    "tests/linear_model/test_glm.py": 89,
    "tests/test_estimators.py": 1219,
    "tests/multiclass": 16,
    "tests/compat/test_sklearn.py": 22,
    "tests/evaluate": 10,
    "river/optim": 22,
    "river/linear_model": 8,
}


def _cache() -> Path:
    return user_cache_dir() / f"river-{RIVER_VERSION}"


def _download_sdist(into: Path) -> Path:
    """Download river's sdist with pip into ``into``; fail the test with pip's output if it
    cannot. ``--no-binary river`` (not ``:all:``, which would build river's build backend,
    maturin, from source: ~9 minutes) keeps pip from taking the wheel."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "river",
               f"river=={RIVER_VERSION}", "-d", str(into)]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"downloading river's sdist timed out: {' '.join(command)}\n{error.stderr!r}")
    tarballs = sorted(into.glob(f"river-{RIVER_VERSION}.tar.gz"))
    if done.returncode != 0 or not tarballs:
        pytest.fail(
            f"could not download river {RIVER_VERSION}'s sdist, which holds the tests this runs "
            f"(exit {done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    digest = hashlib.sha256(tarballs[0].read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        pytest.fail(f"river's sdist has sha256 {digest}, not the pinned {SDIST_SHA256}")
    return tarballs[0]


def _extract(tarball: Path, into: Path) -> None:
    """Extract the sdist's tests/, conftest.py, pyproject.toml and LICENSE (never river/)."""
    top = f"river-{RIVER_VERSION}/"
    wanted = ("tests/", "conftest.py", "pyproject.toml", "LICENSE")
    with tarfile.open(tarball) as archive:
        members = []
        for member in archive.getmembers():
            name = member.name.removeprefix(top)
            if member.name.startswith(top) and (name in wanted or name.startswith(wanted[0])):
                member.name = name
                members.append(member)
        archive.extractall(into, members=members, filter="data")


@pytest.fixture(scope="module")
def river_tests() -> Path:
    """The folder holding river's extracted tests, downloading the sdist the first time."""
    root = _cache() / "sdist"
    if (root / "COMPLETE").exists():
        return root
    _cache().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=_cache()) as scratch:
        work = Path(scratch)
        tarball = _download_sdist(work / "download")
        _extract(tarball, work / "sdist")
        (work / "sdist" / "COMPLETE").write_text(SDIST_SHA256 + "\n")
        shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(work / "sdist", root)
        except OSError:  # another process put it there first
            if not (root / "COMPLETE").exists():
                raise
    return root


def _doctest_dirs() -> list[str]:
    import importlib

    return [str(Path(str(importlib.import_module(name).__file__)).parent) for name in DOCTEST_PACKAGES]


def river_suite_command(root: Path, report: Path) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-c", str(root / "pyproject.toml"), "--rootdir", str(root),
               "-p", "river_swap", "-p", "no:cacheprovider", "--color=no", "-q",
               f"--river-swap-report={report}", "--river-swap-only-logreg-estimators"]  # fmt: skip
    command += [f"--river-swap-deselect={test_id}" for test_id in deselected()]
    return command + TEST_PATHS + _doctest_dirs()


@pytest.fixture(scope="module")
def river_run(river_tests: Path) -> Iterator[dict[str, Any]]:
    """Run river's tests with the swap; yield the plugin's report (plus the run's seconds)."""
    report = _cache() / "last-run.json"
    log = _cache() / "last-run.log"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTEST_ADDOPTS", None)
    command = river_suite_command(river_tests, report)
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=river_tests, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    seconds = time.monotonic() - start
    if not report.exists():
        pytest.fail(f"river's tests wrote no report (exit {done.returncode}); see {log}:\n{log.read_text()[-5000:]}")
    state = json.loads(report.read_text())
    state["seconds"] = seconds
    state["log"] = str(log)
    yield state


def test_river_is_the_version_whose_tests_run() -> None:
    import river

    assert river.__version__ == RIVER_VERSION, (
        f"river {river.__version__} is installed; its tests here are {RIVER_VERSION}'s"
    )


def test_the_swap_took_effect(river_run: dict[str, Any]) -> None:
    assert river_run["swap_ok"], f"the plugin did not confirm the swap; see {river_run['log']}"
    assert river_run["original_instantiated_in"] == [], (
        f"river's own LogisticRegression was built in: {river_run['original_instantiated_in']}"
    )


def test_the_deselected_tests_are_exactly_the_listed_ones(river_run: dict[str, Any]) -> None:
    assert sorted(river_run["deselected"]) == sorted(deselected())
    assert not set(river_run["results"]) & set(deselected())


def test_river_tests_pass_with_our_class(river_run: dict[str, Any]) -> None:
    assert not river_run["collection_errors"], f"river's tests failed to collect: {river_run['collection_errors']}"
    results = river_run["results"]
    bad = {name: r for name, r in results.items() if r["outcome"] in ("failed", "error")}
    unexplained = {
        name: r for name, r in results.items() if r["outcome"] in ("skipped", "xfailed") and name not in ALLOWED_SKIPS
    }
    lines = [f"{r['outcome'].upper()} ({r['when']}) {name}\n    {r['message'].splitlines()[0] if r['message'] else ''}"
             for name, r in sorted({**bad, **unexplained}.items())]  # fmt: skip
    assert not lines, (
        f"{len(bad)} of river's tests failed or errored and {len(unexplained)} were skipped without a listed "
        f"reason, with our LogisticRegression swapped in (full output: {river_run['log']}):\n" + "\n".join(lines)
    )
    assert river_run["exitstatus"] == 0, f"river's tests exited {river_run['exitstatus']}; see {river_run['log']}"


def test_enough_of_river_tests_ran(river_run: dict[str, Any]) -> None:
    ran = {part: 0 for part in MIN_RAN}
    for name in river_run["results"]:
        path = name.split("::")[0]
        for part in MIN_RAN:
            if path == part or path.startswith(part + "/"):
                ran[part] += 1
    short = {part: (ran[part], least) for part, least in MIN_RAN.items() if ran[part] < least}
    assert not short, f"fewer of river's tests ran than expected (ran, at least): {short}; see {river_run['log']}"
    assert river_run["estimators_kept"] >= MIN_RAN["tests/test_estimators.py"]
