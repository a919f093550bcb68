"""Streams of (x, y) from Python iterables, files (CSV, JSON lines, Parquet) and Kafka.

Files may be compressed (.gz, .bz2, .zst, by extension). Each source yields
``(x: dict[str, float], y: bool)`` like ``river.stream.iter_csv``, so it plugs into river's
tools too; a bad row raises SchemaError naming its line. Every source takes the record's
fields to features with :class:`~stream_logreg.features.Features`, given as ``features=``
(or its ``target`` and options as keywords); the file sources default to
``categorical="auto"``.

>>> list(iter_records([{"a": 1, "label": 0}, {"a": "2.5", "label": "1"}], target="label"))
[({'a': 1.0}, False), ({'a': 2.5}, True)]
>>> list(iter_records([{"device": {"os": "ios"}, "n": [1, 2], "label": 1}], "label", categorical="auto"))
[({'device.os=ios': 1.0, 'n[0]': 1.0, 'n[1]': 2.0}, True)]
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from stream_logreg.decode import DecodeError, SchemaError, decode_value, make_decoder
from stream_logreg.exceptions import DataFileError
from stream_logreg.features import Example, Features

__all__ = [
    "DATASETS",
    "KafkaRecord",
    "KafkaSource",
    "ReadPosition",
    "Row",
    "column_batches",
    "dataset_records",
    "dataset_rows",
    "file_format",
    "header",
    "iter_csv",
    "iter_jsonl",
    "iter_kafka",
    "iter_parquet",
    "iter_records",
    "read_errors",
    "read_rows",
]

FORMATS = (".csv", ".jsonl", ".parquet")
COMPRESSIONS = (".gz", ".bz2", ".zst")


class Row(NamedTuple):
    """One row of a file: its line (or row) number, and its fields or why it is malformed."""

    line: int
    record: dict[str, Any] | None
    error: str | None


def file_format(path: str | Path) -> tuple[str, str | None]:
    """(".csv" | ".jsonl" | ".parquet", compression or None) from the file name."""
    suffixes = Path(path).suffixes
    compression = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    if compression:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind not in FORMATS:
        raise ValueError(
            f"{path}: unknown format {''.join(Path(path).suffixes) or '(no extension)'}; "
            "use .csv, .jsonl or .parquet, optionally with .gz, .bz2 or .zst"
        )
    return kind, compression


class ReadPosition:
    """How far a reader has got in a file, for a progress bar: ``done`` of ``total`` (bytes
    of the file as stored, or rows of a Parquet file)."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0


class _Counted(io.RawIOBase):
    """A binary file that counts the bytes read from it into a ReadPosition."""

    def __init__(self, file: IO[bytes], position: ReadPosition) -> None:
        self.file, self.position = file, position

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.file.readinto(buffer)  # type: ignore[attr-defined]
        self.position.done += n or 0
        return n or 0

    def close(self) -> None:
        self.file.close()
        super().close()


def _open_binary(path: Path, compression: str | None, position: ReadPosition | None = None) -> Any:
    raw: Any = path.open("rb")
    if position is not None:
        position.done, position.total = 0, path.stat().st_size
        raw = io.BufferedReader(_Counted(raw, position))
    if compression == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == ".bz2":
        return bz2.BZ2File(raw, "rb")
    if compression == ".zst":
        return io.BufferedReader(_ZstdFrames(raw), buffer_size=1 << 16)
    return raw


