"""A custom storage provider: every room's documents and files in one SQLite database.

Any class with the `StorageProvider` methods (and, for the room file area, the
`FileStore` methods) can replace `FsspecStorage`. SQLite makes the hard parts
easy: `compact` replaces the snapshot and clears the log in one transaction,
and each append is one committed transaction, so a crash never tears a record.

Run it to see a document survive a restart::

    python examples/sqlite_storage.py /tmp/rooms.sqlite

Serve rooms with it::

    from meshroom.storage import StorageExtension
    server = Server(extensions=[StorageExtension(SqliteStorage("rooms.sqlite"))])
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio
import anyio.to_thread
from pycrdt import Doc, Text

from meshroom import ChangePayload, LoadDocumentPayload, StorageError
from meshroom.storage import SnapshotSource, StorageExtension, validate_file_name

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT NOT NULL, path TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (room, path)
);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, path TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_doc ON log (room, path, seq);
CREATE TABLE IF NOT EXISTS files (
    room TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (room, name)
);
"""


class SqliteStorage:
    """Snapshots, update logs and room files in one SQLite file (WAL mode)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return func(self._db)
                except sqlite3.Error as error:
                    raise StorageError(f"sqlite: {error}", path=self.database) from error

        return await anyio.to_thread.run_sync(locked)

    @staticmethod
    def _check(room: str, path: str) -> None:
        if not room or not path:
            raise ValueError("room and document path must be non-empty")

    # -- StorageProvider -------------------------------------------------------------

    async def read_snapshot(self, room: str, path: str) -> bytes | None:
        self._check(room, path)
        row = await self._run(
            lambda db: db.execute(
                "SELECT data FROM snapshots WHERE room = ? AND path = ?", (room, path)
            ).fetchone()
        )
        return bytes(row[0]) if row else None

    async def write_snapshot(self, room: str, path: str, snapshot: bytes) -> None:
        self._check(room, path)
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (room, path, snapshot)
            )
        )

    async def append_updates(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        self._check(room, path)

        def append(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT INTO log (room, path, data) VALUES (?, ?, ?)",
                    [(room, path, bytes(u)) for u in updates],
                )

        await self._run(append)

    async def read_log(self, room: str, path: str) -> list[bytes]:
        self._check(room, path)
        rows = await self._run(
            lambda db: db.execute(
                "SELECT data FROM log WHERE room = ? AND path = ? ORDER BY seq", (room, path)
            ).fetchall()
        )
        return [bytes(row[0]) for row in rows]

    async def compact(self, room: str, path: str, snapshot: SnapshotSource) -> None:
        self._check(room, path)
        # Note where the log ends, then encode: the snapshot covers every row up to
        # `last`; rows appended while it is written have a larger seq and stay.
        last = await self._run(
            lambda db: db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM log WHERE room = ? AND path = ?", (room, path)
            ).fetchone()[0]
        )
        data = snapshot() if callable(snapshot) else snapshot

        def compact(db: sqlite3.Connection) -> None:
            with db:  # one transaction: the new snapshot and the shorter log, or neither
                db.execute("BEGIN")
                db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (room, path, data))
                db.execute(
                    "DELETE FROM log WHERE room = ? AND path = ? AND seq <= ?", (room, path, last)
                )

        await self._run(compact)

    async def list_rooms(self) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT room FROM snapshots UNION SELECT room FROM log "
                "UNION SELECT room FROM files ORDER BY room"
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def list_documents(self, room: str) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT path FROM snapshots WHERE room = ? UNION "
                "SELECT path FROM log WHERE room = ? ORDER BY path",
                (room, room),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def delete(self, room: str, path: str) -> None:
        self._check(room, path)

        def delete(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.execute("DELETE FROM snapshots WHERE room = ? AND path = ?", (room, path))
                db.execute("DELETE FROM log WHERE room = ? AND path = ?", (room, path))

        await self._run(delete)

    # -- FileStore -------------------------------------------------------------------

    async def list_files(self, room: str, prefix: str = "") -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT name FROM files WHERE room = ? ORDER BY name", (room,)
            ).fetchall()
        )
        return [row[0] for row in rows if row[0].startswith(prefix)]

    async def read_file(self, room: str, name: str) -> bytes:
        name = validate_file_name(name)
        row = await self._run(
            lambda db: db.execute(
                "SELECT data FROM files WHERE room = ? AND name = ?", (room, name)
            ).fetchone()
        )
        if row is None:
            raise FileNotFoundError(f"no file {name!r} in room {room!r}")
        return bytes(row[0])

    async def write_file(self, room: str, name: str, data: bytes) -> None:
        name = validate_file_name(name)
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (room, name, bytes(data))
            )
        )

    async def delete_file(self, room: str, name: str) -> None:
        name = validate_file_name(name)
        deleted = await self._run(
            lambda db: (
                db.execute("DELETE FROM files WHERE room = ? AND name = ?", (room, name)).rowcount
            )
        )
        if not deleted:
            raise FileNotFoundError(f"no file {name!r} in room {room!r}")


async def _demo(database: str) -> None:
    storage = SqliteStorage(database)
    async with StorageExtension(storage) as extension:
        doc = Doc()
        await extension.on_load_document(LoadDocumentPayload("demo", "notes.md", doc))
        text = doc.get("body", type=Text)
        print(f"loaded: {str(text)!r}")
        before = doc.get_state()
        text += "edit. "
        update = doc.get_update(before)
        await extension.on_change(ChangePayload("demo", "notes.md", doc, update, origin=None))
    # Leaving the `async with` wrote the snapshot.
    storage.close()
    print(f"stored in {database}: run again to see the text grow")


if __name__ == "__main__":
    anyio.run(_demo, sys.argv[1] if len(sys.argv) > 1 else "rooms.sqlite")
