"""kill -9 mid-fetch and mid-export, then a rerun; four processes on one cache directory.

Pulls run in child processes (a small script run with this interpreter). The parent watches the
local server's request log, kills the child with SIGKILL after some pages, and checks that the
rerun requests only the pages the cache does not hold, and returns exactly the server's rows.
Events pulls run one query at a time ("1": each page waits until the one before is cached)
and three windows at once (each window cached on its own, resumed per window).
"""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from posthog_pandas.cache import DB_NAME
from posthog_pandas.server import Faults, LocalPostHog
from tests.reliability.helpers import (
    api_requests,
    assert_cache_holds_only_valid_envelopes,
    cached_pages,
    start_child,
    write_script,
)

pytestmark = pytest.mark.integration

PERSONS, EVENTS = 20_000, 40_000
EVENT_PAGE = 4_000  # keyset page size in the children, so 40,000 events make 10 pages (+1 empty)
# Persons pages in the children grow from 1,000 rows to 2,000 (not 5,000; see _pagination), so
# 20,000 persons make 11 pages and a kill can land between any two of them.
PERSONS_FIRST_PAGE, PERSONS_PAGE = 1_000, 2_000
AFTER, BEFORE = "2024-01-01", "2024-01-31"

PULL = """
import hashlib, json, sys
import posthog_pandas as php
from posthog_pandas import events, resources

url, key, cache, what, target = sys.argv[1:6]
queries = int(sys.argv[6]) if len(sys.argv) > 6 else 3
events.MAX_PAGE_ROWS = {page}
resources.GROWING_PAGES["persons"] = {persons_page}
retry = php.RetrySettings(attempts=10, backoff_factor=0.02, backoff_max=0.2, jitter=0.05)
ph = php.connect(key, host=url, cache_dir=cache, progress=False, dotenv=False, prompt=False,
                 retry=retry, max_concurrent_queries=queries)
if what == "export":
    summary = ph.export("persons", target)
    print(json.dumps({{"rows": summary.rows}}))
    sys.exit(0)
ids = []
if what in ("persons", "both"):
    ids += ph.persons()["id"].tolist()
if what in ("events", "both"):
    ids += ph.events(after="{after}", before="{before}")["uuid"].tolist()
digest = hashlib.sha256("\\n".join(sorted(ids)).encode()).hexdigest()
print(json.dumps({{"rows": len(ids), "unique": len(set(ids)), "digest": digest}}))
"""

# A slow disk: each cached page takes 0.3 s to write, so pages PostHog has answered can still be
# on their way to the cache when the process is killed.
SLOW_DISK = """
import time
from posthog_pandas import cache as _cache
_put = _cache.CacheStore.put
def _slow_put(self, *args, **kwargs):
    time.sleep(0.3)
    _put(self, *args, **kwargs)
_cache.CacheStore.put = _slow_put
"""

# A write that never ends: the child's Nth events page gets stuck in one step of its cache write
# (compressing, which starts as the body arrives, or the SQLite commit) and says so in a file.
STUCK_WRITE = """
import pathlib, time
from posthog_pandas import cache as _cache
_steps = []
def _stuck_here(is_page):
    if is_page:
        _steps.append(1)
        if len(_steps) == {stuck_at}:
            pathlib.Path({flag!r}).touch()
            time.sleep(600)
"""
STUCK_STEPS = {
    "compress": """
_compress = _cache.CacheStore.compress
def _stuck_compress(body):
    _stuck_here(b'"columns"' in body)
    return _compress(body)
_cache.CacheStore.compress = staticmethod(_stuck_compress)
""",
    "commit": """
_put = _cache.CacheStore.put
def _stuck_put(self, key, body, **kwargs):
    _stuck_here(kwargs["resource"] == "query")
    _put(self, key, body, **kwargs)
_cache.CacheStore.put = _stuck_put
""",
}


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=PERSONS, events=EVENTS, seed=13) as server:
        yield server


@pytest.fixture()
def pull_script(scripts: Path) -> Path:
    return write_script(
        scripts,
        "pull.py",
        PULL.format(page=EVENT_PAGE, persons_page=PERSONS_PAGE, after=AFTER, before=BEFORE),
    )