class _ZstdFrames(io.RawIOBase):
    """A .zst file's frames decompressed one after another. Unlike zstandard's
    ``stream_reader``, which ends quietly where a cut-short file ends, it raises EOFError
    when the file ends inside a frame."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self.raw, self.new_frame = raw, zstandard.ZstdDecompressor().decompressobj
        self.frame, self.in_frame = self.new_frame(), False
        self.out, self.at = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.at == len(self.out):
            chunk = self.raw.read(1 << 16)
            if not chunk:
                if self.in_frame:
                    raise EOFError("the zstd stream ends inside a frame (the file is cut short)")
                return 0
            self.out, self.at = b"", 0
            while chunk:
                self.in_frame = True
                self.out += self.frame.decompress(chunk)
                chunk = b""
                if self.frame.eof:
                    chunk, self.frame, self.in_frame = self.frame.unused_data, self.new_frame(), False
        n = min(len(buffer), len(self.out) - self.at)
        buffer[:n] = memoryview(self.out)[self.at : self.at + n]
        self.at += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def read_errors() -> tuple[type[BaseException], ...]:
    """What a damaged file raises while it is read (a compressed stream, bytes, CSV)."""
    import zstandard

    return (OSError, EOFError, UnicodeDecodeError, csv.Error, zstandard.ZstdError)


def read_rows(path: str | Path, position: ReadPosition | None = None) -> Iterator[Row]:
    """The data rows of a file, in order, each with its line number or its problem.

    CSV: the first row is the header; quoted fields, CRLF line endings and a UTF-8 BOM are
    handled, blank lines are skipped, a row with the wrong number of fields is a Row with
    an error. JSON lines: one object per line. Parquet: the row number counts from 1.
    A header that repeats a name, or a file that cannot be read on (a damaged or cut-short
    compressed stream, bytes that are not UTF-8), raises :class:`DataFileError` naming the
    last line read well. ``position`` is kept up to date for a progress bar.
    """
    path = Path(path)
    kind, compression = file_format(path)
    if kind == ".parquet":
        yield from _parquet_rows(path, position)
        return
    last = [0]
    try:
        with _open_binary(path, compression, position) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            for row in _csv_rows(path, text) if kind == ".csv" else _jsonl_rows(text):
                last[0] = row.line
                yield row
    except read_errors() as e:
        raise DataFileError(path, last[0], f"{type(e).__name__}: {e}") from None


def _unique(path: Path, names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataFileError(path, 0, f"the header repeats the column {name!r}; give each column its own name")
        seen.add(name)
    return names


def _csv_rows(path: Path, text: IO[str]) -> Iterator[Row]:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    _unique(path, header)
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(header):
            problem = f"the row has the wrong number of fields ({len(fields)}; the header has {len(header)})"
            yield Row(reader.line_num, None, problem)
        else:
            yield Row(reader.line_num, dict(zip(header, fields, strict=True)), None)


def _jsonl_rows(text: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            yield Row(number, None, f"invalid JSON ({e})")
            continue
        if isinstance(record, dict):
            yield Row(number, record, None)
        else:
            yield Row(number, None, f"the line is not a JSON object (a JSON {type(record).__name__})")


def _parquet_rows(path: Path, position: ReadPosition | None) -> Iterator[Row]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    _unique(path, list(file.schema_arrow.names))
    if position is not None:
        position.done, position.total = 0, file.metadata.num_rows
    number = 0
    for batch in file.iter_batches(batch_size=8192):
        for record in batch.to_pylist():
            number += 1
            yield Row(number, record, None)
        if position is not None:
            position.done = number


def column_batches(path: str | Path, columns: list[str], position: ReadPosition | None = None) -> Iterator[Any]:
    """A CSV or Parquet file as pyarrow RecordBatches of the given columns (CSV: as float64)."""
    path = Path(path)
    kind, compression = file_format(path)
    if kind == ".parquet":
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        if position is not None:
            position.done, position.total = 0, file.metadata.num_rows
        for batch in file.iter_batches(batch_size=65536, columns=columns):
            if position is not None:
                position.done += batch.num_rows
            yield batch
        return
    import pyarrow as pa
    import pyarrow.csv as pv

    with _open_binary(path, compression, position) as raw:
        reader = pv.open_csv(
            raw,
            read_options=pv.ReadOptions(block_size=1 << 22),
            convert_options=pv.ConvertOptions(
                column_types={name: pa.float64() for name in columns}, include_columns=columns
            ),
        )
        yield from reader


def header(path: str | Path) -> list[str]:
    """The column names of a CSV or Parquet file; DataFileError if one repeats or the file
    cannot be read."""
    path = Path(path)
    kind, compression = file_format(path)
    if kind == ".parquet":
        import pyarrow.parquet as pq

        return _unique(path, list(pq.ParquetFile(path).schema_arrow.names))
    try:
        with _open_binary(path, compression) as raw:
            return _unique(path, next(csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")), []))
    except read_errors() as e:
        raise DataFileError(path, 0, f"{type(e).__name__}: {e}") from None


def _iter_file(path: str | Path, features: Features) -> Iterator[Example]:
    """(x, y) for each row; SchemaError naming the line of the first bad one."""
    for row in read_rows(path):
        if row.error is not None:
            raise SchemaError(f"{path}, line {row.line}: {row.error}")
        assert row.record is not None
        try:
            yield features.decode(row.record)
        except SchemaError as e:
            raise SchemaError(f"{path}, line {row.line}: {e}") from None


def _featurizer(target: str | Features, **options: Any) -> Features:
    """A :class:`Features`: ``target`` itself if it is one, else built from it and ``options``."""
    if isinstance(target, Features):
        if options:
            raise TypeError(f"pass either a Features or its options, not both (got {sorted(options)})")
        return target
    return Features(target, **options)


def iter_csv(path: str | Path, target: str | Features, **options: Any) -> Iterator[Example]:
    """Yield (x, y) for each row of a CSV file (numeric strings are parsed); ``options`` are
    :class:`Features`' (``categorical`` defaults to "auto")."""
    return _iter_file(path, _featurizer(target, **_files_default(target, options)))


def iter_jsonl(path: str | Path, target: str | Features, **options: Any) -> Iterator[Example]:
    """Yield (x, y) for each line of a JSON-lines file; ``options`` are :class:`Features`'
    (``categorical`` defaults to "auto")."""
    return _iter_file(path, _featurizer(target, **_files_default(target, options)))


def iter_parquet(path: str | Path, target: str | Features, **options: Any) -> Iterator[Example]:
    """Yield (x, y) for each row of a Parquet file (read with pyarrow); ``options`` are
    :class:`Features`' (``categorical`` defaults to "auto")."""
    return _iter_file(path, _featurizer(target, **_files_default(target, options)))


