"""The Kafka path against a real broker: producer, iter_kafka, decoding, broker restarts."""

import itertools
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from kafka import KafkaProducer
from river import datasets, optim

from stream_logreg import LogisticRegression
from stream_logreg.broker import LocalKafka
from stream_logreg.cli import main
from stream_logreg.decode import DecodeError
from stream_logreg.sources import iter_kafka


def test_phishing_through_kafka_gives_the_same_model_as_the_file(kafka_bootstrap, topic, capsys):
    status = main(["produce", "--dataset", "phishing", "--topic", topic, "--bootstrap-servers", kafka_bootstrap])
    assert status == 0
    assert capsys.readouterr().out.strip() == f"sent 1250 records to {topic}; 1250 acknowledged"

    from_kafka = LogisticRegression(optim.SGD(0.1))
    offsets = []
    with iter_kafka(topic, kafka_bootstrap, target="label", consumer_timeout_ms=10_000) as source:
        for record in itertools.islice(source, 1250):
            from_kafka.learn_one(record.x, record.y)
            offsets.append((record.partition, record.offset))
    assert offsets == [(0, i) for i in range(1250)]

    from_file = LogisticRegression(optim.SGD(0.1))
    for x, y in datasets.Phishing():
        from_file.learn_one(x, y)
    assert from_kafka.weights == from_file.weights and from_kafka.intercept == from_file.intercept


POISON = [
    (b'{"a": 1.5, "label": 1}', None),
    (b'{"a": 1.5, "label": ', "invalid JSON"),
    (b'{"a": 2.0}', "the label field 'label' is missing"),
    (b'{"a": 2.0, "label": 7}', "the label 'label' has the value 7, which is not binary"),
    (b'{"a": NaN, "label": 1}', "invalid JSON"),
    (b'{"a": "nan", "label": 1}', "field 'a' has the value 'nan', which is not finite"),
    (b'{"a": "abc", "label": 0}', "field 'a' has the non-numeric value 'abc'"),
    (b'{"a": "", "label": 0}', None),  # an empty value: the feature is absent
    (b'{"a": null, "label": 0}', None),
    (b'{"a": [1, 2, 3], "label": 0}', None),  # a[0], a[1], a[2]
    (b'{"a": {"b": {"c": {"d": {"e": 1}}}}, "label": 0}', "field 'a.b.c.d' nests deeper than --max-depth 4"),
    (b"[1, 2]", "the JSON is a list, not an object"),
    (b'{"a": "-0.25", "label": "0"}', None),
]


def test_each_poison_record_raises_a_decode_error_with_its_offset_and_reason(kafka_bootstrap, topic):
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for value, _ in POISON:
        producer.send(topic, value=value, key=b"k")
    producer.flush()
    source = iter_kafka(topic, kafka_bootstrap, target="label", consumer_timeout_ms=10_000)
    seen: list[tuple[int, Any, Any, Any]] = []
    while len(seen) < len(POISON):
        try:
            record = next(source)
            seen.append((record.offset, None, record.x, record.y))
        except DecodeError as e:
            assert e.topic == topic and e.partition == 0 and e.key == b"k"
            seen.append((e.offset, e.reason, e.raw, None))
    source.close()
    assert [offset for offset, *_ in seen] == list(range(len(POISON)))
    for (offset, reason, payload, _), (raw, expected) in zip(seen, POISON, strict=True):
        if expected is None:
            assert reason is None and isinstance(payload, dict)
        else:
            assert expected in reason, (offset, reason)
            assert payload == raw  # the original bytes, for the dead-letter topic
    assert seen[0][2:] == ({"a": 1.5}, True) and seen[-1][2:] == ({"a": -0.25}, False)


@pytest.mark.kafka
def test_a_consumer_rides_out_a_broker_restart_without_loss_or_repeat(tmp_path, topic):
    with LocalKafka(data_dir=tmp_path / "kafka") as kafka:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        for i in range(1000):
            producer.send(topic, value=b'{"a": %d, "label": 1}' % i)
        producer.flush()
        producer.close()
        source = iter_kafka(topic, kafka.bootstrap_servers, target="label", consumer_timeout_ms=60_000)
        values = [int(record.x["a"]) for record in itertools.islice(source, 500)]

        restarted = threading.Event()

        def restart_then_produce() -> None:
            kafka.stop()
            kafka.start()
            restarted.set()
            again = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
            for i in range(1000, 1500):
                again.send(topic, value=b'{"a": %d, "label": 0}' % i)
            again.flush()
            again.close()

        worker = threading.Thread(target=restart_then_produce)
        worker.start()
        values += [int(record.x["a"]) for record in itertools.islice(source, 1000)]
        worker.join()
        source.close()
    assert restarted.is_set()
    assert values == list(range(1500))


def test_broker_cli_starts_reports_its_address_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_logreg.cli", "broker", "--data-dir", str(tmp_path / "b")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Kafka is ready at 127.0.0.1:")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert "stopping the broker" in process.stdout.read()


def test_produce_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["produce", str(tmp_path / "nope.csv"), "--topic", "t", "--bootstrap-servers", "127.0.0.1:1"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"stream-logreg produce: {tmp_path / 'nope.csv'} does not exist; check the path"
    )
    (tmp_path / "rows.csv").write_text("a,label\n1,0\n")
    assert main(["produce", str(tmp_path / "rows.csv"), "--topic", "t", "--bootstrap-servers", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stream-logreg produce: no Kafka broker answers at 127.0.0.1:1") and "\n" not in err


def test_produce_from_a_csv_file_with_keys(kafka_bootstrap, topic, tmp_path, capsys):
    (tmp_path / "rows.csv").write_text('id,a,label\r\nu1,"1.5",1\r\nu2,-2,0\r\n')
    args = ["produce", str(tmp_path / "rows.csv"), "--topic", topic, "--bootstrap-servers", kafka_bootstrap]
    assert main([*args, "--key", "id", "--partitions", "3"]) == 0
    assert "sent 2 records" in capsys.readouterr().out
    source = iter_kafka(topic, kafka_bootstrap, target="label", drop=["id"], consumer_timeout_ms=10_000)
    records = sorted(itertools.islice(source, 2), key=lambda r: r.key or b"")
    source.close()
    assert [(r.key, r.x, r.y) for r in records] == [(b"u1", {"a": 1.5}, True), (b"u2", {"a": -2.0}, False)]
    assert len(source.consumer.partitions_for_topic(topic)) == 3
