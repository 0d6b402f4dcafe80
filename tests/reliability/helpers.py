"""Helpers of the reliability suite: connectors, cache inspection from outside, child processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import posthog_pandas as php
from posthog_pandas.cache import DB_NAME, decompress_body
from posthog_pandas.server import LocalPostHog
from tests.conftest import local_connection

ROOT = Path(__file__).resolve().parents[2]
# Backoff small where a test is not about backoff; Retry-After from the server is still honoured.
FAST_RETRY = php.RetrySettings(attempts=8, backoff_factor=0.02, backoff_max=0.2, jitter=0.0)

Connect = Callable[..., php.PostHog]


def connector(server: LocalPostHog, cache_dir: Path | None, **overrides: Any) -> php.PostHog:
    """tests.conftest.local_connection with FAST_RETRY unless `retry=` says otherwise."""
    return local_connection(server, cache_dir, **{"retry": FAST_RETRY, **overrides})


def api_requests(server: LocalPostHog, fragment: str) -> list[Any]:
    """Logged requests whose path contains `fragment` (e.g. "/persons/", "/query/")."""
    return [r for r in server.requests if fragment in r.path]


# -- the cache, read from the outside -----------------------------------------------------------


def cached_pages(cache_dir: Path) -> list[tuple[str, str, bytes]]:
    """(resource, redacted url, decompressed body) of every cached page, read with plain SQLite."""
    path = cache_dir / DB_NAME
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT resource, url, body, raw_size FROM entries WHERE kind = 'page'"
        ).fetchall()
    finally:
        conn.close()
    pages = []
    for resource, url, body, raw_size in rows:
        raw = decompress_body(body, raw_size)  # raises on a damaged body or a wrong length
        pages.append((str(resource), str(url), raw))
    return pages


def assert_cache_holds_only_valid_envelopes(cache_dir: Path) -> int:
    """Every cached page parses as JSON and has the envelope its endpoint promises."""
    pages = cached_pages(cache_dir)
    for resource, url, raw in pages:
        data = orjson.loads(raw)  # raises on anything malformed
        assert isinstance(data, dict), (url, type(data))
        if resource == "query":
            assert isinstance(data.get("results"), list), url
            assert isinstance(data.get("columns"), list), url
            assert all(isinstance(row, list) for row in data["results"]), url
            assert all(len(row) == len(data["columns"]) for row in data["results"]), url
        elif resource != "me":
            assert isinstance(data.get("results"), list), url
            assert all(isinstance(row, dict) for row in data["results"]), url
            assert data.get("next") is None or isinstance(data["next"], str), url
    return len(pages)


# -- child processes ----------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_script(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def start_child(script: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**env),
    )
