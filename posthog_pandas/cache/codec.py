"""How a response body is kept: a zstd frame (pyarrow's codec), with its length checked on read.

Older caches hold zlib streams; they are still read.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["CompressedBody", "compress_body", "decompress_body"]

#: zstd level 1: an events page must be in the cache before the next page is requested (so a
#: pull killed midway resumes where it was), so speed beats ratio.
COMPRESS_LEVEL = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # every zstd frame starts with it; zlib streams never do


@functools.cache
def _zstd() -> Any:
    import pyarrow as pa  # imported on first use: `import posthog_pandas.cache` stays light

    return pa.Codec("zstd", COMPRESS_LEVEL)


@dataclass(frozen=True)
class CompressedBody:
    """A body compressed as the cache stores it, with its length before compression."""

    stored: bytes
    raw_size: int

    @classmethod
    def of(cls, body: bytes) -> CompressedBody:
        return cls(compress_body(body), len(body))


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
