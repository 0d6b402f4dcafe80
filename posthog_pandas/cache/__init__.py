"""The on-disk cache: pages and JSON records in SQLite (WAL), finished DataFrames as Parquet.

This package only stores and finds bytes; what is cacheable and for how long is the policy of
``posthog_pandas._fetcher`` (pages) and of the accessors (frames). It is split along its seams,
one concern per module, so each can be read, tested and replaced alone:

========== ==================================================================================
module     holds
========== ==================================================================================
store      :class:`CacheStore`, the cache the rest of the package uses: expiry (it owns the
           clock), compressed pages, JSON records, frames beside the rows, key fingerprints,
           and the rule that a damaged entry is a logged miss. It composes the modules below.
storage    the seam: the :class:`Storage` protocol (rows by ``(kind, key)``) and the value
           objects :class:`Row` and :class:`Entry`. ``CacheStore`` depends on the protocol.
sqlite     :class:`SQLiteStorage`, the default storage: WAL, a connection per thread, retries
           on busy, fork safety, recovery from a corrupt database file.
memory     :class:`MemoryStorage`, rows in a dict: the second storage that proves the seam
           (tests; a cache that must not outlive the process).
keys       cache keys (SHA-256 over scope, method, normalised URL and body), the salted
           fingerprint of secrets, and the cache's URL normalisation and redaction.
codec      page bodies as zstd frames (older zlib entries still read), length-checked.
frames     Parquet files of DataFrames with their exact dtypes (dtype codes in the file's
           metadata), and the background frame writer.
writer     the background page writer: a page is compressed as soon as it arrives and
           written once the cache policy keeps it, never if it is dropped.
files      the directory and its files: default location, modes 0700/0600, atomic writes
           (temp file + fsync + ``os.replace``), the per-directory salt.
info       :class:`CacheInfo` and :class:`ResourceInfo`: what the cache holds, as text, HTML
           and a DataFrame; ``human_bytes``.
_fork      resets locks, threads and SQLite connections in a forked child.
========== ==================================================================================

Safety rules enforced by construction:

* Keys are SHA-256 digests of scope (host, project, key fingerprint), method, normalised URL and
  body, so two API keys, hosts or projects never share an entry. Secrets enter only through
  :meth:`CacheStore.fingerprint`, an HMAC under a random per-directory salt.
* The URL kept next to an entry is for display only and is redacted.
* Files are private (directory 0700, files 0600) and written atomically (one SQLite transaction,
  or temp file + fsync + ``os.replace`` for Parquet).
* A corrupt row, body, frame or database file becomes a logged miss, never an exception.

The on-disk layout (``salt``, ``cache.sqlite3`` with its one ``entries`` table, ``frames/``)
is unchanged by the split: caches written before it keep working.
"""

from posthog_pandas.cache.codec import compress_body, decompress_body
from posthog_pandas.cache.files import ENV_CACHE_DIR, default_cache_dir
from posthog_pandas.cache.info import CacheInfo, ResourceInfo, human_bytes
from posthog_pandas.cache.keys import normalize_url, redact_url
from posthog_pandas.cache.memory import MemoryStorage
from posthog_pandas.cache.sqlite import DB_NAME, SQLiteStorage
from posthog_pandas.cache.storage import CorruptRow, Entry, Row, Storage
from posthog_pandas.cache.store import CacheStore

__all__ = [
    "DB_NAME",
    "ENV_CACHE_DIR",
    "CacheInfo",
    "CacheStore",
    "CorruptRow",
    "Entry",
    "MemoryStorage",
    "ResourceInfo",
    "Row",
    "SQLiteStorage",
    "Storage",
    "compress_body",
    "decompress_body",
    "default_cache_dir",
    "human_bytes",
    "normalize_url",
    "redact_url",
]
