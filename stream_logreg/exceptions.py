"""The project's exceptions: each message names the value, the cause and the fix."""

from __future__ import annotations

from pathlib import Path


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
