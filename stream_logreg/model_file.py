"""Versioned, checksummed JSON documents written atomically; never pickle.

A document on disk is one JSON object::

    {"format": "stream_logreg.model", "format_version": 1,
     "checksum": "sha256:<hex of the canonical JSON of payload>", "payload": {...}}

Floats are written with ``repr`` and parsed back by ``float``, so they round-trip bit for
bit. The file is written to a temporary name in the same folder, flushed, fsynced and then
renamed over the target, so a reader sees either the old or the new file, never half of one.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "doc.json")
>>> write_document(path, "example", 1, {"x": 0.1})
>>> read_document(path, "example", 1)
{'x': 0.1}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from stream_logreg.exceptions import ModelFileError

__all__ = [
    "read_document",
    "write_document",
]


def _checksum(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def write_document(path: str | Path, kind: str, version: int, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically, wrapped with its format, version and checksum."""
    document = {
        "format": kind,
        "format_version": version,
        "checksum": _checksum(payload),
        "payload": payload,
    }
    text = json.dumps(document, allow_nan=False, indent=1)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_document(path: str | Path, kind: str, version: int | tuple[int, ...]) -> dict[str, Any]:
    """Read and verify a document written by :func:`write_document`; return its payload.

    Raises :class:`ModelFileError` naming the path and the problem when the file is missing,
    truncated, not JSON, of another format or version (``version``: the one, or the ones,
    this release reads), or fails its checksum.
    """
    versions = version if isinstance(version, tuple) else (version,)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ModelFileError(path, f"the file cannot be read ({e.strerror})", "check the path") from None
    try:
        document = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # not JSON, cut short, NaN, nested too deep, an endless integer
        raise ModelFileError(
            path,
            f"the file is truncated or is not JSON ({len(raw)} bytes; {str(e)[:80] or type(e).__name__})",
            f"it is not a complete {kind} file; restore it or save the model again",
        ) from None
    if not isinstance(document, dict) or document.get("format") != kind:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ModelFileError(
            path,
            f"the file is not a {kind} file (format: {found!r})",
            f"pass a file written by stream_logreg's save() for {kind}",
        )
    if document.get("format_version") not in versions:
        raise ModelFileError(
            path,
            f"unknown format version {document.get('format_version')!r} "
            f"(this release reads {' and '.join(map(str, versions))})",
            "load it with the stream_logreg release that wrote it",
        )
    payload = document.get("payload")
    if not isinstance(payload, dict) or document.get("checksum") != _checksum(payload):
        raise ModelFileError(
            path,
            "the checksum does not match the content (the file was changed or damaged)",
            "restore the file from a backup or save the model again",
        )
    return payload
