"""On-disk cache storage: pages and JSON records in SQLite (WAL), final DataFrames as Parquet.

This module only stores and finds bytes; what is cacheable and for how long is the HTTP layer's
policy. Safety rules it enforces by construction:

* Keys are SHA-256 digests of scope (host, project, key fingerprint), method, normalised URL and
  body, so two API keys, hosts or projects never share an entry. Secrets enter only through
  :meth:`CacheStore.fingerprint`, an HMAC under a random per-directory salt.
* The URL kept next to an entry is for display only and is redacted.
* Files are private (directory 0700, files 0600) and written atomically (one SQLite transaction,
  or temp file + fsync + ``os.replace`` for Parquet).
* A corrupt row, body, frame or database file becomes a logged miss, never an exception.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import html
import json
import logging
import math
import os
import random
import re
import secrets as _secrets
import sqlite3
import stat
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from posthog_pandas.exceptions import CacheError, ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ENV_CACHE_DIR",
    "CacheInfo",
    "CacheStore",
    "Entry",
    "ResourceInfo",
    "compress_body",
    "decompress_body",
    "default_cache_dir",
    "normalize_url",
    "redact_url",
]

logger = logging.getLogger("posthog_pandas.cache")

ENV_CACHE_DIR = "POSTHOG_PANDAS_CACHE_DIR"
DB_NAME = "cache.sqlite3"
SALT_NAME = "salt"
FRAMES_DIR = "frames"
SALT_BYTES = 32
FINGERPRINT_CHARS = 32
#: Bump when the table layout changes; a database with another version is emptied.
SCHEMA_VERSION = 1
#: Bump when key derivation changes, so old entries simply stop matching.
KEY_VERSION = 1
#: Query parameters never stored, even in the display URL (defensive: keys go in headers).
REDACTED_PARAMS = frozenset({"personal_api_key", "token", "api_key", "key", "password"})
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 65_536  # SQLite's largest page size; the cache holds mostly large bodies
WAL_BYTES = 16 << 20
WRITE_ATTEMPTS = 12
#: Pages are stored as zstd level 1 (pyarrow's codec): ~4.5x smaller JSON at ~600 MB/s, 4x
#: faster than zlib level 1, which matters because a page is compressed while the next one
#: downloads and the current one becomes a DataFrame. Older zlib entries are still read.
COMPRESS_LEVEL = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # every zstd frame starts with it; zlib streams never do
FRAME_META_KEY = b"posthog_pandas"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")
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
_STORES: weakref.WeakSet[CacheStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._adopt_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _copy_on_write() -> bool:
    """Whether pandas copy-on-write is on (always in pandas 3; an option in pandas 2.2)."""
    import pandas as pd

    return int(pd.__version__.split(".", 1)[0]) >= 3 or pd.options.mode.copy_on_write is True


@functools.cache
def _zstd() -> Any:
    import pyarrow as pa  # imported on first use: `import posthog_pandas.cache` stays light

    return pa.Codec("zstd", COMPRESS_LEVEL)


def compress_body(body: bytes) -> bytes:
    """A response body as stored in the cache (a zstd frame)."""
    compressed: bytes = _zstd().compress(body, asbytes=True)
    return compressed


def decompress_body(stored: bytes, raw_size: int) -> bytes:
    """The body ``compress_body`` stored (or an older zlib one); checks the recorded length.

    Raises OSError, zlib.error or ValueError for a damaged entry (the caller treats it as a
    miss).
    """
    if stored[:4] == _ZSTD_MAGIC:
        body: bytes = _zstd().decompress(stored, decompressed_size=raw_size, asbytes=True)
    else:
        body = zlib.decompress(stored)
    if len(body) != raw_size:
        raise ValueError(f"length {len(body)} != recorded {raw_size}")
    return body


def default_cache_dir() -> Path:
    """``$POSTHOG_PANDAS_CACHE_DIR`` if set, else the per-user cache dir of the OS."""
    configured = os.environ.get(ENV_CACHE_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("posthog-pandas"))


# --- keys and URLs ---------------------------------------------------------------------------


def _param_pairs(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Flatten params the way requests encodes them (None dropped, sequences repeated)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None:
                continue
            text = item.decode() if isinstance(item, bytes) else str(item)
            pairs.append((str(name), text))
    return pairs


def _netloc(scheme: str, url: str, *, keep_userinfo: bool) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if keep_userinfo and "@" in parts.netloc:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return netloc


def normalize_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL as a cache key sees it: lowercase scheme and host, no default port, no trailing
    slash, no fragment, query parameters (URL and ``params`` merged) sorted."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    path = parts.path.rstrip("/") or "/"
    query = parse_qsl(parts.query, keep_blank_values=True) + _param_pairs(params)
    query.sort()
    netloc = _netloc(scheme, url, keep_userinfo=True)
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def redact_url(url: str) -> str:
    """The URL without credentials: no user info, no fragment, no secret-named parameters."""
    try:
        parts = urlsplit(url)
        netloc = _netloc(parts.scheme.lower(), url, keep_userinfo=False)
    except ValueError:
        return "<unparseable url>"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in REDACTED_PARAMS
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))[:2000]


def _body_digest(body: bytes | str | None) -> str:
    """SHA-256 of the body; JSON bodies are canonicalised first so key order does not matter."""
    if not body:
        return ""
    raw = body.encode() if isinstance(body, str) else body
    try:
        raw = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    return hashlib.sha256(raw).hexdigest()


# --- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One cached response body (already decompressed) and its bookkeeping."""

    body: bytes
    created: float
    expires: float
    resource: str
    url: str

    def age(self, now: float | None = None) -> float:
        """Seconds since the entry was stored."""
        return (time.time() if now is None else now) - self.created

    def is_fresh(self, now: float | None = None) -> bool:
        """True until the entry's TTL has run out."""
        return (time.time() if now is None else now) < self.expires


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def human_bytes(n: int) -> str:
    """A byte count for people, in powers of 1,000: "999 bytes", "1.2 kB", "183.2 MB"."""
    if n < 1000:
        return f"{n} bytes"
    size = n / 1000
    for unit in ("kB", "MB"):
        if round(size, 1) < 1000:  # 999,999 bytes is "1.0 MB", not "1000.0 kB"
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ResourceInfo:
    """Entries of one resource: count, expired count, payload bytes, oldest and newest."""

    entries: int
    expired: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None


