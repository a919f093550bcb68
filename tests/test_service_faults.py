"""The consumer service under faults and hostile input, against a real broker: no silent
model loss, no crash loop, a clear line and a non-zero status where it cannot go on."""

import hashlib
import json
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from kafka import KafkaConsumer

from stream_logreg import LogisticRegression
from stream_logreg.broker import free_port
from stream_logreg.cli import main

from test_service import (
    assert_exact,
    consume_command,
    latest,
    learned,
    produce,
    produce_slowly,
    records,
    start,
    wait_until,
)


def run(bootstrap: str, topic: str, group: str, folder: Path, *extra: str) -> tuple[int, str]:
    """Run the service until it stops by itself; (status, its log)."""
    process = start(bootstrap, topic, group, folder, *extra)
    status = process.wait(timeout=180)
    return status, folder.with_suffix(".log").read_text()


def values_of(data: list[dict]) -> list[bytes]:
    return [json.dumps(r).encode() for r in data]


def dead_letters(bootstrap: str, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, fetch_max_bytes=8 << 20,
                             max_partition_fetch_bytes=8 << 20)  # fmt: skip
    letters = []
    for letter in consumer:
        letters.append(letter)
        if len(letters) == expected:
            break
    consumer.close()
    return letters


def test_records_too_large_for_a_dead_letter_are_cut_and_never_stop_the_service(kafka_bootstrap, topic, tmp_path):
    data = records(300, seed=31)
    huge_string = json.dumps({"f0": "x" * 900_000, "label": 1}).encode()  # its reason would repeat the value
    not_json = b"\x00" * 1_000_000  # more than a dead letter may hold, and than --max-record-bytes below
    values = [*values_of(data[:100]), huge_string, *values_of(data[100:200]), not_json, *values_of(data[200:])]
    from kafka import KafkaProducer

    from stream_logreg.kafka_admin import ensure_topic

    ensure_topic(kafka_bootstrap, topic, 1)
    # Uncompressed: a compressed batch that expands past the limit is refused whole, undecoded
    # (the bomb test below); here each record reaches the service's own checks.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=2 << 20)
    sent = [producer.send(topic, value=value) for value in values]
    producer.flush()
    assert [future.get(timeout=30).offset for future in sent] == list(range(len(values)))  # the broker took all
    producer.close()
    folder, dead = tmp_path / "checkpoints", f"{topic}-dead"
    status, log = run(kafka_bootstrap, topic, "big", folder, "--dead-letter-topic", dead, "--idle-timeout", "3",
                      "--max-record-bytes", "950000")  # fmt: skip
    assert status == 0, log
    assert_exact(folder, data)
    letters = dead_letters(kafka_bootstrap, dead, 2)
    assert len(letters) == 2
    by_offset = {int(dict(letter.headers)["source_offset"]): letter for letter in letters}
    for offset, original in ((100, huge_string), (201, not_json)):
        headers = dict(by_offset[offset].headers)
        assert len(headers["reason"]) <= 512 and b"x" * 600 not in headers["reason"]
        assert headers["truncated"] == b"true" and int(headers["original_size"]) == len(original)
        assert headers["original_sha256"].decode() == hashlib.sha256(original).hexdigest()
        assert original.startswith(by_offset[offset].value) and len(by_offset[offset].value) == 900_000
    assert dict(by_offset[100].headers)["reason"].startswith(b"field 'f0' has the non-numeric value 'xxx")
    assert b"beyond --max-record-bytes 950,000; it was not decoded" in dict(by_offset[201].headers)["reason"]


def test_a_record_with_an_absurd_value_is_dead_lettered_naming_the_field(kafka_bootstrap, topic, tmp_path):
    data = records(1000, seed=32)
    absurd = b'{"f0": 1e300, "f1": 1e300, "f2": 0, "f3": 0, "f4": 0, "label": 1}'
    produce(kafka_bootstrap, topic, [*values_of(data[:500]), absurd, *values_of(data[500:])])
    folder, dead = tmp_path / "checkpoints", f"{topic}-dead"
    status, log = run(kafka_bootstrap, topic, "absurd", folder, "--dead-letter-topic", dead, "--idle-timeout", "3")
    assert status == 0, log
    assert_exact(folder, data)  # the model never saw it
    (letter,) = dead_letters(kafka_bootstrap, dead, 1)
    assert dict(letter.headers)["reason"].decode().startswith("field 'f0' has the value 1e+300, beyond the limit 1e+09")