def _files_default(target: str | Features, options: dict[str, Any]) -> dict[str, Any]:
    return options if isinstance(target, Features) else {"categorical": "auto", **options}


def iter_records(records: Iterable[Mapping[str, Any]], target: str | Features, **options: Any) -> Iterator[Example]:
    """Yield (x, y) for each dict record; a bad record raises SchemaError naming it.
    ``options`` are :class:`Features`'."""
    features = _featurizer(target, **options)
    for number, record in enumerate(records):
        try:
            yield features.decode(record)
        except SchemaError as e:
            raise SchemaError(f"record {number}: {e}") from None


DATASETS = ("phishing", "bananas", "shuttle", "events")
EVENTS = 100_000  # the records of the "events" data set


def dataset_records(name: str, target: str) -> Iterator[dict[str, Any]]:
    """The rows of one of river's bundled data sets (:data:`DATASETS`) as dicts, with the
    label (0 or 1) under ``target``; "events" is :func:`stream_logreg.clicks.click_events`
    (100,000 generated click-like events of 5,000 users: nested, strings, lists, unscaled numbers).

    >>> next(dataset_records("bananas", "label"))
    {'1': 1.617466, '2': -0.919233, 'label': 0}
    """
    from river import datasets

    if name == "events":
        from stream_logreg.clicks import click_events

        yield from click_events(EVENTS, seed=0, users=5000, target=target)
        return

    loaders: dict[str, Any] = {"phishing": datasets.Phishing, "bananas": datasets.Bananas, "shuttle": datasets.Shuttle}
    for x, y in loaders[name]():
        yield {**x, target: int(y)}


def dataset_rows(name: str, target: str) -> Iterator[Row]:
    """A bundled data set's records as :func:`read_rows` gives a file's, numbered from 1."""
    return (Row(number, record, None) for number, record in enumerate(dataset_records(name, target), start=1))


class KafkaRecord(NamedTuple):
    """One decoded Kafka message."""

    x: dict[Hashable, float]
    y: bool
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None


class KafkaSource:
    """An iterator of :class:`KafkaRecord` over a topic, made by :func:`iter_kafka`.

    A message that cannot be decoded raises :class:`DecodeError` from ``next()``; the
    iterator stays usable, so the caller can dead-letter the message and go on. The
    underlying ``KafkaConsumer`` is ``.consumer`` (for commits, seeks, closing).
    """

    def __init__(self, consumer: Any, features: Features, decode: Any) -> None:
        self.consumer = consumer
        self._features = features
        self._decode = decode
        self._messages = iter(consumer)

    def __iter__(self) -> KafkaSource:
        return self

    def __next__(self) -> KafkaRecord:
        message = next(self._messages)
        where = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        try:
            x, y = decode_value(message.value, self._decode, self._features)
        except SchemaError as e:
            raise DecodeError(message.value, str(e), key=message.key, **where) from None
        return KafkaRecord(x, y, message.topic, message.partition, message.offset, message.timestamp, message.key)

    def close(self) -> None:
        """Close the consumer (without committing anything)."""
        self.consumer.close(autocommit=False)

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_kafka(
    topic: str | list[str],
    bootstrap_servers: str | list[str],
    target: str | Features,
    group_id: str | None = None,
    decoder: str = "json",
    header: list[str] | None = None,
    features: Iterable[str] | None = None,
    drop: Iterable[str] = (),
    categorical: Iterable[str] | str = (),
    hash_bits: int | None = None,
    hash_seed: int = 0,
    auto_offset_reset: str = "earliest",
    **consumer_options: Any,
) -> KafkaSource:
    """Consume a topic as a stream of decoded records (x, y, topic, partition, offset, ...).

    Offsets are never committed automatically (``enable_auto_commit=False``): committing
    is the caller's job, after whatever it learned is safely stored. ``decoder`` is
    "json" (orjson), "csv" (with ``header``) or "msgpack"; ``target`` (or a whole
    :class:`Features`), ``features``, ``drop``, ``categorical``, ``hash_bits`` and
    ``hash_seed`` are :class:`Features`' options. Every other
    keyword goes to ``kafka.KafkaConsumer`` as is: ``security_protocol``,
    ``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``, ``ssl_cafile``,
    ``ssl_certfile``, ``ssl_keyfile``, ``client_id``, ``max_poll_records``,
    ``fetch_max_bytes``, ``max_partition_fetch_bytes``, ``consumer_timeout_ms`` (stop
    iterating after that long without a message), and so on.
    """
    from kafka import KafkaConsumer

    featurizer = target if isinstance(target, Features) else Features(
        target, features, drop, categorical, hash_bits=hash_bits, hash_seed=hash_seed
    )  # fmt: skip
    decode = make_decoder(decoder, header)
    if consumer_options.get("enable_auto_commit"):
        raise ValueError("iter_kafka never auto-commits; commit offsets yourself once the model state is durable")
    consumer_options["enable_auto_commit"] = False
    topics = [topic] if isinstance(topic, str) else list(topic)
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        auto_offset_reset=auto_offset_reset,
        **consumer_options,
    )
    return KafkaSource(consumer, featurizer, decode)
