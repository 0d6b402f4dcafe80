"""Cache keys and the URLs beside them: what makes two requests the same entry, and what of a
URL may be kept for display.

A key is the SHA-256 of scope (host, project, key fingerprint), method, normalised URL and body,
so two API keys, hosts or projects never share an entry. Secrets enter only through
:func:`fingerprint`, an HMAC under the cache directory's random salt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["fingerprint", "make_key", "normalize_url", "redact_url"]

FINGERPRINT_CHARS = 32
#: Bump when key derivation changes, so old entries simply stop matching.
KEY_VERSION = 1
#: Query parameters never stored, even in the display URL (defensive: keys go in headers).
REDACTED_PARAMS = frozenset({"personal_api_key", "token", "api_key", "key", "password"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def fingerprint(salt: bytes, *secrets: str) -> str:
    """A 32-hex-char HMAC-SHA256 of the secrets under ``salt``: stable for everyone holding
    the salt, useless for recovering the secrets."""
    mac = hmac.new(salt, digestmod=hashlib.sha256)
    for secret in secrets:
        raw = secret.encode()
        mac.update(len(raw).to_bytes(8, "big"))  # length prefix: ("ab","c") != ("a","bc")
        mac.update(raw)
    return mac.hexdigest()[:FINGERPRINT_CHARS]


def make_key(
    *,
    scope: str,
    method: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    body: bytes | None = None,
) -> str:
    """SHA-256 hex of scope (``"<host>|<project>|<fingerprint>"``), method, normalised URL and
    body digest. Headers never take part."""
    material = {
        "v": KEY_VERSION,
        "scope": scope,
        "method": method.upper(),
        "url": normalize_url(url, params),
        "body": _body_digest(body),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
