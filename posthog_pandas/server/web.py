"""Request and response values, PostHog's error JSON, and absolute-URL helpers (local server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

__all__ = ["ApiError", "Request", "Response", "json_response", "page_url"]

_JSON = "application/json"


@dataclass
class Request:
    """One parsed HTTP request, as the routes see it."""

    method: str
    path: str
    query: str  # raw query string, order kept (for `next` links)
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    _json: Any = field(default=None, repr=False)
    _json_parsed: bool = field(default=False, repr=False)

    @property
    def params(self) -> dict[str, str]:
        """Query parameters; the first value wins, like Django's `QueryDict.get`."""
        out: dict[str, str] = {}
        for k, v in parse_qsl(self.query, keep_blank_values=True):
            out.setdefault(k, v)
        return out

    @property
    def json(self) -> Any:
        """The JSON body, or None when absent or not JSON (GET bodies are parsed too)."""
        if not self._json_parsed:
            self._json_parsed = True
            if self.body:
                try:
                    self._json = orjson.loads(self.body)
                except orjson.JSONDecodeError:
                    self._json = None
        return self._json

    @property
    def host(self) -> str:
        return self.headers.get("host", "127.0.0.1")

    def absolute(self, path: str | None = None, query: str | None = None) -> str:
        """Absolute URL on the request's own Host, as Django's `build_absolute_uri` does."""
        q = self.query if query is None else query
        url = f"http://{self.host}{self.path if path is None else path}"
        return f"{url}?{q}" if q else url


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answered in drf-exceptions-hog's shape: {type, code, detail, attr}."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        detail: str,
        attr: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.code = code
        self.detail = detail
        self.attr = attr
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr}
        return json_response(body, self.status, self.headers)

    @classmethod
    def not_found(cls, detail: str = "Not found.") -> ApiError:
        return cls(404, "invalid_request", "not_found", detail)

    @classmethod
    def validation(
        cls, detail: str, attr: str | None = None, code: str = "invalid_input"
    ) -> ApiError:
        return cls(400, "validation_error", code, detail, attr)

    @classmethod
    def throttled(cls, wait: int) -> ApiError:
        unit = "second" if wait == 1 else "seconds"
        detail = f"Request was throttled. Expected available in {wait} {unit}."
        return cls(429, "throttled_error", "throttled", detail, headers={"Retry-After": str(wait)})


def _default(value: Any) -> Any:
    return str(value)  # Decimal, numpy scalars without a native mapping, etc.


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(value), _JSON, dict(headers or {}))


def page_url(request: Request, **updates: object | None) -> str:
    """The request URL with some query parameters replaced (None removes one), order kept."""
    pairs = [(k, v) for k, v in parse_qsl(request.query, keep_blank_values=True)]
    for key, value in updates.items():
        if value is None:
            pairs = [(k, v) for k, v in pairs if k != key]
        elif any(k == key for k, _ in pairs):
            pairs = [(k, str(value) if k == key else v) for k, v in pairs]
            seen = False
            deduped = []
            for k, v in pairs:  # Django's replace_query_param keeps one value per key
                if k == key:
                    if seen:
                        continue
                    seen = True
                deduped.append((k, v))
            pairs = deduped
        else:
            pairs.append((key, str(value)))
    return request.absolute(query=urlencode(pairs))
