"""URLs as the library compares and shows them: one canonical form, one redaction.

`canonical_url` is what makes two requests "the same" (cache keys, paging markers);
`redact_url` is what any message, log line or stored record may show of a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SECRET_PARAMS", "canonical_url", "redact_url"]

# Query parameters that carry a credential (PostHog reads `personal_api_key` and `token`;
# the others are common enough in proxies and self-hosted setups to be masked too).
SECRET_PARAMS = frozenset({"personal_api_key", "token", "api_key", "key", "password"})
MASK = "********"
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def canonical_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL as a cache key or a paging marker sees it: lowercase scheme and host, no
    default port, no trailing slash, no fragment, query parameters (the URL's and `params`
    merged) sorted. Equal requests give equal strings."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    path = parts.path.rstrip("/") or "/"
    query = parse_qsl(parts.query, keep_blank_values=True) + _param_pairs(params)
    query.sort()
    netloc = _netloc(scheme, url, keep_userinfo=True)
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def redact_url(url: str) -> str:
    """The URL safe to show: no user info, no fragment, credential-named parameters masked
    (kept by name, so a message can say where a key was sent)."""
    try:
        parts = urlsplit(url)
        netloc = _netloc(parts.scheme.lower(), url, keep_userinfo=False)
    except ValueError:
        return "<unparseable url>"
    query = [
        (name, MASK if name.lower() in SECRET_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))[:2000]