def test_a_lost_checkpoint_folder_is_refused_at_restart_unless_reset_model(kafka_bootstrap, topic, tmp_path):
    data = records(1500, seed=33)
    produce(kafka_bootstrap, topic, values_of(data))
    folder = tmp_path / "checkpoints"
    status, _ = run(kafka_bootstrap, topic, "lost", folder, "--max-records", "1000", "--checkpoint-every", "250")
    assert status == 0
    shutil.rmtree(folder)  # the disk is lost; the group's offsets name its checkpoint
    status, log = run(kafka_bootstrap, topic, "lost", folder, "--idle-timeout", "3")
    assert status == 2
    (line,) = [line for line in log.splitlines() if line.startswith("stream-logreg consume: ")]
    assert "offset 1000 of partition 0 was committed with checkpoint" in line and "--reset-model" in line
    assert latest(folder) is None  # nothing was learned or checkpointed
    status, log = run(kafka_bootstrap, topic, "lost", folder, "--idle-timeout", "3", "--reset-model")
    assert status == 0, log
    assert_exact(folder, data[1000:])  # a fresh model from the committed offset, on purpose


def test_a_new_instance_with_its_own_folder_takes_over_committed_partitions(kafka_bootstrap, topic, tmp_path):
    """Not a lost folder: the commits were made with another folder's checkpoints."""
    data = records(4000, seed=42)
    keys = [str(i % 97).encode() for i in range(len(data))]
    produce(kafka_bootstrap, topic, values_of(data[:2000]), partitions=2, keys=keys[:2000])
    a, b = tmp_path / "a", tmp_path / "b"
    first = start(kafka_bootstrap, topic, "takeover", a, "--checkpoint-every", "100")
    wait_until(lambda: learned(a) == 2000)  # and committed
    second = start(kafka_bootstrap, topic, "takeover", b, "--checkpoint-every", "100", "--idle-timeout", "5")
    wait_until(lambda: b'"event": "assigned"' in b.with_suffix(".log").read_bytes())
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    produce(kafka_bootstrap, topic, values_of(data[2000:]), partitions=2, keys=keys[2000:])
    assert second.wait(timeout=180) == 0, b.with_suffix(".log").read_text()
    assert [learned(a), learned(b)] == [2000, 2000]


def test_a_checkpoint_folder_deleted_while_running_is_written_anew(kafka_bootstrap, topic, tmp_path):
    data = records(4000, seed=34)
    stream = produce_slowly(kafka_bootstrap, topic, values_of(data), rate=1000)
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "deleted", folder, "--checkpoint-every", "200", "--idle-timeout", "4")
    wait_until(lambda: learned(folder) >= 600)
    gone = tmp_path / "gone"
    folder.rename(gone)  # in one step (the service may be writing in it), then deleted
    shutil.rmtree(gone)
    stream.join()
    assert process.wait(timeout=180) == 0
    assert_exact(folder, data)
    assert f"the checkpoint folder {folder} was deleted; making it anew" in folder.with_suffix(".log").read_text()


def test_a_stray_checkpoint_name_does_not_hide_later_checkpoints(kafka_bootstrap, topic, tmp_path):
    data = records(1000, seed=35)
    produce(kafka_bootstrap, topic, values_of(data))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "checkpoint-999999999999.json").write_text("garbage")
    status, _ = run(kafka_bootstrap, topic, "stray", folder, "--max-records", "500", "--checkpoint-every", "100")
    assert status == 0
    status, log = run(kafka_bootstrap, topic, "stray", folder, "--idle-timeout", "3")
    assert status == 0, log
    assert_exact(folder, data)
    assert "skipping a damaged checkpoint: " in log and "checkpoint-999999999999.json" in log


def test_a_checkpoint_folder_of_another_topic_or_group_is_refused(kafka_bootstrap, topic, tmp_path):
    produce(kafka_bootstrap, topic, values_of(records(200, seed=36)))
    folder = tmp_path / "checkpoints"
    assert run(kafka_bootstrap, topic, "owner", folder, "--max-records", "100")[0] == 0
    status, log = run(kafka_bootstrap, f"{topic}-other", "owner", folder, "--idle-timeout", "3")
    assert status == 2
    assert f"holds the checkpoints of topic '{topic}', not '{topic}-other'" in log
    status, log = run(kafka_bootstrap, topic, "another-group", folder, "--idle-timeout", "3")
    assert status == 2 and "holds the checkpoints of group 'owner', not 'another-group'" in log


