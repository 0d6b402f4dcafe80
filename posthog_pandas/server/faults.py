"""Injected failures of the local server: throttling, 5xx, broken bodies, hangs, bad `next`."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from posthog_pandas.server.web import ApiError, Response, json_response

__all__ = ["FaultInjector", "Faults"]

ME_PATH = "/api/users/@me"


@dataclass(frozen=True)
class Faults:
    """Failure modes, all off by default; probabilities come from a seeded RNG (reproducible)."""

    rate_429: float = 0.0
    retry_after: int = 1
    rate_500: float = 0.0
    rate_502: float = 0.0  # HTML body, like a proxy
    rate_503: float = 0.0
    rate_504: float = 0.0  # HTML body, like a proxy
    reset_mid_body: float = 0.0  # headers + Content-Length, half the body, then close
    malformed_json: float = 0.0  # 200 with a truncated JSON body
    html_login: float = 0.0  # 200 text/html login page
    slow: float = 0.0  # seconds of added latency per request
    hang_after: int | None = None  # after N API requests, stop answering (60 s)
    # Requests whose `offset` query parameter is at least N stop answering: unlike
    # hang_after, it picks the same requests whatever order concurrent pages arrive in.
    hang_from_offset: int | None = None
    # HogQL queries whose rows start at or after this ISO time (their `__after` or `__last_ts`
    # value: an events window or page) stop answering, whatever order concurrent windows arrive in.
    hang_queries_from: str | None = None
    short_pages: bool = False  # persons pages shorter than `limit`, still with `next`
    repeat_next: bool = False  # list `next` equals the current URL
    foreign_next: bool = False  # list `next` points at the foreign listener
    paths: tuple[str, ...] | None = None  # only paths containing one of these get faults
    seed: int = 0


_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML_LOGIN = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>PostHog</title>'
    b'</head>\n<body><div id="root"><form method="post" action="/login">'
    b'<input name="email" type="email"><input name="password" type="password">'
    b'<button type="submit">Log in</button></form></div></body></html>\n'
)


class FaultInjector:
    """Decides, per request and in a reproducible order, which fault (if any) to inject."""

    def __init__(self, faults: Faults | None) -> None:
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._count = 0

    def applies(self, path: str) -> bool:
        selected = self.faults.paths
        if selected is None:
            return not path.startswith(ME_PATH)
        return any(s in path for s in selected)

    def _draw(self, probability: float) -> bool:
        return probability > 0 and self._rng.random() < probability

    def should_hang(
        self, path: str, query: Mapping[str, str] | None = None, body: Any = None
    ) -> bool:
        """Count API requests; once past `hang_after`, every selected request hangs. With
        `hang_from_offset`, so does each selected request at or past that offset; with
        `hang_queries_from`, each query whose rows start at or after that time."""
        if not self.applies(path):
            return False
        from_offset = self.faults.hang_from_offset
        if from_offset is not None and _offset(query) >= from_offset:
            return True
        from_time = self.faults.hang_queries_from
        if from_time is not None and _rows_start(body) >= _instant(from_time):
            return True
        limit = self.faults.hang_after
        if limit is None:
            return False
        with self._lock:
            self._count += 1
            return self._count > limit

    def early_response(self, path: str) -> Response | None:
        """A canned failure answered instead of the real one, or None."""
        if not self.applies(path):
            return None
        f = self.faults
        with self._lock:
            if self._draw(f.rate_429):
                return ApiError.throttled(f.retry_after).response()
            if self._draw(f.rate_500):
                err = ApiError(500, "server_error", "error", "A server error occurred.")
                return err.response()
            if self._draw(f.rate_502):
                return Response(502, _HTML_502, "text/html")
            if self._draw(f.rate_503):
                detail = "Service temporarily unavailable, try again later."
                return json_response(
                    {"type": "server_error", "code": "service_unavailable", "detail": detail,
                     "attr": None},
                    503,
                )  # fmt: skip
            if self._draw(f.rate_504):
                return Response(504, _HTML_504, "text/html")
            if self._draw(f.html_login):
                return Response(200, _HTML_LOGIN, "text/html; charset=utf-8")
        return None

    def body_fault(self, path: str) -> str | None:
        """'reset' or 'malformed' for a response about to be sent, or None."""
        if not self.applies(path):
            return None
        with self._lock:
            if self._draw(self.faults.reset_mid_body):
                return "reset"
            if self._draw(self.faults.malformed_json):
                return "malformed"
        return None


def _offset(query: Mapping[str, str] | None) -> int:
    """The request's `offset` parameter (-1 when absent or not a number)."""
    raw = (query or {}).get("offset", "")
    return int(raw) if raw.isdigit() else -1


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows_start(body: Any) -> datetime:
    """Where a HogQL query's rows start: its `__last_ts`, else its `__after` (else never)."""
    node = body.get("query") if isinstance(body, dict) else None
    values = node.get("values") if isinstance(node, dict) else None
    values = values if isinstance(values, dict) else {}
    start = values.get("__last_ts") or values.get("__after")
    return _instant(start) if isinstance(start, str) else datetime.min.replace(tzinfo=UTC)
