"""posthog_pandas.dask on a LocalCluster of two worker processes against the local server:
the same rows and dtypes as ph.events()/ph.query(), no key in the task graph, and never more
than PostHog's 3 queries at once across the workers."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402  (a dask dependency)

import posthog_pandas as php  # noqa: E402
from posthog_pandas.dask import (  # noqa: E402
    Source,
    conform,
    read_events,
    read_hogql,
    time_windows,
)
from posthog_pandas.server import LocalPostHog  # noqa: E402
from posthog_pandas.server.latency import Latency  # noqa: E402
from tests.conftest import local_connection  # noqa: E402

AFTER, BEFORE = "2024-01-01", "2024-01-05"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=60, events=4000, days=10) as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(server: LocalPostHog) -> Iterator[distributed.Client]:
    # Workers find the key as connect() does: here, in the environment they inherit.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=3,
                processes=True,
                dashboard_address=None,
                # Dask's HTTP routes (health, metrics) listen even without a dashboard, by
                # default on 8787: a free port keeps a user's own cluster, or a second run
                # on the machine, from failing this one.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            ) as local,
            distributed.Client(local) as client,
        ):
            yield client


@pytest.fixture
def ph(server: LocalPostHog, tmp_path: Path) -> php.PostHog:
    return local_connection(server, tmp_path / "cache")


def test_read_events_with_columns_equals_ph_events(
    cluster: distributed.Client, ph: php.PostHog
) -> None:
    columns = ["event", "person_id", "properties.$browser"]
    frame = read_events(AFTER, BEFORE, columns=columns, ph=ph)
    assert frame.npartitions == 4  # one per day
    got = frame.compute().reset_index(drop=True)
    want = ph.events(after=AFTER, before=BEFORE, columns=columns)
    pd.testing.assert_frame_equal(got, want)
    assert list(frame.dtypes.items()) == list(want.dtypes.items())  # meta = the real dtypes


def test_read_events_with_every_column_has_one_column_per_defined_property(
    cluster: distributed.Client, ph: php.PostHog
) -> None:
    frame = read_events(AFTER, BEFORE, partition="12h", ph=ph)
    assert frame.npartitions == 8
    got = frame.compute().reset_index(drop=True)
    defined = ph.property_definitions(type="event")["name"]
    assert sorted(c for c in got.columns if c.startswith("properties.")) == sorted(
        f"properties.{name}" for name in defined
    )
    assert got["properties.revenue"].dtype == "Float64"  # Numeric, whatever the rows hold
    want = ph.events(after=AFTER, before=BEFORE)
    pd.testing.assert_frame_equal(got, conform(want, frame._meta).reset_index(drop=True))
    # A property no event of the range set is all missing, not absent.
    unset = [c for c in got.columns if c not in want.columns]
    assert unset and all(got[c].isna().all() for c in unset)


def test_the_task_graph_holds_no_key(ph: php.PostHog, server: LocalPostHog) -> None:
    frame = read_events(AFTER, BEFORE, columns=["event"], ph=ph)
    blob = cloudpickle.dumps(dict(frame.__dask_graph__()))
    assert server.api_key.encode() not in blob
    assert server.api_key[4:].encode() not in blob  # nor the key without its prefix
    assert server.url.encode() in blob  # what workers do get: the host, project and filters


def test_workers_share_posthogs_three_query_slots(
    cluster: distributed.Client, server: LocalPostHog, tmp_path: Path
) -> None:
    ph = local_connection(server, tmp_path / "slots")
    server.latency = Latency(per_query=0.3)  # queries overlap: six threads want a slot each
    server._state.queries.reset_peak()
    try:
        frame = read_events(AFTER, "2024-01-09", partition="12h", columns=["event"], ph=ph)
        got = frame.compute()
    finally:
        server.latency = Latency()
    assert server.query_peak == 3  # three at once, never more (the cluster-wide semaphore)
    assert len(got) == len(ph.events(after=AFTER, before="2024-01-09", columns=["event"]))
    assert not [r for r in server.requests if r.status == 429]


def test_read_hogql_binds_each_window(cluster: distributed.Client, ph: php.PostHog) -> None:
    sql = (
        "select event, count() as n from events "
        "where timestamp >= toDateTime64({after}, 6, 'UTC') "
        "and timestamp < toDateTime64({before}, 6, 'UTC') group by event order by event"
    )
    frame = read_hogql(sql, after=AFTER, before=BEFORE, partition="2d", ph=ph)
    got = frame.compute().reset_index(drop=True)
    halves = [
        ph.query(sql, {"after": f"{a} 00:00:00.000000", "before": f"{b} 00:00:00.000000"})
        for a, b in (("2024-01-01", "2024-01-03"), ("2024-01-03", "2024-01-05"))
    ]
    pd.testing.assert_frame_equal(got, pd.concat(halves, ignore_index=True))
    total = ph.events(after=AFTER, before=BEFORE, columns=["event"])
    assert int(got["n"].sum()) == len(total)


def test_read_hogql_needs_its_window_placeholders(ph: php.PostHog) -> None:
    with pytest.raises(php.ConfigurationError) as info:
        read_hogql("select count() from events", after=AFTER, before=BEFORE, ph=ph)
    assert str(info.value) == (
        "read_hogql needs the placeholder {after} in the query, to bind each partition's "
        "window (UTC text): ... where timestamp >= toDateTime64({after}, 6, 'UTC') and "
        "timestamp < toDateTime64({before}, 6, 'UTC')"
    )


def test_time_windows_cover_the_range_once() -> None:
    windows = time_windows("2024-01-01", "2024-01-02T06:00:00", "12h")
    starts = [(a.isoformat(), b.isoformat()) for a, b in windows]
    assert starts == [
        ("2024-01-01T00:00:00+00:00", "2024-01-01T12:00:00+00:00"),
        ("2024-01-01T12:00:00+00:00", "2024-01-02T00:00:00+00:00"),
        ("2024-01-02T00:00:00+00:00", "2024-01-02T06:00:00+00:00"),
    ]
    with pytest.raises(php.ConfigurationError, match="must be before before"):
        time_windows("2024-01-02", "2024-01-01", "1d")


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ("banana", "partition must be a length of time: a whole number and a unit such as "
         "'1d', '6h', '30min', or a datetime.timedelta; got 'banana'."),
        ("-1d", "partition must not be negative; got '-1d'."),
        ("0D", "partition must be longer than zero; got '0D'."),
    ],
)  # fmt: skip
def test_a_partition_that_is_no_length_of_time_is_refused_saying_why(
    partition: str, message: str
) -> None:
    with pytest.raises(php.ConfigurationError) as info:
        time_windows("2024-01-01", "2024-01-02", partition)
    assert str(info.value) == message


def test_more_partitions_than_posthog_answers_queries_an_hour_are_refused_naming_one_that_fits(
    server: LocalPostHog, ph: php.PostHog
) -> None:
    # A year of one-minute windows: 527,040 partitions, each at least one query.
    sent = len(server.requests)
    with pytest.raises(php.ConfigurationError) as info:
        read_events("2024-01-01", "2025-01-01", partition="1min", ph=ph)
    assert str(info.value) == (
        "partition='1min' cuts [after, before) into 527,040 partitions, each at least one "
        "PostHog query: more than the 2,400 queries an hour PostHog answers a team. Use a "
        "longer partition, such as partition='6h', or pass max_partitions=None to read them all."
    )
    with pytest.raises(
        php.ConfigurationError,
        match=r"into 8 partitions.*more than max_partitions=3\. .*partition='7d'",
    ):
        read_hogql(
            "select count() from events where timestamp >= toDateTime64({after}, 6, 'UTC') "
            "and timestamp < toDateTime64({before}, 6, 'UTC')",
            after=AFTER,
            before=BEFORE,
            partition="12h",
            max_partitions=3,
            ph=ph,
        )
    assert len(server.requests) == sent  # refused before anything was asked of PostHog


def test_filters_posthog_or_the_client_reject_fail_when_the_graph_is_built(
    ph: php.PostHog,
) -> None:
    # Not later, on the workers, once the graph runs: nothing is computed here.
    with pytest.raises(php.QueryError, match="Unable to resolve field: nope_col"):
        read_events(AFTER, BEFORE, where="nope_col = 1", ph=ph)
    with pytest.raises(php.ConfigurationError) as info:
        read_events(AFTER, BEFORE, event=5, ph=ph)  # type: ignore[arg-type]
    assert str(info.value) == "event must be a name or a list of names, got 5."
    with pytest.raises(php.ConfigurationError) as info:
        read_events(AFTER, BEFORE, where=5, ph=ph)  # type: ignore[arg-type]
    assert str(info.value) == "where must be a HogQL condition string."


def test_a_worker_without_a_key_says_where_workers_look_for_one(
    server: LocalPostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = local_connection(server, tmp_path / "driver-cache")  # the key given as an argument
    monkeypatch.delenv("POSTHOG_PERSONAL_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here or above
    with pytest.raises(php.CredentialsError) as info:
        Source.of(driver).connection()  # what a partition does first, on its worker
    message = str(info.value)
    assert message.startswith(
        "posthog_pandas.dask: a worker found no usable key of its own. The driver's key is "
        "never sent to the workers: each finds one as connect() does, in its environment "
        "(POSTHOG_PERSONAL_API_KEY; a LocalCluster's workers inherit the driver's environment "
        "when the cluster starts, or take LocalCluster(env=...)) or in a .env file in its "
        "working directory. On the worker: No PostHog personal API key found."
    )
    assert server.api_key not in message


def test_max_partitions_bounds_the_windows_and_none_lifts_it() -> None:
    assert len(time_windows("2024-01-01", "2024-04-10", "1h")) == 2_400  # exactly the bound
    assert len(time_windows("2024-01-01", "2024-04-11", "1h", max_partitions=None)) == 2_424
    with pytest.raises(php.ConfigurationError, match="into 2,424 partitions"):
        time_windows("2024-01-01", "2024-04-11", "1h")
    for wrong, message in [
        (0, "max_partitions must be at least 1; got 0."),
        (2.5, "max_partitions must be a whole number or None; got 2.5."),
        (True, "max_partitions must be a whole number or None; got True."),
    ]:
        with pytest.raises(php.ConfigurationError) as info:
            time_windows("2024-01-01", "2024-01-02", "1h", max_partitions=wrong)  # type: ignore[arg-type]
        assert str(info.value) == message


def test_without_the_dask_extra_the_error_names_it(
    ph: php.PostHog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(ImportError) as info:
        read_events(AFTER, BEFORE, ph=ph)
    assert 'Install the dask extra: pip install "posthog-pandas[dask]"' in str(info.value)


def test_partitions_connect_with_the_drivers_settings_one_query_at_a_time(
    server: LocalPostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posthog_pandas import dask as ph_dask

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setattr(ph_dask, "_connections", {})
    retry = php.RetrySettings(attempts=2, backoff_factor=0.0)
    driver = php.connect(
        server.api_key,
        host=server.url,
        cache_dir=tmp_path / "cache",
        compression="gzip",  # a loopback host gets plain bodies unless asked
        retry=retry,
        timeout=(3.0, 40.0),
        progress=False,
        prompt=False,
        dotenv=False,
    )
    source = ph_dask.Source.of(driver)
    assert server.api_key not in str(source) and server.api_key.encode() not in (
        cloudpickle.dumps(source)
    )
    frame = read_events(AFTER, BEFORE, columns=["event"], ph=driver)
    got = frame.compute(scheduler="sync").reset_index(drop=True)  # partitions in this process
    pd.testing.assert_frame_equal(got, driver.events(after=AFTER, before=BEFORE, columns=["event"]))
    (worker,) = ph_dask._connections.values()
    assert worker is not driver and worker.request_stats.requests > 0
    assert (worker.settings.compression, worker.settings.retry) == ("gzip", retry)
    assert worker.settings.timeout == (3.0, 40.0)
    # each partition holds one of PostHog's 3 slots, so its pull reads one window at a time
    assert worker.settings.pacing.max_concurrent_queries == 1
    assert driver.settings.pacing.query_slots == 3


class RecordingGate:
    """A re-entrant lock that says whether the calling thread holds it, and how often it was
    taken."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0
        self.entered = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._owner, self._depth = threading.get_ident(), self._depth + 1
        self.entered += 1

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
        self._lock.release()

    def held_here(self) -> bool:
        return self._owner == threading.get_ident()


