"""Shared fixtures. Kafka tests run against a real broker, found in this order:
KAFKA_BOOTSTRAP_SERVERS (an existing cluster), else a testcontainers Kafka container if a
Docker engine answers, else a LocalKafka JVM started from Maven jars. One per session.

Every test that needs a broker carries the ``kafka`` marker (those that take the
``kafka_bootstrap`` fixture get it here), so ``pytest -m "not kafka"`` runs the others
without Java or Maven."""

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()  # type: ignore[attr-defined]
        return True
    except Exception:
        return False


@pytest.fixture(autouse=True)
def _stop_leftover_services() -> Iterator[None]:
    from processes import stop_leftovers

    yield
    stop_leftovers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        from stream_logreg.broker import LocalKafka

        with LocalKafka() as kafka:
            yield kafka.bootstrap_servers


@pytest.fixture
def topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"
