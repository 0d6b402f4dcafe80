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

# One canonical form and one redaction for the whole package: a cache key and a paging marker
# must agree on what "the same URL" is, and a stored URL shows no more than a message does.
from posthog_pandas._urls import canonical_url as normalize_url
from posthog_pandas._urls import redact_url

__all__ = ["fingerprint", "make_key", "normalize_url", "redact_url"]

FINGERPRINT_CHARS = 32
#: Bump when key derivation changes, so old entries simply stop matching.
KEY_VERSION = 1


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
