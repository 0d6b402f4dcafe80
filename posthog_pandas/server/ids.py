"""Ids of generated records: random version-4 UUIDs, and stable ones derived from names.

Apart from data.py so that the catalog (which data.py builds) uses them without importing
data.py back.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stable_uuid", "uuid_strings"]


def uuid_strings(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    """`n` random version-4 UUID strings, plus their 16 raw bytes (for sorting)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    out = [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]
    return out, raw


def stable_uuid(*parts: object) -> str:
    """A UUID-shaped id derived from `parts` (for metadata records)."""
    h = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
