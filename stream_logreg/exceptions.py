"""Every error stream_logreg raises on purpose; each message names the value, the cause and
the fix. Callers catch the one they mean::

    StreamLogregError
    ├── ModelFileError      (ValueError)    a model or checkpoint file that cannot be loaded
    ├── DataFileError       (ValueError)    a data file that cannot be read on
    ├── SchemaError         (ValueError)    a record that does not fit the schema
    ├── DecodeError         (ValueError)    a Kafka message that cannot be decoded (iter_kafka)
    ├── MarginError         (ValueError)    an example whose margin theta^T x + b overflows
    ├── BrokerError         (RuntimeError)  the local Kafka broker cannot be set up or run
    ├── UsageError                          a command line that cannot be carried out (exit 2)
    ├── ServiceStartError                   the consumer service cannot start as configured
    └── FolderLockedError                   another service holds the checkpoint folder

Bad arguments to the estimator itself raise the built-in TypeError and ValueError, as
river's and scikit-learn's do.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BrokerError",
    "DataFileError",
    "DecodeError",
    "FolderLockedError",
    "MarginError",
    "ModelFileError",
    "SchemaError",
    "ServiceStartError",
    "StreamLogregError",
    "UsageError",
]


class StreamLogregError(Exception):
    """Base class of every error raised on purpose by stream_logreg."""


class ModelFileError(StreamLogregError, ValueError):
    """A model or checkpoint file that cannot be loaded: truncated, corrupted, or foreign.

    >>> str(ModelFileError("m.json", "the checksum does not match", "restore it from a backup"))
    'cannot load m.json: the checksum does not match; restore it from a backup'
    """

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"cannot load {path}: {problem}; {fix}")


class DataFileError(StreamLogregError, ValueError):
    """A data file that cannot be read on: a repeated column name, a damaged or cut-short
    compressed stream, bytes that are not text. ``path`` names the file and ``line`` the
    last line (or row) read well, 0 if none.

    >>> str(DataFileError("d.csv.gz", 120, "the gzip stream ends early"))
    'd.csv.gz cannot be read after line 120: the gzip stream ends early'
    """

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        where = f"after line {line}" if line else "from its start"
        super().__init__(f"{path} cannot be read {where}: {problem}")


class SchemaError(StreamLogregError, ValueError):
    """A record that does not fit the schema (missing or bad label, bad value).

    ``kind`` is the reason without the record's own values (the field, not its value), for
    counting the records refused for the same reason.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or message


class DecodeError(StreamLogregError, ValueError):
    """A message that could not be decoded into (x, y); carries what a dead letter needs.

    Attributes: ``raw`` (the message bytes), ``topic``, ``partition``, ``offset``,
    ``reason`` (one sentence), ``key``.
    """

    def __init__(
        self, raw: bytes | None, reason: str, topic: str = "", partition: int = -1, offset: int = -1,
        key: bytes | None = None,
    ) -> None:  # fmt: skip
        self.raw, self.reason, self.key = raw, reason, key
        self.topic, self.partition, self.offset = topic, partition, offset
        super().__init__(f"cannot decode the record at {topic}[{partition}]@{offset}: {reason}")


class MarginError(StreamLogregError, ValueError):
    """An example whose margin theta^T x + b is not finite (its features are far too large);
    the model is left as it was.

    >>> MarginError({"a": 1e308}).x
    {'a': 1e+308}
    """

    def __init__(self, x: dict) -> None:
        self.x = x
        super().__init__(
            f"the margin theta^T x + b is not finite on x={x!r} (the features are too large); "
            "scale them, for example with river.preprocessing.StandardScaler"
        )


class BrokerError(StreamLogregError, RuntimeError):
    """The local broker could not be set up, started, or kept running."""


class UsageError(StreamLogregError):
    """A problem with the command line or its inputs: printed as one line, exit 2."""


class ServiceStartError(StreamLogregError):
    """The consumer service cannot start as configured (printed as one line, exit 2)."""


class FolderLockedError(StreamLogregError):
    """Another process holds the checkpoint folder."""