@dataclass(frozen=True)
class CacheInfo:
    """What a cache directory holds. ``bytes`` is the on-disk size of the database and frames;
    per-resource ``bytes`` count payload (compressed bodies and Parquet files)."""

    directory: Path
    entries: int
    expired: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None
    resources: Mapping[str, ResourceInfo] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per resource, with nullable dtypes."""
        import pandas as pd

        names = sorted(self.resources)
        rows = [self.resources[name] for name in names]
        return pd.DataFrame(
            {
                "resource": pd.array(names, dtype="string"),
                "entries": pd.array([r.entries for r in rows], dtype="Int64"),
                "expired": pd.array([r.expired for r in rows], dtype="Int64"),
                "bytes": pd.array([r.bytes for r in rows], dtype="Int64"),
                "oldest": pd.Series([r.oldest for r in rows], dtype="datetime64[ns, UTC]"),
                "newest": pd.Series([r.newest for r in rows], dtype="datetime64[ns, UTC]"),
            }
        )

    def _summary(self) -> str:
        return (
            f"{self.entries} entries ({self.expired} expired), {human_bytes(self.bytes)}, "
            f"oldest {_when(self.oldest)}, newest {_when(self.newest)}"
        )

    def __repr__(self) -> str:
        lines = [f"CacheInfo({str(self.directory)!r}: {self._summary()})"]
        width = max((len(name) for name in self.resources), default=0)
        for name in sorted(self.resources):
            r = self.resources[name]
            lines.append(
                f"  {name:<{width}}  {r.entries:>6} entries  {human_bytes(r.bytes):>9}"
                f"  newest {_when(r.newest)}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>posthog-pandas cache</b> <code>{html.escape(str(self.directory))}</code>: "
            f"{html.escape(self._summary())}</p>"
        )
        if not self.resources:
            return head
        return head + str(self.to_frame().to_html(index=False))


# --- files -----------------------------------------------------------------------------------


def _cache_error(path: Path, exc: BaseException) -> CacheError:
    return CacheError(
        f"The posthog-pandas cache directory {str(path)!r} cannot be created or written "
        f"({type(exc).__name__}: {exc}). Set {ENV_CACHE_DIR} to a writable directory, "
        "or pass cache_dir=... or cache=False."
    )


def _looks_like_ours(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return not names or SALT_NAME in names or DB_NAME in names


def _prepare_dir(path: Path) -> None:
    """Create ``path`` with mode 0700; tighten a loose mode if the directory is ours."""
    existed = path.is_dir()
    if not existed:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a directory")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        if not existed or _looks_like_ours(path):
            os.chmod(path, 0o700)
            if existed:
                logger.warning("Cache directory %s had mode %o; set it to 0700.", path, mode)
        else:
            logger.warning(
                "Cache directory %s has mode %o, so other users may read cached data; "
                "run chmod 700 on it or choose another directory.",
                path,
                mode,
            )
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"no write permission on {path}")


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing (so SQLite inherits the mode), else
    make sure it is 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    _chmod_private(path)


def _chmod_private(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
            os.chmod(path, 0o600)


def _write_private_temp(directory: Path, prefix: str, writer: Callable[[Any], None]) -> Path:
    """Write a new 0600 temp file in ``directory`` via ``writer(fileobj)`` and fsync it."""
    tmp = directory / f".{prefix}.{os.getpid()}.{_secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _load_salt(directory: Path) -> bytes:
    """Read ``<dir>/salt``, creating it atomically (link of a complete temp file) if absent, so
    racing processes all end up with the same salt."""
    path = directory / SALT_NAME
    for _ in range(50):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            _create_salt(path, replace=False)
            continue
        if len(data) == SALT_BYTES:
            _chmod_private(path)
            return data
        time.sleep(0.01)  # a non-link filesystem writer may still be filling it
    logger.warning("Cache salt %s is damaged; replacing it (existing entries become misses).", path)
    _create_salt(path, replace=True)
    return path.read_bytes()


def _create_salt(path: Path, *, replace: bool) -> None:
    salt = _secrets.token_bytes(SALT_BYTES)
    tmp = _write_private_temp(path.parent, SALT_NAME, lambda fh: fh.write(salt))
    try:
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic "create if absent" with complete content
        except FileExistsError:
            pass
        except OSError:  # filesystem without hard links
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(salt)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# --- frames ----------------------------------------------------------------------------------


def _dtype_code(dtype: Any) -> Any:
    import pandas as pd

    if isinstance(dtype, pd.StringDtype):
        na_value = dtype.na_value
        is_nan = isinstance(na_value, float) and math.isnan(na_value)
        return {"string": dtype.storage, "na": "nan" if is_nan else "NA"}
    return str(dtype)


def _dtype_from_code(code: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(code, dict):
        na_value = np.nan if code["na"] == "nan" else pd.NA
        try:
            return pd.StringDtype(code["string"], na_value=na_value)  # type: ignore[call-arg,unused-ignore]
        except TypeError:  # pandas 2.2: the NaN flavour is spelled storage="pyarrow_numpy"
            return pd.StringDtype(code["string"])
    return pd.api.types.pandas_dtype(code)


def _restore_dtypes(df: pd.DataFrame, codes: list[Any]) -> pd.DataFrame:
    """Cast each column back to the dtype it was written with (pandas versions disagree on
    what Parquet strings read back as)."""
    if len(codes) != df.shape[1]:
        raise ValueError(f"frame has {df.shape[1]} columns, metadata lists {len(codes)}")
    for i, code in enumerate(codes):
        if str(code) == "category":
            continue  # Parquet's dictionary + pandas metadata already restore categories
        target = _dtype_from_code(code)
        column = df.iloc[:, i]
        if column.dtype != target:
            df.isetitem(i, column.astype(target).array)
    # Column labels come back as an object Index; rebuild it the way a fresh frame gets it
    # (pandas 3 infers its string dtype) so a cached frame equals the fetched one exactly.
    import pandas as pd

    df.columns = pd.Index(list(df.columns))
    return df


# --- the store -------------------------------------------------------------------------------


def _errcode(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0
    generation: int = -1
    ident: tuple[int, int] = (0, 0)


class CacheStore:
    """Pages, JSON records and DataFrames under one directory, safe for many threads and
    processes at once.

    Args:
        directory: created with mode 0700 if missing.
        clock: seconds since the epoch; injectable so tests control expiry.

    Raises:
        CacheError: the directory cannot be created or written.
    """

    def __init__(self, directory: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory).expanduser()
        self._clock = clock
        self._db_path = self.directory / DB_NAME
        self._frames_dir = self.directory / FRAMES_DIR
        self._local = _Local()
        self._lock = threading.Lock()
        self._generation = 0
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        # Frames handed to put_frame_soon and not yet on disk, and the one thread writing them.
        self._frames_lock = threading.Lock()
        self._pending_frames: dict[str, Future[None]] = {}
        self._frame_writer: ThreadPoolExecutor | None = None
        _STORES.add(self)
        try:
            _prepare_dir(self.directory)
            self._salt = _load_salt(self.directory)
            _private_file(self._db_path)
            self._run(self._check_db, write=False)
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise _cache_error(self.directory, exc) from exc

    def __repr__(self) -> str:
        return f"CacheStore({str(self.directory)!r})"

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- keys ---

    def fingerprint(self, *secrets: str) -> str:
        """A 32-hex-char HMAC-SHA256 of the secrets under this directory's salt: stable across
        processes sharing the directory, useless for recovering the secrets."""
        mac = hmac.new(self._salt, digestmod=hashlib.sha256)
        for secret in secrets:
            raw = secret.encode()
            mac.update(len(raw).to_bytes(8, "big"))  # length prefix: ("ab","c") != ("a","bc")
            mac.update(raw)
        return mac.hexdigest()[:FINGERPRINT_CHARS]

    def make_key(
        self,
        *,
        scope: str,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
    ) -> str:
        """SHA-256 hex of scope (``"<host>|<project>|<fingerprint>"``), method, normalised URL
        and body digest. Headers never take part."""
        material = {
            "v": KEY_VERSION,
            "scope": scope,
            "method": method.upper(),
            "url": normalize_url(url, params),
            "body": _body_digest(body),
        }
        canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # --- pages ---

    def get(self, key: str, *, allow_stale: bool = False) -> Entry | None:
        """The entry under ``key``; None on a miss, when expired (unless ``allow_stale``), or
        when the stored row cannot be read (logged)."""
        return self._get("page", key, allow_stale=allow_stale)

    def put(self, key: str, body: bytes, *, resource: str, url: str, ttl: float) -> None:
        """Store ``body`` for ``ttl`` seconds (``math.inf`` for ever) in one transaction."""
        self._put("page", key, body, resource=resource, url=url, ttl=ttl)

    def delete(self, key: str) -> None:
        """Forget everything stored under ``key``: page, JSON record and frame."""
        self._checked(lambda c: c.execute("DELETE FROM entries WHERE key = ?", (key,)), write=True)
        if _SAFE_KEY.fullmatch(key):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.frame_path(key))

    # --- JSON records (pins, incremental state) ---

    def get_json(self, key: str, *, allow_stale: bool = False) -> Any:
        """The JSON value stored under ``key``, or None (miss, expired, unreadable)."""
        entry = self._get("json", key, allow_stale=allow_stale)
        if entry is None:
            return None
        try:
            return json.loads(entry.body)
        except ValueError:
            logger.warning("Unreadable JSON record %s in %s; treated as a miss.", key, self)
            return None

    def put_json(
        self, key: str, value: Any, *, resource: str, ttl: float = math.inf, url: str = ""
    ) -> None:
        """Store a small JSON-serialisable ``value`` atomically."""
        body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        self._put("json", key, body, resource=resource, url=url, ttl=ttl)

    # --- frames ---

    def frame_path(self, key: str) -> Path:
        """Where the Parquet copy of the frame for ``key`` lives."""
        if not _SAFE_KEY.fullmatch(key):
            raise ConfigurationError(
                f"cache key {key!r} is not usable as a file name (letters, digits, _ . - only)"
            )
        return self._frames_dir / f"{key}.parquet"

    def put_frame(self, key: str, df: pd.DataFrame, *, resource: str, ttl: float) -> None:
        """Write ``df`` as Parquet (temp file, fsync, ``os.replace``, 0600) and record it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.frame_path(key)
        meta = {"version": 1, "dtypes": [_dtype_code(dt) for dt in df.dtypes]}
        try:
            # nthreads=1: pyarrow's parallel conversion needs a concurrent.futures pool, which
            # refuses work at interpreter exit, when put_frame_soon's last write may still run.
            table = pa.Table.from_pandas(df, nthreads=1)
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), FRAME_META_KEY: json.dumps(meta).encode()}
            )
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise CacheError(f"cannot store this DataFrame as Parquet: {exc}") from exc
        try:
            self._frames_dir.mkdir(mode=0o700, exist_ok=True)
            if stat.S_IMODE(os.stat(self._frames_dir).st_mode) != 0o700:
                os.chmod(self._frames_dir, 0o700)
            tmp = _write_private_temp(self._frames_dir, key, lambda fh: pq.write_table(table, fh))
            os.replace(tmp, path)
            size = os.stat(path).st_size
        except OSError as exc:
            raise _cache_error(self.directory, exc) from exc
        self._write_row("frame", key, b"", resource=resource, url="", ttl=ttl, size=size)

    def put_frame_soon(self, key: str, df: pd.DataFrame, *, resource: str, ttl: float) -> None:
        """``put_frame`` on a worker thread, so the caller gets its DataFrame without waiting
        for the Parquet write (0.1-0.4 s for 200,000 events).

        Only under pandas copy-on-write (always on in pandas 3) is a shallow copy a snapshot
        that later edits of ``df`` cannot reach; otherwise this writes before returning. Until
        the write lands, ``get_frame`` for the same key, ``info``, ``clear`` and ``close`` wait
        for it; so does interpreter exit (the worker thread is joined at shutdown).
        A failed write is logged: only the cached copy is missing.
        """
        if not _copy_on_write():
            self.put_frame(key, df, resource=resource, ttl=ttl)
            return
        snapshot = df.copy(deep=False)
        with self._frames_lock:
            if self._frame_writer is None:
                self._frame_writer = ThreadPoolExecutor(1, "posthog-pandas-frame-writer")
            future = self._frame_writer.submit(self._write_soon, key, snapshot, resource, ttl)
            self._pending_frames[key] = future
        # Outside the lock: a future that is already done runs the callback right here.
        future.add_done_callback(lambda done: self._forget_pending(key, done))

    def _write_soon(self, key: str, snapshot: pd.DataFrame, resource: str, ttl: float) -> None:
        try:
            self.put_frame(key, snapshot, resource=resource, ttl=ttl)
        except Exception as exc:  # nobody awaits this thread: log every failure, raise none
            logger.warning("not keeping the %s frame in the cache: %s", resource, exc)

    def _forget_pending(self, key: str, done: Future[None]) -> None:
        with self._frames_lock:
            if self._pending_frames.get(key) is done:
                del self._pending_frames[key]

    def flush_frames(self) -> None:
        """Wait until every frame given to ``put_frame_soon`` is written (or has failed)."""
        with self._frames_lock:
            futures = list(self._pending_frames.values())
        wait(futures)

    def get_frame(self, key: str, *, allow_stale: bool = False) -> pd.DataFrame | None:
        """The stored frame with exactly the dtypes it was written with, or None (miss,
        expired, unreadable: logged)."""
        import pyarrow.parquet as pq

        with self._frames_lock:
            pending = self._pending_frames.get(key)
        if pending is not None:
            wait([pending])  # still being written by put_frame_soon
        if self._get("frame", key, allow_stale=allow_stale) is None:
            return None
        path = self.frame_path(key)
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[FRAME_META_KEY])
            return _restore_dtypes(table.to_pandas(), list(meta["dtypes"]))
        except FileNotFoundError:
            logger.warning("Cached frame %s is missing; treated as a miss.", path)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            logger.warning("Cached frame %s is unreadable (%s); treated as a miss.", path, exc)
        self._forget("frame", key)
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None

    # --- housekeeping ---

    def info(self) -> CacheInfo:
        """Counts, sizes and ages, overall and per resource."""
        self.flush_frames()
        now = self._clock()
        rows = self._checked(
            lambda c: c.execute(
                "SELECT resource, count(*), sum(expires <= ?), sum(size), min(created),"
                " max(created) FROM entries GROUP BY resource",
                (now,),
            ).fetchall(),
            write=False,
        )
        resources = {
            str(name): ResourceInfo(int(n), int(expired), int(size), _utc(lo), _utc(hi))
            for name, n, expired, size, lo, hi in rows
        }
        created = [(r.oldest, r.newest) for r in resources.values()]
        return CacheInfo(
            directory=self.directory,
            entries=sum(r.entries for r in resources.values()),
            expired=sum(r.expired for r in resources.values()),
            bytes=self._disk_bytes(),
            oldest=min((lo for lo, _ in created if lo is not None), default=None),
            newest=max((hi for _, hi in created if hi is not None), default=None),
            resources=resources,
        )

    def clear(
        self, *, resource: str | None = None, older_than: float | timedelta | None = None
    ) -> int:
        """Remove entries (and their frames) matching all given filters; returns how many.
        ``older_than`` selects entries stored more than that many seconds ago."""
        self.flush_frames()  # a frame still being written must not land after the clear
        where: list[str] = ["1"]
        args: list[Any] = []
        if resource is not None:
            where.append("resource = ?")
            args.append(resource)
        if older_than is not None:
            seconds = (
                older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
            )
            where.append("created < ?")
            args.append(self._clock() - float(seconds))
        condition = " AND ".join(where)

        def remove(conn: sqlite3.Connection) -> tuple[int, list[str]]:
            frames = conn.execute(
                f"SELECT key FROM entries WHERE kind = 'frame' AND {condition}", args
            ).fetchall()
            removed = conn.execute(f"DELETE FROM entries WHERE {condition}", args).rowcount
            return removed, [str(k) for (k,) in frames]

        removed, frame_keys = self._checked(remove, write=True)
        for key in frame_keys:
            if _SAFE_KEY.fullmatch(key):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.frame_path(key))
        if resource is None and older_than is None:
            self._remove_strays()
        self._compact()
        logger.info("Removed %d cache entries from %s.", removed, self.directory)
        return removed

    def close(self) -> None:
        """Close this process's connections; the store reopens lazily if used again."""
        self.flush_frames()
        with self._lock:
            self._generation += 1
            mine = [c for pid, c in self._conns if pid == os.getpid()]
            self._conns = []
        for conn in mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # --- internals: rows ---

    def _get(self, kind: str, key: str, *, allow_stale: bool) -> Entry | None:
        try:
            row = self._run(
                lambda c: c.execute(
                    "SELECT body, raw_size, created, expires, resource, url FROM entries"
                    " WHERE kind = ? AND key = ?",
                    (kind, key),
                ).fetchone(),
                write=False,
            )
        except sqlite3.Error as exc:
            logger.warning("Cache read failed in %s (%s); treated as a miss.", self, exc)
            return None
        if row is None:
            return None
        try:
            body_z, raw_size, created, expires, resource, url = row
            if not allow_stale and self._clock() >= float(expires):
                return None  # checked first: no need to decompress an expired body
            body = b"" if kind == "frame" else decompress_body(body_z, int(raw_size))
            return Entry(body, float(created), float(expires), str(resource), str(url))
        except (OSError, zlib.error, TypeError, ValueError) as exc:
            logger.warning("Corrupt cache entry %s in %s (%s); treated as a miss.", key, self, exc)
            self._forget(kind, key)
            return None

    def _put(
        self, kind: str, key: str, body: bytes, *, resource: str, url: str, ttl: float
    ) -> None:
        compressed = compress_body(body)
        self._write_row(
            kind, key, compressed, resource=resource, url=url, ttl=ttl, raw_size=len(body)
        )

    def _write_row(
        self,
        kind: str,
        key: str,
        stored: bytes,
        *,
        resource: str,
        url: str,
        ttl: float,
        size: int | None = None,
        raw_size: int = 0,
    ) -> None:
        if math.isnan(ttl):
            raise ConfigurationError("cache ttl must be a number of seconds, not NaN")
        created = self._clock()
        row = (
            kind,
            key,
            resource,
            redact_url(url) if url else "",
            created,
            created + ttl,
            len(stored) if size is None else size,
            raw_size,
            stored,
        )
        self._checked(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO entries (kind, key, resource, url, created, expires,"
                " size, raw_size, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ),
            write=True,
        )

    def _forget(self, kind: str, key: str) -> None:
        """Best-effort removal of an unreadable row."""
        with contextlib.suppress(sqlite3.Error, OSError):
            self._run(
                lambda c: c.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key)),
                write=True,
            )

    def _disk_bytes(self) -> int:
        total = 0
        for path in (self._db_path, Path(f"{self._db_path}-wal"), Path(f"{self._db_path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(path).st_size
        for path in self._iter_frame_files():
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(path).st_size
        return total

    def _iter_frame_files(self) -> Iterator[Path]:
        if self._frames_dir.is_dir():
            yield from (p for p in self._frames_dir.iterdir() if p.suffix == ".parquet")

    def _remove_strays(self) -> None:
        """After a full clear: orphaned frames, abandoned temp files, corrupt databases."""
        hour_ago = time.time() - 3600  # younger temp files may belong to a running writer
        frames = list(self._frames_dir.iterdir()) if self._frames_dir.is_dir() else []
        strays = [p for p in frames if p.suffix == ".parquet"]
        strays += [p for p in self.directory.iterdir() if ".corrupt-" in p.name]
        for path in [*frames, *self.directory.iterdir()]:
            with contextlib.suppress(OSError):
                if path.name.endswith(".tmp") and path.stat().st_mtime < hour_ago:
                    strays.append(path)
        for path in strays:
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

    # --- internals: connections ---

    def _checked(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """:meth:`_run`, with storage failures (disk full, permissions) as CacheError."""
        try:
            return self._run(fn, write=write)
        except (sqlite3.Error, OSError) as exc:
            raise _cache_error(self.directory, exc) from exc

    def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``fn`` on this thread's connection (inside BEGIN IMMEDIATE when writing),
        retrying busy/locked with backoff and recovering once from a corrupt database."""
        delay, recovered = 0.005, False
        for attempt in range(WRITE_ATTEMPTS):
            conn: sqlite3.Connection | None = None
            try:
                conn = self._conn()
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    if write:
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
        _FORK_ORPHANS.extend(conn for _, conn in self._conns)
        self._conns = []
        self._lock = threading.Lock()
        self._frames_lock = threading.Lock()  # the parent's writer thread does not exist here
        self._pending_frames = {}
        self._frame_writer = None
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
        _private_file(self._db_path)
        local.ident = self._db_ident()  # what _recover may move aside if this file is corrupt
        conn = self._connect()
        local.conn, local.pid, local.generation = conn, pid, generation
        with self._lock:
            self._conns.append((pid, conn))
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._db_path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # only so close() may close it; one thread uses it
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # These two take effect only on a new, empty file. 64 kB pages: a 3 MB page body is
            # 50 WAL frames instead of 800, 4-6x less CPU per write; incremental auto-vacuum
            # lets clear() give space back.
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
            _chmod_private(Path(f"{self._db_path}{suffix}"))
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
            st = os.stat(self._db_path)
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
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{_secrets.token_hex(3)}"
            aside = f"{self._db_path}.corrupt-{stamp}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._db_path, aside)
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self._db_path}-wal", f"{aside}-wal")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self._db_path}-shm")
            logger.warning(
                "Cache database %s was unreadable (%s); moved it to %s and started empty.",
                self._db_path,
                exc,
                aside,
            )
        _private_file(self._db_path)