def test_partitions_decode_and_build_their_pages_one_at_a_time(
    server: LocalPostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's threads decode a page, or build its frame, under one process-wide gate (the
    memory of one page at a time); a connection of your own takes no gate."""
    from posthog_pandas import _http, events
    from posthog_pandas import dask as ph_dask

    gate = RecordingGate()
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setattr(ph_dask, "_connections", {})
    monkeypatch.setattr(ph_dask, "_PARSE_GATE", gate)
    seen: dict[str, list[bool]] = {"decode": [], "build": []}
    recording = threading.Event()

    def spy(kind: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if recording.is_set():
                seen[kind].append(gate.held_here())
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(_http, "_decode_json", spy("decode", _http._decode_json))
    monkeypatch.setattr(events, "page_frame", spy("build", events.page_frame))
    driver = local_connection(server, tmp_path / "cache")
    assert isinstance(driver._conn.http.parse_gate, contextlib.nullcontext)
    frame = read_events(AFTER, BEFORE, ph=driver)
    recording.set()
    got = frame.compute(scheduler="threads", num_workers=3).reset_index(drop=True)
    recording.clear()
    assert len(got) == len(driver.events(after=AFTER, before=BEFORE)) > 0
    assert len(seen["build"]) >= frame.npartitions and all(seen["build"]), seen
    assert seen["decode"] and all(seen["decode"]), seen
    # and more: answers the workers find in the shared cache are decoded under it too
    assert gate.entered >= len(seen["build"]) + len(seen["decode"])
    assert all(w._conn.http.parse_gate is gate for w in ph_dask._connections.values())


def test_a_partition_holds_a_query_slot_only_while_its_query_runs(
    server: LocalPostHog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's 3 slots are shared by every partition: one is held while a query runs,
    not while its frame is built, cached and handed back, when another partition can use it."""
    from posthog_pandas import _http, events
    from posthog_pandas import dask as ph_dask

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setattr(ph_dask, "_connections", {})
    holding: set[int] = set()  # the threads holding a slot
    real_slots = ph_dask.project_slots

    def recorded_slots(source: Any) -> Any:
        take = real_slots(source)

        @contextlib.contextmanager
        def slot() -> Iterator[None]:
            with take():
                holding.add(threading.get_ident())
                try:
                    yield
                finally:
                    holding.discard(threading.get_ident())

        return slot

    monkeypatch.setattr(ph_dask, "project_slots", recorded_slots)
    seen: dict[str, list[bool]] = {"query": [], "build": []}
    send_once, page_frame = _http.HttpClient._send_once, events.page_frame

    def sending(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.rstrip("/").endswith("/query"):
            seen["query"].append(threading.get_ident() in holding)
        return send_once(self, method, url, *args, **kwargs)

    def building(*args: Any, **kwargs: Any) -> Any:
        seen["build"].append(threading.get_ident() in holding)
        return page_frame(*args, **kwargs)

    driver = local_connection(server, tmp_path / "cache")
    frame = read_events(AFTER, BEFORE, columns=["event", "timestamp"], ph=driver)
    monkeypatch.setattr(_http.HttpClient, "_send_once", sending)
    monkeypatch.setattr(events, "page_frame", building)
    got = frame.compute(scheduler="threads", num_workers=3).reset_index(drop=True)
    assert len(seen["query"]) >= frame.npartitions and all(seen["query"]), seen
    assert len(seen["build"]) >= frame.npartitions and not any(seen["build"]), seen
    monkeypatch.undo()
    expected = driver.events(after=AFTER, before=BEFORE, columns=["event", "timestamp"])
    pd.testing.assert_frame_equal(got, expected)
