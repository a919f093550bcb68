"""Checkpoints: the model, its metrics and the next offset of every partition, on disk.

Each checkpoint is a model file (``LogisticRegression.load`` reads it) whose progress
holds the offsets, counters and metric state. Files are written atomically (temporary
file, fsync, rename) as ``checkpoint-<version>.json``; the newest ``keep`` are kept. A
file that cannot be loaded (truncated, failing its checksum, not JSON, a model without a
consumer's progress, ...) is skipped with a warning naming it and why, and the one before
it is used. Versions follow the newest valid checkpoint, never a stray file's name, and
only this lineage's older checkpoints are ever removed.

One service owns a folder at a time: :meth:`CheckpointStore.lock` takes an exclusive lock
(``flock`` on ``lock``, which holds the owner's PID).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from stream_logreg import LogisticRegression, ModelFileError
from stream_logreg.evaluate import ProgressiveMetrics
from stream_logreg.exceptions import FolderLockedError

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "StateStore",
]

log = logging.getLogger("consumers")
_NAME = re.compile(r"checkpoint-(\d{12,})\.json")
_PROGRESS = {"instance": str, "topic": str, "offsets": dict, "counters": dict, "metrics": dict}


@dataclass
class Checkpoint:
    """One loaded checkpoint."""

    path: Path | None  # None: not from a folder
    version: int
    model: LogisticRegression
    progress: dict[str, Any]


class StateStore(Protocol):
    """Where the service keeps its state, and who owns it: a checkpoint folder
    (CheckpointStore, at least once) or a compacted Kafka topic (consumers/state_topic.py,
    exactly once). ``key`` names the store's home; ``lock`` takes it for this process."""

    instance_id: str
    key: str

    def lock(self) -> None: ...
    def unlock(self) -> None: ...


class CheckpointStore:
    """The checkpoints in one folder, and this folder's instance id (used in commits)."""

    def __init__(self, folder: str | Path, keep: int = 3) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        id_file = self.folder / "instance-id"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex)
        self.instance_id = id_file.read_text().strip()
        # Names this folder on this host even after the folder is lost and made anew (the
        # instance id, kept inside it, is lost with it): commits carry it.
        where = f"{socket.gethostname()}:{self.folder.resolve()}"
        self.key = hashlib.sha256(where.encode()).hexdigest()[:12]
        self.version = 0  # of the newest valid checkpoint read or written
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Take the folder for this process; FolderLockedError naming the holder if taken."""
        file = (self.folder / "lock").open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise FolderLockedError(
                f"the checkpoint folder {self.folder} is in use by another service (PID {holder}); "
                "give each instance its own --checkpoint-dir"
            ) from None
        file.truncate(0)
        file.write(str(os.getpid()))
        file.flush()
        self._lock = file  # held until this process ends, or unlock()

    def unlock(self) -> None:
        """Let the folder go (a service that could not start)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def paths(self) -> list[tuple[int, Path]]:
        """(version, path) of every file named like a checkpoint, newest first."""
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.fullmatch(p.name))]
        return sorted(found, reverse=True)

    def load(self, path: Path, version: int) -> Checkpoint:
        """One checkpoint; ModelFileError naming the problem if it is not a usable one."""
        model, progress = LogisticRegression.load_with_progress(path)
        if progress is None:
            raise ModelFileError(path, "it holds a model but no consumer progress", "it is not a checkpoint")
        wrong = [key for key, kind in _PROGRESS.items() if not isinstance(progress.get(key), kind)]
        if wrong:
            raise ModelFileError(path, f"its progress lacks {', '.join(wrong)}", "it is not a consumer's checkpoint")
        try:
            ProgressiveMetrics.from_state(progress["metrics"])
            offsets = [(int(p), int(o)) for p, o in progress["offsets"].items()]
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"its progress is invalid ({e!r})", "it is not a checkpoint") from None
        if any(o < 0 for _, o in offsets):
            raise ModelFileError(path, "its progress holds a negative offset", "it is not a checkpoint")
        return Checkpoint(path, version, model, progress)

    def scan(self) -> tuple[Checkpoint | None, list[tuple[Path, str]]]:
        """The newest checkpoint that loads, and the newer files skipped with why."""
        skipped = []
        for version, path in self.paths():
            try:
                checkpoint = self.load(path, version)
            except ModelFileError as e:
                skipped.append((path, e.problem))
                continue
            return checkpoint, skipped
        return None, skipped

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that loads; the others are skipped with a warning."""
        checkpoint, skipped = self.scan()
        for path, problem in skipped:
            log.warning("skipping a damaged checkpoint: %s: %s", path, problem)
        if checkpoint is not None:
            self.version = max(self.version, checkpoint.version)
        return checkpoint

    def write(self, model: LogisticRegression, progress: dict[str, Any]) -> Checkpoint:
        """Write the next checkpoint durably, then drop all but the newest ``keep`` of this
        lineage (files numbered above it, damaged or foreign, are left for inspection).

        A folder deleted meanwhile is made anew (the model in hand is whole; logged as a
        warning) and taken again; an OSError when it cannot be."""
        try:
            return self._write(model, progress)
        except FileNotFoundError:
            log.warning("the checkpoint folder %s was deleted; making it anew", self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "instance-id").write_text(self.instance_id)
            try:
                self.lock()
            except FolderLockedError as e:  # another service took the new folder meanwhile
                raise OSError(str(e)) from None
            return self._write(model, progress)

    def _write(self, model: LogisticRegression, progress: dict[str, Any]) -> Checkpoint:
        version = self.version + 1
        path = self.folder / f"checkpoint-{version:012d}.json"
        model.save(path, progress={**progress, "version": version})
        self.version = version
        for _, old in [(v, p) for v, p in self.paths() if v <= version][self.keep :]:
            old.unlink(missing_ok=True)
        return Checkpoint(path, version, model, progress)
