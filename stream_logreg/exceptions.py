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
