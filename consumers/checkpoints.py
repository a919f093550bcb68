"""Checkpoints: the model, its metrics and the next offset of every partition, on disk.

Each checkpoint is a model file (``LogisticRegression.load`` reads it) whose progress
holds the offsets, counters and metric state. Files are written atomically (temporary
file, fsync, rename) as ``checkpoint-<version>.json``; the newest ``keep`` are kept. A
file that is truncated or fails its checksum is skipped with a warning, and the one
before it is used.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_logreg import LogisticRegression, ModelFileError

log = logging.getLogger("consumers")
_NAME = re.compile(r"checkpoint-(\d{12})\.json")


@dataclass
class Checkpoint:
    """One loaded checkpoint."""

    path: Path
    version: int
    model: LogisticRegression
    progress: dict[str, Any]


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

    def paths(self) -> list[tuple[int, Path]]:
        """(version, path) of every checkpoint file, newest first."""
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.fullmatch(p.name))]
        return sorted(found, reverse=True)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that loads; damaged ones are skipped with a warning."""
        for version, path in self.paths():
            try:
                model, progress = LogisticRegression.load_with_progress(path)
            except ModelFileError as e:
                log.warning("skipping a damaged checkpoint: %s", e)
                continue
            if progress is None:
                log.warning("skipping %s: it holds a model but no consumer progress", path)
                continue
            return Checkpoint(path, version, model, progress)
        return None

    def write(self, model: LogisticRegression, progress: dict[str, Any]) -> Checkpoint:
        """Write the next checkpoint durably, then drop all but the newest ``keep``."""
        existing = self.paths()
        version = existing[0][0] + 1 if existing else 1
        path = self.folder / f"checkpoint-{version:012d}.json"
        model.save(path, progress={**progress, "version": version})
        for _, old in self.paths()[self.keep :]:
            old.unlink(missing_ok=True)
        return Checkpoint(path, version, model, progress)
