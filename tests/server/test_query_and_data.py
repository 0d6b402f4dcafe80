"""The /query/ endpoint (shape, errors, 3-query concurrency) and the generated data itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
import pytest
import requests

from posthog_pandas.server import ApiKey, LocalPostHog
from posthog_pandas.server import query as query_module
from posthog_pandas.server.data import generate_dataset, load_duckdb

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    keys = [ApiKey("phx_project_two_key_0000000000000000000000000000", project_ids=(2,))]
    with LocalPostHog(persons=400, events=3000, seed=21, keys=keys) as server:
        yield server


def run_query(srv: LocalPostHog, sql: str, project: int = 1, key: str | None = None) -> Any:
    return requests.post(
        f"{srv.url}/api/projects/{project}/query/",
        json={"query": {"kind": "HogQLQuery", "query": sql}},
        headers={"Authorization": f"Bearer {key or srv.api_key}"},
    )


def test_query_response_shape(srv: LocalPostHog) -> None:
    r = run_query(srv, "SELECT count() FROM events")
    assert r.status_code == 200
    body = r.json()
    assert body["results"] == [[3000]]
    assert body["hasMore"] is False and body["offset"] == 0
    assert body["query"] == {"kind": "HogQLQuery", "query": "SELECT count() FROM events"}
    assert {"columns", "types", "limit", "hogql", "clickhouse", "timings", "modifiers"} <= set(body)
    assert body["is_cached"] is False and body["query_status"] is None


def test_query_errors_are_400_validation_error(srv: LocalPostHog) -> None:
    r = run_query(srv, "SELECT uuid FROM events LIMIT 10 OFFSET 10")
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "validation_error" and body["attr"] is None
    assert body["detail"].startswith("OFFSET is not supported on queries made with a personal")
    r = requests.post(
        f"{srv.url}/api/projects/1/query/",
        json={"query": {"kind": "TrendsQuery", "series": []}},
        headers={"Authorization": f"Bearer {srv.api_key}"},
    )
    assert r.status_code == 400 and r.json()["type"] == "validation_error"


def test_projects_are_isolated(srv: LocalPostHog) -> None:
    two = "phx_project_two_key_0000000000000000000000000000"
    ids1 = set(srv.dataset(1).persons["id"])
    ids2 = set(srv.dataset(2).persons["id"])
    assert not ids1 & ids2
    r = run_query(srv, "SELECT count() FROM persons WHERE id IN (SELECT id FROM persons)", 2, two)
    assert r.json()["results"] == [[400]]
    first = requests.get(
        f"{srv.url}/api/projects/2/persons/?limit=1", headers={"Authorization": f"Bearer {two}"}
    ).json()["results"][0]
    assert first["id"] in ids2
    assert run_query(srv, "SELECT 1", 1, two).status_code == 403


@dataclass
class _FakeResult:
    columns: list[str]
    types: list[str]
    results: list[list[Any]]
    has_more: bool = False
    limit: int = 100
    hogql: str = ""
    clickhouse: str = ""
    paginated: bool = True


class _BlockingEngine:
    entered = threading.Semaphore(0)
    release = threading.Event()

    def __init__(self, conn: object, timezone: str = "UTC") -> None:
        pass

    def run(self, query: str, values: dict[str, Any] | None = None) -> _FakeResult:
        type(self).entered.release()
        type(self).release.wait(20)
        return _FakeResult(["x"], ["Int64"], [[1]])


def test_more_than_three_concurrent_queries_get_429(
    srv: LocalPostHog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_module, "create_engine", _BlockingEngine)
    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()

    def call() -> None:
        r = run_query(srv, "SELECT 1")
        with lock:
            statuses.append(r.status_code)
            bodies.append(r.json())

    first = [threading.Thread(target=call) for _ in range(3)]
    for t in first:
        t.start()
    for _ in range(3):
        assert _BlockingEngine.entered.acquire(timeout=20)
    extra = [threading.Thread(target=call) for _ in range(2)]
    for t in extra:
        t.start()
    for t in extra:
        t.join(20)
    assert statuses == [429, 429]
    assert bodies[0]["code"] == "throttled" and bodies[0]["type"] == "throttled_error"
    assert bodies[0]["detail"].startswith("Exceeded maximum concurrency limit: 3 for key: ")
    _BlockingEngine.release.set()
    for t in first:
        t.join(20)
    assert sorted(statuses) == [200, 200, 200, 429, 429]


def test_same_seed_same_data_and_key() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    a = generate_dataset(1, seed=5, persons=300, events=2000, start=start, days=10)
    b = generate_dataset(1, seed=5, persons=300, events=2000, start=start, days=10)
    c = generate_dataset(1, seed=6, persons=300, events=2000, start=start, days=10)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.persons, b.persons)
    assert a.feature_flags == b.feature_flags and a.session_recordings == b.session_recordings
    assert not a.events["uuid"].equals(c.events["uuid"])
    assert LocalPostHog(seed=5).api_key == LocalPostHog(seed=5).api_key != LocalPostHog().api_key


def test_generated_data_has_the_awkward_cases() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ds = generate_dataset(1, seed=1, persons=2000, events=20000, start=start, days=30)
    ev = ds.events
    assert ev["timestamp"].min() >= pd.Timestamp(start)
    assert ev["timestamp"].max() < pd.Timestamp(start) + pd.Timedelta(days=30)
    assert ev["timestamp"].duplicated().sum() > 10000  # many exact ties
    assert (ev["timestamp"] == ev["timestamp"].dt.floor("s")).all()
    props = ev["properties"].map(orjson.loads)
    late = ev[props.map(lambda p: "late_prop" in p)]
    assert late["timestamp"].min() >= ev["timestamp"].quantile(0.94)
    purchase = props[ev["event"] == "purchase"]
    assert purchase.map(lambda p: isinstance(p["revenue"], float)).all()
    assert not props[ev["event"] != "purchase"].map(lambda p: "revenue" in p).any()
    assert props[ev["event"] == "$identify"].map(lambda p: isinstance(p["$set"], dict)).all()
    assert props.map(lambda p: isinstance(p.get("tags"), list)).any()
    person_props = ds.persons["properties"]
    kinds = {type(p["ab_score"]) for p in person_props}
    assert kinds == {int, str, bool}
    names = {p.get("name") for p in person_props}
    assert "Zoë Ångström" in names and "李雷" in names
    assert person_props.map(lambda p: "email" not in p).any()
    assert person_props.map(lambda p: "lat" in p.get("address", {}).get("geo", {})).any()
    assert set(ds.person_distinct_ids["person_id"]) == set(ds.persons["id"])
    assert ev["distinct_id"].isin(ds.person_distinct_ids["distinct_id"]).all()
    pdi = ds.person_distinct_ids
    lookup = dict(zip(pdi["distinct_id"], pdi["person_id"], strict=True))
    assert (ev["distinct_id"].map(lookup) == ev["person_id"]).all()


def test_generated_persons_agree_with_their_events(srv: LocalPostHog) -> None:
    """Created before anything they did: no event, last_seen_at, first_seen or recording
    before created_at; the $identify events' $set carries the same first_seen."""
    ds = srv.dataset()
    created = ds.persons.set_index("id")["created_at"]
    first_event = ds.events.groupby("person_id")["timestamp"].min()
    assert (first_event >= created[first_event.index]).all()
    first_seen = pd.to_datetime(ds.persons["properties"].map(lambda p: p["first_seen"]), utc=True)
    assert (first_seen.to_numpy() <= ds.persons["created_at"].to_numpy()).all()
    page = requests.get(
        f"{srv.url}/api/projects/1/persons/?limit=1000",
        headers={"Authorization": f"Bearer {srv.api_key}"},
    ).json()["results"]
    seen = [(p["created_at"], p["last_seen_at"]) for p in page if p["last_seen_at"]]
    assert seen and all(last >= made for made, last in seen)  # ISO Z text sorts as time
    by_id = ds.persons.set_index("id")["properties"]
    sets = ds.events.loc[ds.events["event"] == "$identify", ["person_id", "properties"]]
    for pid, text in sets.itertuples(index=False):
        assert orjson.loads(text)["$set"]["first_seen"] == by_id[pid]["first_seen"]
    for recording in ds.session_recordings:
        assert recording["start_time"] >= recording["person"]["created_at"]


