"""The SQLite storage: one table in WAL mode, safe for many threads and processes at once.

Each thread has its own connection; writes run inside ``BEGIN IMMEDIATE`` (a write of one
statement is its own transaction) with busy/locked retried under backoff. A forked child never
touches the parent's connections (it opens its own), and a corrupt or replaced database file is
moved aside once and started afresh.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from posthog_pandas.cache._fork import reset_after_fork
from posthog_pandas.cache.files import cache_error, chmod_private, private_file
from posthog_pandas.cache.info import ResourceInfo, utc
from posthog_pandas.cache.storage import CorruptRow, Row

__all__ = ["DB_NAME", "SQLiteStorage"]

logger = logging.getLogger("posthog_pandas.cache")

DB_NAME = "cache.sqlite3"
#: Bump when the table layout changes; a database with another version is emptied.
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 65_536  # SQLite's largest page size; the cache holds mostly large bodies
WAL_BYTES = 16 << 20
WRITE_ATTEMPTS = 12

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26
_SCHEMA = """
CREATE TABLE entries (
    kind TEXT NOT NULL,          -- 'page', 'json' or 'frame'
    key TEXT NOT NULL,
    resource TEXT NOT NULL,
    url TEXT NOT NULL,           -- redacted, for display only
    created REAL NOT NULL,
    expires REAL NOT NULL,
    size INTEGER NOT NULL,       -- bytes on disk: compressed body, or the Parquet file
    raw_size INTEGER NOT NULL,   -- uncompressed body length, checked on read
    body BLOB NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX entries_resource ON entries (resource);
CREATE INDEX entries_created ON entries (created);
"""

T = TypeVar("T")

# Connections inherited through fork(): never used or closed in the child (SQLite forbids
# carrying a connection across fork), just kept alive so garbage collection cannot close them.
_FORK_ORPHANS: list[sqlite3.Connection] = []


def _errcode(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class _Opened(NamedTuple):
    """A connection this storage opened, with the process and thread that opened it."""

    pid: int
    thread: threading.Thread
    conn: sqlite3.Connection


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0
    generation: int = -1
    ident: tuple[int, int] = (0, 0)


class SQLiteStorage:
    """Rows in ``<directory>/cache.sqlite3`` (0600), the directory being prepared by the caller.

    Raises:
        CacheError: the database cannot be created or read at open.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self._local = _Local()
        self._lock = threading.Lock()
        self._generation = 0
        # Every connection opened, with its process and thread: close() closes them all, and a
        # new connection closes those whose thread has ended (a pull's short-lived threads would
        # otherwise leave one open connection, its page cache and its files behind per pull).
        self._conns: list[_Opened] = []
        reset_after_fork(self)
        try:
            private_file(self.path)
            self._run(self._check_db, write=False)
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise cache_error(self.directory, exc) from exc

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    # --- the Storage protocol ---

    def read(self, kind: str, key: str) -> Row | None:
        try:
            raw = self._run(
                lambda c: c.execute(
                    "SELECT resource, url, created, expires, size, raw_size, body FROM entries"
                    " WHERE kind = ? AND key = ?",
                    (kind, key),
                ).fetchone(),
                write=False,
            )
        except sqlite3.Error as exc:
            raise cache_error(self.directory, exc) from exc
        return None if raw is None else _row(kind, key, raw)

    def write(self, row: Row) -> None:
        values = (
            row.kind,
            row.key,
            row.resource,
            row.url,
            row.created,
            row.expires,
            row.size,
            row.raw_size,
            row.body,
        )
        self._checked(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO entries (kind, key, resource, url, created, expires,"
                " size, raw_size, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            ),
            write=True,
            one_statement=True,
        )

    def delete(self, key: str) -> None:
        self._checked(lambda c: c.execute("DELETE FROM entries WHERE key = ?", (key,)), write=True)

    def discard(self, kind: str, key: str) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self._run(
                lambda c: c.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key)),
                write=True,
            )

    def remove(
        self, *, resource: str | None = None, created_before: float | None = None
    ) -> list[tuple[str, str]]:
        where: list[str] = ["1"]
        args: list[Any] = []
        if resource is not None:
            where.append("resource = ?")
            args.append(resource)
        if created_before is not None:
            where.append("created < ?")
            args.append(created_before)
        condition = " AND ".join(where)

        def remove(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            gone = conn.execute(f"SELECT kind, key FROM entries WHERE {condition}", args)
            removed = [(str(kind), str(key)) for kind, key in gone.fetchall()]
            conn.execute(f"DELETE FROM entries WHERE {condition}", args)
            return removed

        removed = self._checked(remove, write=True)
        if resource is None and created_before is None:
            self._remove_corrupt_copies()
        self._compact()
        return removed

    def summary(self, now: float) -> dict[str, ResourceInfo]:
        rows = self._checked(
            lambda c: c.execute(
                "SELECT resource, count(*), sum(expires <= ?), sum(size), min(created),"
                " max(created) FROM entries GROUP BY resource",
                (now,),
            ).fetchall(),
            write=False,
        )
        return {
            str(name): ResourceInfo(int(n), int(expired), int(size), utc(lo), utc(hi))
            for name, n, expired, size, lo, hi in rows
        }

    def bytes_used(self) -> int:
        total = 0
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(path).st_size
        return total

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            mine = [o.conn for o in self._conns if o.pid == os.getpid()]
            self._conns = []
        for conn in mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # --- housekeeping ---

    def _remove_corrupt_copies(self) -> None:
        """After a full clear: the databases earlier recoveries moved aside."""
        for path in self.directory.iterdir():
            if ".corrupt-" in path.name:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _compact(self) -> None:
        """Give freed pages back to the filesystem (auto_vacuum=INCREMENTAL), best effort."""
        with contextlib.suppress(sqlite3.Error):
            conn = self._conn()
            conn.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page only
            conn.execute("PRAGMA busy_timeout = 0")  # shrink the WAL only if nobody reads now
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    # --- connections ---

    def _checked(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, one_statement: bool = False
    ) -> T:
        """:meth:`_run`, with storage failures (disk full, permissions) as CacheError."""
        try:
            return self._run(fn, write=write, one_statement=one_statement)
        except (sqlite3.Error, OSError) as exc:
            raise cache_error(self.directory, exc) from exc

    def _run(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, one_statement: bool = False
    ) -> T:
        """Run ``fn`` on this thread's connection (inside BEGIN IMMEDIATE when writing),
        retrying busy/locked with backoff and recovering once from a corrupt database.

        A write of `one_statement` runs without BEGIN/COMMIT: SQLite makes a lone statement
        its own transaction, just as atomic, and each statement less is one wait less for the
        GIL, which the threads building frames hold; the next page request waits for a page's
        commit (docs/design/performance.md)."""
        delay, recovered = 0.005, False
        for attempt in range(WRITE_ATTEMPTS):
            conn: sqlite3.Connection | None = None
            try:
                conn = self._conn()
                transaction = write and not one_statement
                if transaction:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    if transaction:
                        conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.rollback()
                    raise
                return result
            except sqlite3.DatabaseError as exc:
                code = _errcode(exc)
                if code in (_SQLITE_BUSY, _SQLITE_LOCKED) and attempt < WRITE_ATTEMPTS - 1:
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) and not recovered:
                    self._recover(exc)
                    recovered = True
                    continue
                raise
        raise AssertionError("unreachable")

    def _adopt_after_fork(self) -> None:
        """In a forked child: park the parent's connections; a fresh lock (the parent's may have
        been held by another thread at fork time)."""
        _FORK_ORPHANS.extend(o.conn for o in self._conns)
        self._conns = []
        self._lock = threading.Lock()
        self._generation += 1

    def _conn(self) -> sqlite3.Connection:
        local, pid = self._local, os.getpid()
        if local.conn is not None:
            if local.pid == pid and local.generation == self._generation:
                return local.conn
            if local.pid == pid:
                with contextlib.suppress(sqlite3.Error):
                    local.conn.close()
            else:
                _FORK_ORPHANS.append(local.conn)
            local.conn = None
        generation = self._generation
        private_file(self.path)
        local.ident = self._db_ident()  # what _recover may move aside if this file is corrupt
        conn = self._connect()
        local.conn, local.pid, local.generation = conn, pid, generation
        with self._lock:
            kept: list[_Opened] = []
            ended: list[sqlite3.Connection] = []
            for opened in self._conns:
                if opened.pid == pid and not opened.thread.is_alive():
                    ended.append(opened.conn)
                else:
                    kept.append(opened)
            self._conns = [*kept, _Opened(pid, threading.current_thread(), conn)]
        for orphan in ended:  # its thread has ended, so nothing can be using it
            with contextlib.suppress(sqlite3.Error):
                orphan.close()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # only so close() may close it; one thread uses it
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # These two take effect only on a new, empty file. 64 kB pages: a large page body
            # takes far fewer WAL frames than with 4 kB pages; incremental auto-vacuum lets
            # clear() give space back.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")  # trim the WAL to 16 MB
            # Checkpoint every 16 MB of WAL whatever the page size (older caches keep 4 kB).
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BYTES // page_size}")
            # With WAL, NORMAL may lose the last commit on power loss but never corrupts.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        for suffix in ("-wal", "-shm"):
            chmod_private(Path(f"{self.path}{suffix}"))
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                if version:
                    logger.info(
                        "Cache schema %s != %s; emptying %s.", version, SCHEMA_VERSION, self
                    )
                conn.execute("DROP TABLE IF EXISTS entries")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    @staticmethod
    def _check_db(conn: sqlite3.Connection) -> None:
        """Touch every table page once, so a truncated file is noticed at open."""
        conn.execute("SELECT count(*), sum(size), sum(length(url)) FROM entries").fetchone()

    def _db_ident(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_dev, st.st_ino)

    def _recover(self, exc: sqlite3.Error) -> None:
        """Move a corrupt database (and its WAL) aside and start a fresh one."""
        with self._lock:
            mine = self._local.ident
            self._generation += 1
        if self._local.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._local.conn.close()
            self._local.conn = None
        if self._db_ident() == mine:  # not already replaced by another thread or process
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{secrets.token_hex(3)}"
            aside = f"{self.path}.corrupt-{stamp}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, aside)
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}-wal", f"{aside}-wal")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}-shm")
            logger.warning(
                "Cache database %s was unreadable (%s); moved it to %s and started empty.",
                self.path,
                exc,
                aside,
            )
        private_file(self.path)


def _row(kind: str, key: str, raw: tuple[Any, ...]) -> Row:
    """A stored row as a `Row`; CorruptRow when a column holds what no write puts there."""
    resource, url, created, expires, size, raw_size, body = raw
    if not isinstance(body, bytes):
        raise CorruptRow(f"body is {type(body).__name__}, not bytes")
    try:
        return Row(
            kind=kind,
            key=key,
            resource=str(resource),
            url=str(url),
            created=float(created),
            expires=float(expires),
            size=int(size),
            raw_size=int(raw_size),
            body=body,
        )
    except (TypeError, ValueError) as exc:
        raise CorruptRow(str(exc)) from exc
