"""The property definitions part: PostHog's types of event and person properties.

PostHog keeps a definition of every property it has seen (`property_definitions/`), with a
`property_type` (DateTime, Numeric, Boolean, String, Duration) it detected from the first
value, or that a user set. The frames type a `properties.<key>` column by it (see frames.py)
instead of guessing from the values. The definitions of a kind are read once per connection
(every page, cached on disk like any list); a key that may not read them (a 403: no
`property_definition:read`) or a PostHog without the endpoint (404) gives no definitions, and
the frames fall back to typing by value, silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from posthog_pandas._core import Connection
from posthog_pandas.exceptions import NotFoundError, PermissionDeniedError
from posthog_pandas.frames import PROPERTY_TYPES

__all__ = ["DEFINITIONS_PAGE", "PropertyTypes"]

log = logging.getLogger("posthog_pandas")

# Rows asked for a page: the list is paged by DRF's LimitOffsetPagination with no max_limit,
# so a big project's thousands of definitions take a few requests instead of dozens.
DEFINITIONS_PAGE = 1000
_NONE: Mapping[str, str] = MappingProxyType({})


class PropertyTypes:
    """{property name: property_type} of each kind ("event", "person"), read once."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[str, Mapping[str, str]] = {}
        self._lock = threading.Lock()

    def of(self, kind: str, *, cache: bool = True, refresh: bool = False) -> Mapping[str, str]:
        """The definitions of `kind`; `refresh` reads them again."""
        with self._lock:
            if refresh or kind not in self._known:
                self._known[kind] = self._read(kind, cache=cache, refresh=refresh)
            return self._known[kind]

    def _read(self, kind: str, *, cache: bool, refresh: bool) -> Mapping[str, str]:
        conn = self._conn
        if conn.legacy:  # old PostHog has no definitions endpoint
            return _NONE
        try:
            pages = conn.iter_pages(
                conn.project_path("property_definitions"),
                {"type": kind, "limit": DEFINITIONS_PAGE},
                resource="property_definitions",
                cache=cache,
                refresh=refresh,
                progress=False,
            )
            return MappingProxyType(
                {
                    row["name"]: row["property_type"]
                    for page in pages
                    for row in page.results
                    if _usable(row)
                }
            )
        except (PermissionDeniedError, NotFoundError) as exc:
            log.info("no %s property definitions (%s): typing properties by value", kind, exc)
            return _NONE
        finally:
            conn.fetcher.flush()


def _usable(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("name"), str)
        and row.get("property_type") in PROPERTY_TYPES
    )