def persons_offsets_requested() -> list[int]:
    """The offsets a whole persons pull asks for: the pages, growing and each starting one
    row early (see _live), up to the first one that is not full, then the look-ahead request
    past it."""
    offsets, offset, limit = [0], 0, PERSONS_FIRST_PAGE
    while True:
        full = PERSONS - offset >= limit
        offset, limit = offset + limit - 1, min(2 * limit, PERSONS_PAGE)
        offsets.append(offset)
        if not full:
            return offsets


def digest(ids: Any) -> str:
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


def expected_ids(server: LocalPostHog, what: str) -> list[str]:
    ids: list[str] = []
    if what in ("persons", "both"):
        ids += server.dataset().persons["id"].astype(str).tolist()
    if what in ("events", "both"):
        ids += server.dataset().events["uuid"].astype(str).tolist()
    return ids


def kill_after(child: subprocess.Popen[str], done: Callable[[], bool], timeout: float = 60) -> None:
    """SIGKILL the child as soon as `done()` holds (checked every 10 ms)."""
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert child.poll() is None, f"the child ended before the kill: {child.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the child never got far enough"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL


def settle(server: LocalPostHog) -> None:
    """Wait until the killed child's last in-flight request (if any) is logged, so that it is
    not counted as the rerun's: the server logs a request when it answers it."""
    seen, quiet_since = len(server.requests), time.monotonic()
    while time.monotonic() - quiet_since < 0.6:
        time.sleep(0.05)
        if len(server.requests) != seen:
            seen, quiet_since = len(server.requests), time.monotonic()


def run_child(script: Path, *args: str) -> dict[str, Any]:
    child = start_child(script, *args)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    assert "database is locked" not in out + err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def answered(server: LocalPostHog, fragment: str) -> int:
    return len([r for r in api_requests(server, fragment) if r.status == 200])


def persons_offsets(urls: list[str]) -> set[str]:
    from urllib.parse import parse_qs, urlsplit

    return {parse_qs(urlsplit(u).query).get("offset", ["0"])[0] for u in urls}


