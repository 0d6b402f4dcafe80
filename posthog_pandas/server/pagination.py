"""PostHog's page envelopes: DRF limit/offset, opaque cursors, and the fault-shaped `next` link."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from posthog_pandas.server.web import ApiError, Request, page_url

if TYPE_CHECKING:
    from posthog_pandas.server.faults import Faults

__all__ = ["Pager", "decode_cursor", "encode_cursor", "int_param"]


def int_param(request: Request, name: str, default: int, *, cap: int | None = None) -> int:
    """DRF's `_positive_int`: junk or non-positive values fall back to the default."""
    raw = request.params.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    if value < 0 or (value == 0 and name == "limit"):
        return default
    return min(value, cap) if cap is not None else value


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> int:
    """The offset inside an opaque cursor; a bad cursor is DRF's 404 "Invalid cursor"."""
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        key, _, value = text.partition("=")
        if key != "o":
            raise ValueError(text)
        return max(0, int(value))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError.not_found("Invalid cursor") from None


@dataclass
class Pager:
    """Builds `next`/`previous` links for one request, bending them when a fault is on."""

    request: Request
    faults: Faults | None  # None when faults do not apply to this path
    foreign_url: str

    def shape_next(self, url: str | None) -> str | None:
        f = self.faults
        if f is None:
            return url
        if f.repeat_next:
            return self.request.absolute()
        if f.foreign_next:
            parts = urlsplit(url or self.request.absolute())
            return f"{self.foreign_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return url

    def limit_offset(self, rows: Sequence[Any], *, default_limit: int = 100) -> dict[str, Any]:
        """DRF LimitOffsetPagination: count, next, previous, results."""
        limit = int_param(self.request, "limit", default_limit)
        offset = int_param(self.request, "offset", 0)
        count = len(rows)
        nxt = None
        if offset + limit < count:
            nxt = page_url(self.request, limit=limit, offset=offset + limit)
        prev = None
        if offset > 0:
            back = offset - limit
            prev = page_url(self.request, limit=limit, offset=back if back > 0 else None)
        return {
            "count": count,
            "next": self.shape_next(nxt),
            "previous": prev,
            "results": list(rows[offset : offset + limit]),
        }

    def cursor_page(self, rows: Sequence[Any], *, page_size: int = 100) -> dict[str, Any]:
        """DRF CursorPagination envelope (next, previous, results) with an opaque cursor."""
        offset = decode_cursor(self.request.params.get("cursor"))
        nxt = None
        if offset + page_size < len(rows):
            nxt = page_url(self.request, cursor=encode_cursor(offset + page_size))
        prev = None
        if offset > 0:
            back = max(0, offset - page_size)
            prev = page_url(self.request, cursor=encode_cursor(back) if back else None)
        return {
            "next": self.shape_next(nxt),
            "previous": prev,
            "results": list(rows[offset : offset + page_size]),
        }
