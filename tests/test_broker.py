"""LocalKafka fails with one clear error, naming the cause, for each way it can fail."""

import socket

import pytest

from stream_logreg import broker
from stream_logreg.broker import BrokerError, LocalKafka


@pytest.mark.kafka  # needs the broker's jars
def test_missing_java_is_named_with_what_to_do(monkeypatch, tmp_path):
    broker.broker_classpath()  # the jars are there; only java goes missing
    real_which = broker.shutil.which
    monkeypatch.setattr(broker.shutil, "which", lambda tool: None if tool == "java" else real_which(tool))
    with pytest.raises(BrokerError, match=r"java was not found on the PATH.*KAFKA_BOOTSTRAP_SERVERS"):
        LocalKafka(data_dir=tmp_path).start()


def test_missing_maven_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(broker.shutil, "which", lambda tool: None)
    with pytest.raises(BrokerError, match="mvn was not found on the PATH"):
        broker.broker_classpath()


def test_a_maven_failure_shows_what_maven_said(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_LOGREG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BrokerError, match=r"Maven could not resolve Kafka 0\.0\.0-no-such-version's jars") as error:
        broker.broker_classpath("0.0.0-no-such-version")
    assert "kafka_2.13" in str(error.value)  # Maven's own words are included
    assert not (tmp_path / "cache" / "kafka-0.0.0-no-such-version" / "lib").exists()


@pytest.mark.kafka
def test_a_broker_that_dies_while_starting_reports_its_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kafka = LocalKafka(port=port, data_dir=tmp_path)
        with pytest.raises(BrokerError, match="the Kafka broker exited with status") as error:
            kafka.start()
    assert "Address already in use" in str(error.value) or "BindException" in str(error.value)


@pytest.mark.kafka
def test_files_are_removed_on_exit_unless_the_folder_was_given(tmp_path):
    with LocalKafka() as kafka:
        own = kafka.data_dir
        assert (own / "broker.log").exists()
    assert not own.exists()
    with LocalKafka(data_dir=tmp_path / "kept") as kafka:
        pass
    assert (tmp_path / "kept" / "broker.log").exists()