def test_kill_9_mid_persons_fetch_then_the_rerun_requests_only_missing_pages(
    server: LocalPostHog, pull_script: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    server.set_faults(Faults(slow=0.1, paths=("/persons",)))
    child = start_child(pull_script, server.url, server.api_key, str(cache), "persons", "-")
    kill_after(child, lambda: answered(server, "/persons/") >= 8)
    server.set_faults(None)
    settle(server)

    kept = [url for resource, url, _ in cached_pages(cache) if resource == "persons"]
    assert 3 <= len(kept) <= 9  # the kill landed mid-pull (a page or few may be unwritten)
    assert_cache_holds_only_valid_envelopes(cache)
    server.clear_log()
    result = run_child(pull_script, server.url, server.api_key, str(cache), "persons", "-")

    # every page and the look-ahead request past the last; cached pages come from the cache
    everything = {str(offset) for offset in persons_offsets_requested()}
    assert len(everything) == 12
    rerun = [r.params.get("offset", "0") for r in api_requests(server, "/persons/")]
    assert sorted(rerun, key=int) == sorted(everything - persons_offsets(kept), key=int)
    assert api_requests(server, "/users/@me") == []  # the login answer came from the cache
    expected = expected_ids(server, "persons")
    assert result == {"rows": PERSONS, "unique": PERSONS, "digest": digest(expected)}


def test_kill_9_mid_events_fetch_then_the_rerun_requests_only_missing_pages(
    server: LocalPostHog, pull_script: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    pages = EVENTS // EVENT_PAGE + 1
    server.set_faults(Faults(slow=0.1, paths=("/query",)))
    child = start_child(pull_script, server.url, server.api_key, str(cache), "events", "-", "1")
    kill_after(child, lambda: answered(server, "/query/") >= 4)
    server.set_faults(None)
    settle(server)

    kept = [url for resource, url, _ in cached_pages(cache) if resource == "query"]
    assert 1 <= len(kept) <= 5
    server.clear_log()
    result = run_child(pull_script, server.url, server.api_key, str(cache), "events", "-", "1")

    rerun = api_requests(server, "/query/")
    assert len(rerun) == pages - len(kept)
    assert all("(timestamp, uuid) >" in (r.hogql or "") for r in rerun)  # continuations only
    expected = expected_ids(server, "events")
    assert result == {"rows": EVENTS, "unique": EVENTS, "digest": digest(expected)}


def test_kill_9_mid_events_fetch_requests_each_page_exactly_once_in_all(
    server: LocalPostHog, scripts: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    script = write_script(
        scripts,
        "slow_disk_pull.py",
        SLOW_DISK
        + PULL.format(page=EVENT_PAGE, persons_page=PERSONS_PAGE, after=AFTER, before=BEFORE),
    )
    pages = EVENTS // EVENT_PAGE + 1
    answered_before_kill = 4
    # PostHog answers four pages, then holds the fifth request: the kill lands while it waits.
    server.set_faults(Faults(hang_after=answered_before_kill, paths=("/query",)))
    child = start_child(script, server.url, server.api_key, str(cache), "events", "-", "1")
    kill_after(child, lambda: any(r.status == 0 for r in api_requests(server, "/query/")))
    server.set_faults(None)
    settle(server)
    first_run = api_requests(server, "/query/")

    kept = [url for resource, url, _ in cached_pages(cache) if resource == "query"]
    assert len(kept) == answered_before_kill  # every page PostHog answered is on disk
    server.clear_log()
    result = run_child(script, server.url, server.api_key, str(cache), "events", "-", "1")

    rerun = api_requests(server, "/query/")
    assert [r.status for r in first_run] == [200] * answered_before_kill + [0]
    assert [r.status for r in rerun] == [200] * (pages - answered_before_kill)
    assert all("(timestamp, uuid) >" in (r.hogql or "") for r in rerun)
    expected = expected_ids(server, "events")
    assert result == {"rows": EVENTS, "unique": EVENTS, "digest": digest(expected)}


@pytest.mark.parametrize("step", list(STUCK_STEPS))
def test_kill_9_between_a_page_arriving_and_its_write_committing(
    server: LocalPostHog, scripts: Path, pull_script: Path, tmp_path: Path, step: str
) -> None:
    # A page's cache write starts as its body arrives, before the answer is parsed and judged,
    # and commits after. A kill in between must leave no entry for that page, must find no
    # request for the next page sent, and the rerun asks again for that page and those after.
    cache, flag = tmp_path / "cache", tmp_path / "stuck"
    stuck_at = 3
    script = write_script(
        scripts,
        f"stuck_{step}_pull.py",
        STUCK_WRITE.format(stuck_at=stuck_at, flag=str(flag))
        + STUCK_STEPS[step]
        + PULL.format(page=EVENT_PAGE, persons_page=PERSONS_PAGE, after=AFTER, before=BEFORE),
    )
    pages = EVENTS // EVENT_PAGE + 1
    child = start_child(script, server.url, server.api_key, str(cache), "events", "-", "1")
    kill_after(child, flag.exists)
    settle(server)
    first_run = api_requests(server, "/query/")

    assert [r.status for r in first_run] == [200] * stuck_at  # page 4 waited for page 3
    kept = [url for resource, url, _ in cached_pages(cache) if resource == "query"]
    assert len(kept) == stuck_at - 1  # page 3 arrived, but its write never committed
    assert_cache_holds_only_valid_envelopes(cache)
    server.clear_log()
    result = run_child(pull_script, server.url, server.api_key, str(cache), "events", "-", "1")

    rerun = api_requests(server, "/query/")
    assert [r.status for r in rerun] == [200] * (pages - (stuck_at - 1))  # page 3 onwards
    assert all("(timestamp, uuid) >" in (r.hogql or "") for r in rerun)
    expected = expected_ids(server, "events")
    assert result == {"rows": EVENTS, "unique": EVENTS, "digest": digest(expected)}


def test_kill_9_mid_a_concurrent_events_pull_then_the_rerun_requests_only_missing_windows(
    server: LocalPostHog, pull_script: Path, tmp_path: Path
) -> None:
    # Three windows at once; the windows from the 20th on never answer, the ones before do.
    cache, cut = tmp_path / "cache", "2024-01-20T00:00:00Z"
    server.set_faults(Faults(hang_queries_from=cut, paths=("/query/",)))
    child = start_child(pull_script, server.url, server.api_key, str(cache), "events", "-")
    held: list[bool] = []  # the stuck state seen at each check: it must last 0.3 s
    kill_after(
        child,
        lambda: held.append(stuck_on_hung_windows(server, cache)) or held[-30:] == [True] * 30,
    )
    server.set_faults(None)
    settle(server)
    first_run = api_requests(server, "/query/")
    answered_keys = {query_key(r) for r in first_run if r.status == 200}
    hung_keys = {query_key(r) for r in first_run if r.status == 0}
    # the first page, the count and every window before the 20th: each on disk on its own
    assert len(answered_keys) >= 4 and hung_keys
    assert len([u for r, u, _ in cached_pages(cache) if r == "query"]) == len(answered_keys)
    server.clear_log()
    result = run_child(pull_script, server.url, server.api_key, str(cache), "events", "-")

    rerun = api_requests(server, "/query/")
    asked = [query_key(r) for r in rerun]
    assert len(set(asked)) == len(asked) and not set(asked) & answered_keys
    assert hung_keys <= set(asked)  # the hung windows, and those never sent, nothing else
    assert all(rows_start(r) >= pd.Timestamp(cut) for r in rerun)
    expected = expected_ids(server, "events")
    assert result == {"rows": EVENTS, "unique": EVENTS, "digest": digest(expected)}


def stuck_on_hung_windows(server: LocalPostHog, cache: Path) -> bool:
    """A window hangs, and every answered query is in the cache (so nothing is in flight)."""
    if not any(r.status == 0 for r in api_requests(server, "/query/")):
        return False
    try:
        stored = [u for r, u, _ in cached_pages(cache) if r == "query"]
    except sqlite3.OperationalError:  # the child is still creating the cache's tables
        return False
    return len(stored) == answered(server, "/query/")


def query_key(request: Any) -> str:
    return f"{request.hogql} {sorted((request.values or {}).items())}"


def rows_start(request: Any) -> pd.Timestamp:
    values = request.values or {}
    start = pd.Timestamp(values.get("__last_ts") or values["__after"])
    return start if start.tzinfo else start.tz_localize("UTC")


def test_kill_9_mid_export_leaves_no_file_and_the_rerun_completes(
    server: LocalPostHog, pull_script: Path, tmp_path: Path
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    target = out / "persons.csv"
    server.set_faults(Faults(slow=0.1, paths=("/persons",)))
    child = start_child(pull_script, server.url, server.api_key, str(cache), "export", str(target))
    kill_after(child, lambda: answered(server, "/persons/") >= 6)
    server.set_faults(None)
    settle(server)

    assert not target.exists()  # no partial export under the final name
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers == [f".persons.csv.parts-{child.pid}"]  # staging only, under a hidden name
    kept = [url for resource, url, _ in cached_pages(cache) if resource == "persons"]
    assert 2 <= len(kept) <= 7
    server.clear_log()
    result = run_child(pull_script, server.url, server.api_key, str(cache), "export", str(target))

    assert result == {"rows": PERSONS}
    # the pages not cached yet, plus the look-ahead request past the last page
    assert len(api_requests(server, "/persons/")) == len(persons_offsets_requested()) - len(kept)
    written = pd.read_csv(target, usecols=["id"], dtype="string")["id"]
    assert written.is_unique
    assert sorted(written) == sorted(expected_ids(server, "persons"))
    assert sorted(p.name for p in out.iterdir()) == ["persons.csv"]  # the rerun cleaned up


def test_four_processes_pulling_through_one_cache_directory(
    server: LocalPostHog, pull_script: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"
    server.set_faults(Faults(rate_429=0.05, retry_after=1, rate_503=0.05, seed=3))
    children = [
        start_child(pull_script, server.url, server.api_key, str(cache), "both", "-")
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=240) for child in children]
    server.set_faults(None)
    settle(server)

    expected = expected_ids(server, "both")
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert "database is locked" not in out + err
        assert "Traceback" not in err
        result = json.loads(out.strip().splitlines()[-1])
        assert result == {
            "rows": len(expected),
            "unique": len(expected),
            "digest": digest(expected),
        }
    persons_pages = len(persons_offsets_requested()) - 1  # not the request past the end
    assert assert_cache_holds_only_valid_envelopes(cache) >= persons_pages + EVENTS // EVENT_PAGE
    conn = sqlite3.connect(cache / DB_NAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    assert [p.name for p in cache.iterdir() if ".corrupt-" in p.name] == []