def test_a_second_instance_on_the_same_folder_is_refused_naming_the_holder(kafka_bootstrap, topic, tmp_path):
    produce(kafka_bootstrap, topic, values_of(records(200, seed=37)))
    folder = tmp_path / "checkpoints"
    first = start(kafka_bootstrap, topic, "shared", folder)
    wait_until(lambda: b'"event": "assigned"' in folder.with_suffix(".log").read_bytes())
    second = subprocess.run(consume_command(kafka_bootstrap, topic, "shared", folder), capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"stream-logreg consume: the checkpoint folder {folder} is in use by another service (PID {first.pid}); "
        "give each instance its own --checkpoint-dir"
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0


def checkpoint_like(folder: Path, version: int, text: str) -> None:
    (folder / f"checkpoint-{version:012d}.json").write_text(text)


def signed(payload_text: str) -> str:
    """A model document around ``payload_text`` whose checksum is right for that text."""
    digest = hashlib.sha256(payload_text.encode()).hexdigest()
    head = f'"format": "stream_logreg.model", "format_version": 1, "checksum": "sha256:{digest}"'
    return f'{{{head}, "payload": {payload_text}}}'


def test_damaged_checkpoints_are_skipped_with_their_reason_and_listed_by_inspect(
    kafka_bootstrap, topic, tmp_path, capsys
):
    data = records(1200, seed=38)
    produce(kafka_bootstrap, topic, values_of(data))
    folder = tmp_path / "checkpoints"
    status, _ = run(kafka_bootstrap, topic, "damaged", folder, "--max-records", "600", "--checkpoint-every", "200")
    assert status == 0
    newest = latest(folder)
    assert newest is not None
    payload = json.loads(newest.path.read_text())["payload"]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    nan = canonical.replace(f'"intercept":{json.dumps(payload["intercept"])}', '"intercept":NaN')
    optimizer = {**payload["params"]["optimizer"], "lr": {"scheduler": "constant", "learning_rate": -0.5}}
    bad_rate = json.dumps({**payload, "params": {**payload["params"], "optimizer": optimizer}},
                          sort_keys=True, separators=(",", ":"))  # fmt: skip
    endless = canonical.replace(f'"n_steps":{payload["n_steps"]}', '"n_steps":' + "9" * 5000)
    replay_model = tmp_path / "replayed.json"
    LogisticRegression().save(replay_model, progress={"source": "x.csv", "state": {}, "metrics": {}})
    damaged = {
        newest.version + 1: "[" * 100_000 + "]" * 100_000,  # deep nesting
        newest.version + 2: signed(nan),
        newest.version + 3: signed(endless),
        newest.version + 4: signed(bad_rate),
        newest.version + 5: replay_model.read_text(),
    }
    for version, text in damaged.items():
        checkpoint_like(folder, version, text)
    assert main(["inspect", str(folder)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("damaged ")]
    assert len(listed) == 5
    status, log = run(kafka_bootstrap, topic, "damaged", folder, "--idle-timeout", "3")
    assert status == 0, log
    assert_exact(folder, data)
    for version in damaged:
        assert f"checkpoint-{version:012d}.json" in log
    assert "learning_rate must be > 0.0, got -0.5" in log and "its progress lacks instance, topic" in log


def test_a_checkpoint_that_cannot_be_written_stops_the_service_with_one_line(kafka_bootstrap, topic, tmp_path):
    """As root, a folder cannot be made read-only by chmod; a file where the folder was
    makes every write fail with an OSError, as a read-only or full disk does."""
    data = records(3000, seed=39)
    produce(kafka_bootstrap, topic, values_of(data[:1500]))
    folder = tmp_path / "checkpoints"
    process = start(kafka_bootstrap, topic, "unwritable", folder, "--checkpoint-every", "200")
    wait_until(lambda: learned(folder) >= 1400)  # checkpointed at 1,400 (or at 1,500, by a rebalance)
    saved = tmp_path / "saved"
    folder.rename(saved)  # in one step, so the service writes its checkpoints there or nowhere
    folder.write_text("not a folder")
    produce(kafka_bootstrap, topic, values_of(data[1500:]))  # the next checkpoint cannot be written
    assert process.wait(timeout=120) == 1
    log = folder.with_suffix(".log").read_text()
    (line,) = [line for line in log.splitlines() if line.startswith("stream-logreg consume: ")]
    assert line.startswith(f"stream-logreg consume: cannot write a checkpoint in {folder}: ")
    assert "Traceback" not in log
    folder.unlink()
    saved.rename(folder)  # the disk is fixed: the restart goes on from the last checkpoint
    status, log = run(kafka_bootstrap, topic, "unwritable", folder, "--idle-timeout", "3")
    assert status == 0, log
    assert_exact(folder, data)


def listening_address(port: int) -> str:
    """The local address a TCP socket listens on at ``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return "none"


def test_metrics_bind_loopback_by_default_and_a_taken_port_is_one_line(kafka_bootstrap, topic, tmp_path):
    produce(kafka_bootstrap, topic, values_of(records(100, seed=40)))
    port = free_port()
    first = start(kafka_bootstrap, topic, "metrics-a", tmp_path / "a", port=port)

    def serving() -> bool:
        try:
            return b"stream_logreg_" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            return False

    wait_until(serving)
    assert listening_address(port) == "127.0.0.1"
    second = start(kafka_bootstrap, topic, "metrics-b", tmp_path / "b", port=port)
    assert second.wait(timeout=120) == 2
    log = (tmp_path / "b").with_suffix(".log").read_text()
    (line,) = [line for line in log.splitlines() if line.startswith("stream-logreg consume: ")]
    assert line == (
        f"stream-logreg consume: cannot serve metrics on 127.0.0.1:{port} (Address already in use); "
        "pick a free --metrics-port (0: none)"
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    third = start(kafka_bootstrap, topic, "metrics-c", tmp_path / "c", "--metrics-address", "0.0.0.0", port=port)
    wait_until(serving)
    assert listening_address(port) == "0.0.0.0"
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=60) == 0


def peak_resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def test_a_decompression_bomb_is_dead_lettered_without_being_expanded(kafka_bootstrap, topic, tmp_path):
    """A 200 MB record that zstd packs into a few kB: the service's peak resident memory
    stays within a few MB of the same service's on the same stream without it."""
    from kafka import KafkaProducer

    from stream_logreg.kafka_admin import ensure_topic

    data = records(2000, seed=41)
    peaks = []
    for name, bomb in (("plain", None), ("bomb", b" " * 200_000_000)):
        stream = f"{topic}-{name}"
        ensure_topic(kafka_bootstrap, stream, 1)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", compression_type="zstd",
                                 max_request_size=300_000_000)  # fmt: skip
        for i, value in enumerate(values_of(data)):
            producer.send(stream, value=value)
            if i == 1000 and bomb is not None:
                producer.flush()
                producer.send(stream, value=bomb)
                producer.flush()
        producer.flush()
        producer.close()
        del bomb
        folder, dead = tmp_path / name, f"{stream}-dead"
        process = start(kafka_bootstrap, stream, name, folder, "--dead-letter-topic", dead, "--checkpoint-every", "500")
        wait_until(lambda folder=folder: learned(folder) == 2000 and latest(folder) is not None)  # type: ignore[misc]
        peaks.append(peak_resident_mb(process.pid))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert_exact(folder, data)
    (letter,) = dead_letters(kafka_bootstrap, f"{topic}-bomb-dead", 1)
    reason = dict(letter.headers)["reason"].decode()
    assert "expands beyond" in reason and "--max-record-bytes" in reason and letter.value == b""
    print("peak resident MB, plain and with the bomb:", peaks)
    assert peaks[1] < peaks[0] + 16, peaks  # MB: the cap is 1 MiB a record


def test_a_record_whose_margin_overflows_is_dead_lettered_and_the_rest_learned(kafka_bootstrap, topic, tmp_path):
    from test_service import expected

    data = records(1000, seed=43)
    before, _ = expected(data[:500])
    huge = {"f0": 1e200, "f1": 0, "f2": 0, "f3": 0, "f4": 0}
    # A label against f0's weight: a full-size step makes that weight about -+1e198...
    data[500] = {**huge, "label": 0 if before.weights["f0"] > 0 else 1}
    values = values_of(data)
    values[501] = json.dumps({**huge, "label": 1}).encode()  # ...and this margin (1e198 x 1e200) overflows
    produce(kafka_bootstrap, topic, values)
    folder, dead = tmp_path / "checkpoints", f"{topic}-dead"
    status, log = run(kafka_bootstrap, topic, "margin", folder, "--dead-letter-topic", dead, "--idle-timeout", "3",
                      "--max-abs-value", "inf")  # fmt: skip
    assert status == 0, log
    (letter,) = dead_letters(kafka_bootstrap, dead, 1)
    assert dict(letter.headers)["source_offset"] == b"501"
    assert dict(letter.headers)["reason"].startswith(b"the margin theta^T x + b is not finite")
    assert_exact(folder, [record for i, record in enumerate(data) if i != 501])