def test_property_definitions_agree_with_the_data(srv: LocalPostHog) -> None:
    """Each defined type fits every value of its property (ab_score mixes on purpose: its
    definition is the type of a first value, as PostHog's is)."""
    ds = srv.dataset()
    fits = {
        "DateTime": lambda v: isinstance(v, str) and bool(datetime.fromisoformat(v)),
        "Numeric": lambda v: type(v) in (int, float),
        "Boolean": lambda v: type(v) is bool,
        "String": lambda v: isinstance(v, str),
    }
    values = {
        "person": [dict(p) for p in ds.persons["properties"]],
        "event": [orjson.loads(p) for p in ds.events["properties"]],
    }
    for definition in ds.property_definitions:
        kind, name, ptype = definition["type"], definition["name"], definition["property_type"]
        if kind not in values or ptype is None:
            continue
        seen = [p[name] for p in values[kind] if p.get(name) is not None]
        assert seen, name
        fitting = [fits[ptype](v) for v in seen]
        assert all(fitting) or (name == "ab_score" and any(fitting)), (kind, name, ptype)


def test_duckdb_tables_have_the_agreed_schema() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ds = generate_dataset(1, seed=2, persons=100, events=500, start=start, days=5)
    conn = load_duckdb(ds)
    schema = {
        t: [(c[0], c[1]) for c in conn.execute(f"DESCRIBE {t}").fetchall()]
        for t in ("events", "persons", "person_distinct_ids", "groups", "cohort_people")
    }
    tz = "TIMESTAMP WITH TIME ZONE"
    assert schema == {
        "events": [("uuid", "VARCHAR"), ("event", "VARCHAR"), ("distinct_id", "VARCHAR"),
                   ("timestamp", tz), ("properties", "VARCHAR"), ("elements_chain", "VARCHAR"),
                   ("created_at", tz), ("person_id", "VARCHAR")],
        "persons": [("id", "VARCHAR"), ("created_at", tz), ("properties", "VARCHAR"),
                    ("is_identified", "BOOLEAN")],
        "person_distinct_ids": [("distinct_id", "VARCHAR"), ("person_id", "VARCHAR")],
        "groups": [("group_type_index", "INTEGER"), ("group_key", "VARCHAR"),
                   ("group_properties", "VARCHAR"), ("created_at", tz)],
        "cohort_people": [("cohort_id", "INTEGER"), ("person_id", "VARCHAR")],
    }  # fmt: skip
    assert conn.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (500,)
    assert conn.execute("SELECT count(*) FROM cohort_people").fetchone() == (len(ds.cohort_people),)


def test_cli_serve_prints_url_and_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from posthog_pandas import cli

    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_wait_forever", interrupt)
    assert cli.main(["serve", "--persons", "50", "--events", "100", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "Project id: 1" in out
    assert LocalPostHog(seed=3).api_key in out
    assert cli.main([]) == 2
