"""The records waiting in a label join, in arrival order, in bounded memory: the newest in a
dict, the oldest spilled to an SQLite file once the dict holds more than ``memory_bytes``.

A join takes records in time order, removes them by key (their partner came) or from the
oldest end (their time ran out), so the spilled ones are always the oldest: the store is
the file's rows (ordered by a sequence number) followed by the dict's (insertion order).

SQLite, not RocksDB or LMDB: it is in Python's standard library (nothing to install), it
deletes by key and scans by sequence with one index, and it needs no size given in
advance (LMDB does). The file is scratch, rebuilt from the records if lost: SQLite's private
temporary database, without a journal or fsync, which SQLite unlinks as soon as it opens it,
so that not even a SIGKILL leaves it behind. It is made in the first writable folder of
$SQLITE_TMPDIR, $TMPDIR, /var/tmp, /usr/tmp, /tmp (SQLite's order). Memory: ``memory_bytes``,
SQLite's page cache (32 MB) and one batch of rows read back (:attr:`JoinStore.HEAD_ROWS`).

>>> store = JoinStore(memory_bytes=100)
>>> for i in range(10):
...     store.put(f"k{i}", float(i), b"x" * 20)
>>> store.spilled > 0, len(store)
(True, 10)
>>> store.pop("k0"), store.oldest()[:2]
((0.0, b'xxxxxxxxxxxxxxxxxxxx'), ('k1', 1.0))
>>> store.close()
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from stream_logreg.exceptions import StreamLogregError

__all__ = ["ENTRY_OVERHEAD", "JoinStore", "SpillError", "decode_event", "decode_label", "encode_event", "encode_label"]

ENTRY_OVERHEAD = 300  # bytes an entry costs beside its payload (key, tuple, float, bytes object, slot; measured)


class SpillError(StreamLogregError):
    """The spill file cannot be made, written or read (the disk is full, the folder is not
    writable): the message names the file and the fix."""


class JoinStore:
    """key (str) -> (time, payload bytes), oldest first; at most ``memory_bytes`` of them
    in memory (payload plus :data:`ENTRY_OVERHEAD` each), the rest in a temporary SQLite
    file, gone at :meth:`close` (or when the process ends).

    Three parts, oldest first: ``head`` (the file's oldest rows, read back a batch at a
    time, so that expiring from the oldest end costs no query per record), the file, and
    ``recent`` (the newest, in memory).

    ``log``, when set, is told of every change: ``log(key, (time, payload))`` for a put,
    ``log(key, None)`` for a record popped (the service writes them to a changelog topic)."""

    HEAD_ROWS = 4096

    def __init__(self, memory_bytes: int = 100 * 2**20) -> None:
        if not (isinstance(memory_bytes, int) and memory_bytes > 0):
            raise ValueError(f"the join's memory must be a number of bytes > 0, got {memory_bytes!r}")
        self.memory_bytes = memory_bytes
        # OrderedDict, not dict: a dict finds its first key by walking past every deleted one
        self.recent: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.recent_bytes = 0
        self.head: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.spilled = 0  # rows in the file
        self.next_seq = 0
        self.db: sqlite3.Connection | None = None
        self.log: Callable[[str, tuple[float, bytes] | None], None] | None = None

    def __len__(self) -> int:
        return len(self.recent) + len(self.head) + self.spilled

    def __contains__(self, key: str) -> bool:
        if key in self.recent or key in self.head:
            return True
        return self.spilled > 0 and self._sql("SELECT 1 FROM waiting WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, time: float, payload: bytes) -> None:
        """Add a record not in the store (the caller checks), newer than every one in it."""
        self.recent[key] = (time, payload)
        if self.log is not None:
            self.log(key, (time, payload))
        self.recent_bytes += len(payload) + ENTRY_OVERHEAD
        if self.recent_bytes > self.memory_bytes:
            self._spill()

    def pop(self, key: str) -> tuple[float, bytes] | None:
        """Remove and return a record's time and payload; None if it is not here."""
        found = self._pop(key)
        if found is not None and self.log is not None:
            self.log(key, None)
        return found

    def _pop(self, key: str) -> tuple[float, bytes] | None:
        found = self.recent.pop(key, None)
        if found is not None:
            self.recent_bytes -= len(found[1]) + ENTRY_OVERHEAD
            return found
        found = self.head.pop(key, None)
        if found is not None or self.spilled == 0:
            return found
        row = self._sql("DELETE FROM waiting WHERE key = ? RETURNING time, payload", (key,)).fetchone()
        if row is None:
            return None
        self.spilled -= 1
        return row[0], row[1]

    def oldest(self) -> tuple[str, float, bytes] | None:
        """The oldest record (key, time, payload), left in place; None when empty."""
        if not self.head and self.spilled:
            self._read_head()
        for part in (self.head, self.recent):
            if part:
                key, (time, payload) = next(iter(part.items()))
                return key, time, payload
        return None

    def disk_bytes(self) -> int:
        """The size of the spill file (it does not shrink; 0 before the first spill)."""
        if self.db is None:
            return 0
        (pages,), (size,) = self._sql("PRAGMA page_count").fetchone(), self._sql("PRAGMA page_size").fetchone()
        return int(pages * size)

    def close(self) -> None:
        """Drop the spill file; the store is empty afterwards."""
        if self.db is not None:
            self.db.close()
            self.db = None
        self.recent.clear()
        self.head.clear()
        self.recent_bytes = self.spilled = 0

    def _spill(self) -> None:
        """Move the oldest half of the memory's records to the file, in one transaction."""
        rows = []
        while self.recent_bytes > self.memory_bytes // 2:
            key, (time, payload) = next(iter(self.recent.items()))
            del self.recent[key]
            self.recent_bytes -= len(payload) + ENTRY_OVERHEAD
            rows.append((self.next_seq, key, time, payload))
            self.next_seq += 1
        db = self._open()
        with self._disk():
            db.execute("BEGIN")
            db.executemany("INSERT INTO waiting (seq, key, time, payload) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        self.spilled += len(rows)

    def _read_head(self) -> None:
        """Move the file's oldest rows (a batch) into ``head``."""
        oldest = "SELECT seq FROM waiting ORDER BY seq LIMIT ?"
        rows = self._sql(f"DELETE FROM waiting WHERE seq IN ({oldest}) RETURNING seq, key, time, payload",
                         (self.HEAD_ROWS,)).fetchall()  # fmt: skip
        rows.sort()  # RETURNING's order is not the table's
        self.head.update((key, (time, payload)) for _, key, time, payload in rows)
        self.spilled -= len(rows)

    def _sql(self, statement: str, parameters: tuple = ()) -> sqlite3.Cursor:
        db = self._open()
        with self._disk():
            return db.execute(statement, parameters)

    @contextlib.contextmanager
    def _disk(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as e:
            raise SpillError(
                f"the label join's spill file (a temporary file in {spill_folder()}) failed: {e}; free disk space "
                "there, point SQLITE_TMPDIR at a larger disk, or give the join more memory (--join-memory)"
            ) from None

    def _open(self) -> sqlite3.Connection:
        if self.db is None:
            with self._disk():
                self.db = self._create()
        return self.db

    def _create(self) -> sqlite3.Connection:
        db = sqlite3.connect("", isolation_level=None)  # "": a private temporary file, unlinked once open
        # Scratch: no journal, no fsync, and the file locked once (not around each statement).
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "cache_size=-32768"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE waiting (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, time REAL NOT NULL, "
                   "payload BLOB NOT NULL)")  # fmt: skip
        db.execute("CREATE UNIQUE INDEX waiting_by_key ON waiting (key)")
        return db


def spill_folder() -> str:
    """Where SQLite makes its temporary files: the first writable folder of its list."""
    for folder in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return "."


_HEAD = struct.Struct("<dI")  # the probability, the length of the names' JSON


def encode_event(x: dict[Any, float], proba: float) -> bytes:
    """An event's features and its predicted probability as bytes: the names (str or int)
    as JSON, the values as float64, bit for bit.

    >>> decode_event(encode_event({"a": 0.1, 7: -2.0}, 0.25))
    ({'a': 0.1, 7: -2.0}, 0.25)
    """
    names = orjson.dumps(list(x))
    return _HEAD.pack(proba, len(names)) + names + array("d", x.values()).tobytes()


def decode_event(payload: bytes) -> tuple[dict[Any, float], float]:
    """The features and probability :func:`encode_event` encoded."""
    proba, size = _HEAD.unpack_from(payload)
    start = _HEAD.size + size
    names = orjson.loads(payload[_HEAD.size : start])
    values = array("d")
    values.frombytes(payload[start:])
    return dict(zip(names, values, strict=True)), proba


def encode_label(y: bool, where: Any) -> bytes:
    """A label and where it came from (a line, an offset) as bytes.

    >>> decode_label(encode_label(True, 17))
    (True, 17)
    """
    return orjson.dumps([y, where])


def decode_label(payload: bytes) -> tuple[bool, Any]:
    """The label and its origin :func:`encode_label` encoded."""
    y, where = orjson.loads(payload)
    return y, where
