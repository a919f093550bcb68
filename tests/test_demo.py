"""The front door: `stream-logreg demo` end to end against a real broker, and docker/."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from stream_logreg.cli import build_parser

ROOT = Path(__file__).parent.parent


def test_demo_runs_end_to_end_without_a_terminal(kafka_bootstrap, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    result = subprocess.run(
        [sys.executable, "-m", "stream_logreg.cli", "demo", "--records", "2000", "--rate", "1000",
         "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "\r" not in out  # plain progress lines, no terminal tricks
    assert re.search(r"^learned +[\d,]+ \| +[\d,]+ rec/s \| lag +[\d,]+ \| log loss", out, re.MULTILINE)
    assert "records produced   2,000" in out
    assert "records learned    1,992" in out  # a poison record every 250th
    assert "dead letters       8" in out
    png = tmp_path / "demo" / "learning-curve.png"
    assert f"learning curve     {png}" in out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_path = re.search(r"final model +(\S+)", out)
    assert model_path is not None
    from stream_logreg import LogisticRegression

    assert LogisticRegression.load(model_path.group(1)).n_steps == 1992


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
