"""The cache directory and its files: where it is, private modes, atomic writes, the salt.

Directory 0700, files 0600; a file is written to a private temp file, fsynced, then moved into
place, so a crash mid-write never leaves half a file under the real name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from posthog_pandas.exceptions import CacheError

__all__ = ["ENV_CACHE_DIR", "default_cache_dir"]

logger = logging.getLogger("posthog_pandas.cache")

ENV_CACHE_DIR = "POSTHOG_PANDAS_CACHE_DIR"
SALT_NAME = "salt"
SALT_BYTES = 32
#: Temp files younger than this may belong to a writer that is still running.
STALE_TEMP_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$POSTHOG_PANDAS_CACHE_DIR`` if set, else the per-user cache dir of the OS."""
    configured = os.environ.get(ENV_CACHE_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("posthog-pandas"))


def cache_error(path: Path, exc: BaseException) -> CacheError:
    """The error a user sees when the cache cannot be written, with the ways out."""
    return CacheError(
        f"The posthog-pandas cache directory {str(path)!r} cannot be created or written "
        f"({type(exc).__name__}: {exc}). Set {ENV_CACHE_DIR} to a writable directory, "
        "or pass cache_dir=... or cache=False."
    )


def prepare_dir(path: Path, own_names: Collection[str] = (SALT_NAME,)) -> None:
    """Create ``path`` with mode 0700; tighten a loose mode if the directory is ours (empty,
    or holding one of ``own_names``)."""
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
        if not existed or _looks_like_ours(path, own_names):
            os.chmod(path, 0o700)
            if existed:
                logger.warning(
                    "Cache directory %s had mode %o, so other users could read it; "
                    "posthog-pandas changed it to 0700.",
                    path,
                    mode,
                )
        else:
            logger.warning(
                "Cache directory %s has mode %o, so other users may read cached data; "
                "run chmod 700 on it or choose another directory.",
                path,
                mode,
            )
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"no write permission on {path}")


def _looks_like_ours(path: Path, own_names: Collection[str]) -> bool:
    names = {p.name for p in path.iterdir()}
    return not names or bool(names & set(own_names))


def private_subdir(path: Path) -> None:
    """Create ``path`` (its parent exists) with mode 0700, or make it 0700."""
    path.mkdir(mode=0o700, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing (so SQLite inherits the mode), else
    make sure it is 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    chmod_private(path)


def chmod_private(path: Path) -> None:
    """Mode 0600 for ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
            os.chmod(path, 0o600)


def write_private_temp(directory: Path, prefix: str, writer: Callable[[Any], None]) -> Path:
    """Write a new 0600 temp file in ``directory`` via ``writer(fileobj)`` and fsync it; on
    any failure the temp file is removed."""
    tmp = directory / f".{prefix}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
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


def write_atomically(path: Path, writer: Callable[[Any], None]) -> int:
    """Replace ``path`` with what ``writer(fileobj)`` writes, all or nothing (temp file,
    fsync, ``os.replace``, 0600); returns the new file's size."""
    tmp = write_private_temp(path.parent, path.stem, writer)
    os.replace(tmp, path)
    return os.stat(path).st_size


def stale_temp_files(directory: Path) -> list[Path]:
    """Temp files in ``directory`` abandoned by a writer that died (older than an hour)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    stale: list[Path] = []
    if not directory.is_dir():
        return stale
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.name.endswith(".tmp") and path.stat().st_mtime < cutoff:
                stale.append(path)
    return stale


def load_salt(directory: Path) -> bytes:
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
            chmod_private(path)
            return data
        time.sleep(0.01)  # a non-link filesystem writer may still be filling it
    logger.warning("Cache salt %s is damaged; replacing it (existing entries become misses).", path)
    _create_salt(path, replace=True)
    return path.read_bytes()


def _create_salt(path: Path, *, replace: bool) -> None:
    salt = secrets.token_bytes(SALT_BYTES)
    tmp = write_private_temp(path.parent, SALT_NAME, lambda fh: fh.write(salt))
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
