"""The front door: `stream-logreg demo` end to end against a real broker, and docker/."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stream_logreg.cli import build_parser

ROOT = Path(__file__).parent.parent


def stream_logreg_command() -> list[str]:
    """The installed ``stream-logreg`` console script (what a user types)."""
    script = Path(sys.executable).parent / "stream-logreg"
    return [str(script)] if script.exists() else [sys.executable, "-P", "-m", "stream_logreg.cli"]


def test_demo_runs_end_to_end_live_without_a_terminal(kafka_bootstrap, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    result = subprocess.run(
        [*stream_logreg_command(), "demo", "--records", "3000", "--rate", "500", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "\r" not in out and "\x1b" not in out  # plain progress lines, no terminal tricks
    lines = re.findall(r"^learned +([\d,]+) \| +[\d,-]+ rec/s \| lag +[\d,-]+ \| log loss", out, re.MULTILINE)
    learned = [int(n.replace(",", "")) for n in lines]
    # Live: the service owns the partition before the stream starts (6 s at 500/s), so the
    # count rises line by line instead of arriving all at once at the end.
    assert learned == sorted(learned) and learned[-1] == 2988, out
    assert len({n for n in learned if 0 < n < 2988}) >= 3, out
    assert "records produced   3,000" in out
    assert "records learned    2,988" in out  # a poison record every 250th
    assert "dead letters       12" in out
    png = tmp_path / "demo" / "learning-curve.png"
    assert f"learning curve     {png}" in out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_path = re.search(r"final model +(\S+)", out)
    assert model_path is not None
    from stream_logreg import LogisticRegression

    assert LogisticRegression.load(model_path.group(1)).n_steps == 2988
    assert list(tmp_path.iterdir()) == [tmp_path / "demo"]  # nothing else written where it ran


def test_the_events_demo_learns_nested_events_hashed_and_scaled(kafka_bootstrap, tmp_path):
    from consumers.checkpoints import CheckpointStore

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    result = subprocess.run(
        [*stream_logreg_command(), "demo", "--dataset", "events", "--records", "1500", "--rate", "1000", "--out",
         str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "records learned    1,494" in result.stdout and "dead letters       6" in result.stdout
    folder = next((tmp_path / "demo" / "checkpoints").iterdir())
    checkpoint = CheckpointStore(folder).latest()
    assert checkpoint is not None and checkpoint.model.n_steps == 1494
    assert all(isinstance(k, int) and 0 <= k < 2**18 for k in checkpoint.model.weights)  # hashed
    stats = checkpoint.progress["features"]["scaler"]["stats"]
    assert {"price", "dwell_ms"} <= set(stats) and stats["price"][0] > 1000  # standardized, counted
    sample = tmp_path / "demo" / "events-sample.jsonl"
    assert f"  name the weights   stream-logreg inspect {folder} --names-from {sample}" in result.stdout
    named = subprocess.run([*stream_logreg_command(), "inspect", str(folder), "--names-from", str(sample)],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert named.returncode == 0, named.stderr
    buckets = [line for line in named.stdout.splitlines() if "  bucket " in line]
    assert len(buckets) == 10 and sum("?" not in line for line in buckets) >= 8  # the sample names the top ones


def test_the_service_is_launched_from_the_installed_package_whatever_the_working_folder(tmp_path):
    """Run in a clone's root, ``python -m`` would import the source folder (without its
    compiled extensions) instead of the installed package; a decoy stands in for it."""
    from stream_logreg.demo import service_command

    for name in ("stream_logreg", "consumers"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            "raise ImportError('the decoy in the working folder was imported')"
        )
    plain = subprocess.run([sys.executable, "-m", "stream_logreg.cli", "consume", "--help"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert plain.returncode != 0 and "the decoy in the working folder was imported" in plain.stderr  # the decoy works
    launched = subprocess.run(service_command("--help"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stderr
    assert "--bootstrap-servers" in launched.stdout


def test_importing_a_source_folder_without_its_c_extensions_says_why_and_what_to_do(tmp_path):
    """Python imports the folder it runs in first: in a clone's root after `pip install .`,
    that is the source tree, whose C extensions are built only in the installed copy."""
    import shutil

    import stream_logreg

    shutil.copytree(Path(stream_logreg.__file__).parent, tmp_path / "stream_logreg",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))  # fmt: skip
    # as with a non-editable install: no editable-install finder to find the extensions elsewhere
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in f.__module__]; "
            "import stream_logreg")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: stream_logreg was imported from {tmp_path / 'stream_logreg'}, a source")
    assert last.endswith("run from another folder to use the installed package, or build them in place with "
                         "`pip install -e .`")  # fmt: skip


def test_compiled_kernels_are_cached_per_user_never_inside_the_package(tmp_path):
    import stream_logreg

    package = Path(stream_logreg.__file__).parent
    before = set(package.rglob("*.nbi"))
    learn = (
        "import pandas as pd; from stream_logreg import LogisticRegression; "
        "LogisticRegression().learn_many(pd.DataFrame({'a': [1.0]}), pd.Series([True]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["STREAM_LOGREG_CACHE"] = str(tmp_path / "user-cache")
    subprocess.run([sys.executable, "-c", learn], env=env, cwd=tmp_path, check=True, timeout=300)
    assert list((tmp_path / "user-cache" / "numba").rglob("_kernel.learn_dense*.nbi"))
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache-dir")  # numba's own setting wins
    subprocess.run([sys.executable, "-c", learn], env=env, cwd=tmp_path, check=True, timeout=300)
    assert list((tmp_path / "numba-cache-dir").rglob("_kernel.learn_dense*.nbi"))
    assert set(package.rglob("*.nbi")) == before


@pytest.mark.kafka
def test_the_demo_cleans_up_after_itself_and_keep_broker_says_how_to_stop_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}  # the demo's own broker
    temp, here = tmp_path / "tmp", tmp_path / "cwd"
    temp.mkdir()
    here.mkdir()
    env["TMPDIR"] = str(temp)

    def demo(*flags: str) -> str:
        result = subprocess.run([*stream_logreg_command(), "demo", "--records", "300", "--rate", "300", *flags],
                                capture_output=True, text=True, env=env, timeout=300, cwd=here,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    out = demo()
    output = re.search(r"^output folder: (\S+)$", out, re.MULTILINE)
    assert output is not None and Path(output.group(1)).parent == temp
    assert list(here.iterdir()) == [] and list(temp.iterdir()) == [Path(output.group(1))]  # the broker's data is gone
    out = demo("--keep-broker", "--out", output.group(1))  # a reused output folder works too
    kept = re.search(
        r"left running at \S+, PID (\d+)\n +stop it with: kill (\d+); then remove its data: rm -r (\S+)", out
    )
    assert kept is not None, out
    pid, data = int(kept.group(1)), Path(kept.group(3))
    assert kept.group(2) == kept.group(1) and data.is_dir()
    assert b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.2)
    assert not _running(pid)
    shutil.rmtree(data)


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_every_flag_of_every_command_shows_its_default_in_help():
    import argparse

    from stream_logreg.options import ShowDefaults

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, command in commands.choices.items():
        command.format_help()  # renders every %(default)s
        formatter = ShowDefaults(name)
        for action in command._actions:
            if not action.option_strings or action.required or action.nargs == 0:
                continue  # positionals, required flags, --help and on/off switches have no default to show
            assert "default" in formatter._get_help_string(action), f"{name} {action.option_strings[0]}"
            checked += 1
    assert checked > 30


def dockerfile_entrypoint() -> list[str]:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    match = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE)
    assert match is not None
    return json.loads(match.group(1))


def test_the_dockerfile_runs_the_service_as_a_non_root_user():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert dockerfile_entrypoint() == ["stream-logreg", "consume"]
    user = re.search(r"^USER (\S+)$", text, re.MULTILINE)
    assert user is not None and user.group(1) not in ("root", "0")
    assert "STREAM_LOGREG_METRICS_ADDRESS=0.0.0.0" in text  # reachable from outside the container


def test_every_compose_command_is_a_valid_stream_logreg_invocation():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    checked = 0
    for name, service in services.items():
        if "build" not in service:
            continue
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        argv = list(service.get("entrypoint") or dockerfile_entrypoint()) + list(service["command"])
        assert argv[0] == "stream-logreg", name
        build_parser().parse_args(argv[1:])  # exits (fails the test) on any flag the CLI does not know
        checked += 1
    assert checked == 2
    learner = services["learner"]
    assert "9108:9108" in learner["ports"]
    assert (
        any(volume.startswith("checkpoints:") for volume in learner["volumes"]) and "checkpoints" in compose["volumes"]
    )


def test_consume_flags_can_come_from_the_environment(monkeypatch):
    for flag, value in {"BOOTSTRAP_SERVERS": "kafka:9092", "TOPIC": "t", "GROUP_ID": "g", "TARGET": "y",
                        "CHECKPOINT_DIR": "/c", "CHECKPOINT_EVERY": "50"}.items():  # fmt: skip
        monkeypatch.setenv(f"STREAM_LOGREG_{flag}", value)
    args = build_parser().parse_args(["consume", "--topic", "from-the-command-line"])
    assert (args.bootstrap_servers, args.topic, args.checkpoint_every) == ("kafka:9092", "from-the-command-line", 50)
