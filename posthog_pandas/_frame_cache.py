"""The frame cache part: finished DataFrames kept beside the raw pages, their keys, and the
frame options of a call (with the property types PostHog defines, see _property_types).

A rerun of the same call with the same options is a file read. The key names the connection's
scope (host and key fingerprint), the project, what was read and the frame's shape; the
fetcher underneath still caches every page, so a frame that cannot be kept is rebuilt from
cached pages.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd

from posthog_pandas._core import Connection
from posthog_pandas._gc import paused_gc
from posthog_pandas._property_types import PropertyTypes
from posthog_pandas.exceptions import CacheError
from posthog_pandas.frames import FrameOptions

__all__ = ["FRAME_OPTION_NAMES", "FrameCache"]

log = logging.getLogger("posthog_pandas")

FRAME_OPTION_NAMES = ("flatten", "max_depth", "dtype_backend", "dtypes", "raw")


class FrameCache:
    """Finished frames in the store, keyed by what was read; the frame options of a call."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._types = PropertyTypes(conn)

    def frame(
        self,
        key: str | None,
        resource: str,
        options: Mapping[str, Any],
        build: Callable[[], pd.DataFrame],
    ) -> pd.DataFrame:
        """The finished frame from the cache when fresh; else build it and keep a copy."""
        conn = self._conn
        store = conn.store if options.get("cache", True) else None
        try:
            if store is not None and key is not None and not options.get("refresh"):
                cached = store.get_frame(key)
                if cached is not None:
                    conn.fetcher.count_hit()
                    return cached
            with paused_gc():  # see _gc: the collector would re-scan every row many times
                frame = build()
            if store is not None and key is not None:
                try:  # written in the background; the pages are on disk already
                    ttl = conn.fetcher.ttl.frames
                    store.put_frame_soon(key, frame, resource=resource, ttl=ttl)
                except CacheError as exc:
                    # A frame Parquet cannot hold only costs a rebuild from the cached pages.
                    log.warning("not keeping the %s frame in the cache: %s", resource, exc)
            return frame
        finally:
            conn.fetcher.flush()  # every page of this call is on disk when it returns

    def key(
        self, resource: str, params: Mapping[str, Any], options: Mapping[str, Any]
    ) -> str | None:
        """The cache key of a frame (None when the cache is off)."""
        conn = self._conn
        if conn.store is None:
            return None
        shape = {k: options.get(k) for k in FRAME_OPTION_NAMES if options.get(k) is not None}
        blob = orjson.dumps(
            {
                "scope": conn.fetcher.scope,
                "project": conn.project_id,
                "resource": resource,
                "params": params,
                "frame": shape,
                "defaults": repr(conn.frame_options),
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
        return "frame-" + hashlib.sha256(blob).hexdigest()

    def pinned_now(self, params: Mapping[str, Any], refresh: bool) -> datetime:
        """`before` for an open-ended pull, fixed at the first call so cached pages stay valid."""
        now = datetime.now(UTC).replace(microsecond=0)
        store = self._conn.store
        if store is None:
            return now
        key = self.key("events-pin", params, {})
        assert key is not None
        pinned = None if refresh else store.get_json(key)
        if isinstance(pinned, dict) and "before" in pinned:
            return datetime.fromisoformat(pinned["before"])
        ttl = self._conn.fetcher.ttl.queries
        store.put_json(key, {"before": now.isoformat()}, resource="events", ttl=ttl)
        return now

    def options(self, options: Mapping[str, Any], definitions: str | None = None) -> FrameOptions:
        """The connection's frame options with this call's overrides; with `definitions`
        ("person", "event"), the property types PostHog defines for that kind too."""
        defaults = self._conn.frame_options
        changes = {k: options[k] for k in FRAME_OPTION_NAMES if options.get(k) is not None}
        if definitions is not None:
            types = self._types.of(
                definitions, cache=options.get("cache", True), refresh=options.get("refresh", False)
            )
            if types:
                changes["property_types"] = types
        return replace(defaults, **changes) if changes else defaults
