"""Generated demo data of one local project: persons, events, groups, and their DuckDB tables."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from posthog_pandas.server.catalog import build_catalog
from posthog_pandas.server.ids import stable_uuid, uuid_strings

__all__ = [
    "Dataset",
    "ProjectStore",
    "generate_dataset",
    "ingested_events",
    "load_duckdb",
    "new_persons",
    "uuid_strings",
]

T = TypeVar("T")

EVENT_NAMES = ("$pageview", "$autocapture", "$pageleave", "signed_up", "purchase", "$identify")
_EVENT_WEIGHTS = (0.45, 0.25, 0.15, 0.04, 0.06, 0.05)
_BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Opera")
_OSES = ("Mac OS X", "Windows", "Linux", "iOS", "Android")
_URLS = (
    "https://example.com/",
    "https://example.com/pricing",
    "https://example.com/docs/getting-started",
    "https://example.com/blog/pandas-and-posthog?ref=newsletter",
    "https://example.com/signup",
    "https://example.com/checkout?plan=pro",
    "https://example.com/produits/café",
)
_TAGS: tuple[list[str], ...] = (["beta"], ["beta", "mobile"], ["promo", "spring-sale"], [])
_PLANS = ("free", "pro", "enterprise")
_CITIES = (
    ("Berlin", 52.52, 13.405),
    ("São Paulo", -23.5505, -46.6333),
    ("Tokyo", 35.6762, 139.6503),
    ("New York", 40.7128, -74.006),
    ("Zürich", 47.3769, 8.5417),
)
_FIRST = ("Ada", "Grace", "Alan", "Zoë", "Lei", "Björn", "Amélie", "Kofi", "Priya", "Mateo")
_LAST = ("Lovelace", "Hopper", "Turing", "Ångström", "Li", "Søndergaard", "Poulain", "Mensah")
_UNICODE_NAMES = ("Zoë Ångström", "李雷", "Renée Müller", "Иван Петров", "José Núñez")
_AUTOCAPTURE_CHAIN = (
    'button.btn.btn-primary:text="Sign up"nth-child="2"nth-of-type="1"attr__id="cta"'
)
_ORG_INDUSTRIES = ("fintech", "health", "retail", "education", "media")


@dataclass
class Dataset:
    """Everything generated for one project; frames match the DuckDB tables row for row."""

    project_id: int
    seed: int
    start: datetime
    days: int
    persons: pd.DataFrame  # id, numeric_id, created_at, is_identified, properties, distinct_ids
    person_distinct_ids: pd.DataFrame  # distinct_id, person_id
    events: pd.DataFrame  # uuid, event, distinct_id, timestamp, properties (JSON), ...
    groups: pd.DataFrame  # group_type_index, group_key, group_properties (dict), created_at
    cohort_people: pd.DataFrame  # cohort_id, person_id
    timezone: str = "UTC"  # the project's Team.timezone (insights count its local days)
    group_types: list[dict[str, Any]] = field(default_factory=list)
    cohorts: list[dict[str, Any]] = field(default_factory=list)
    feature_flags: list[dict[str, Any]] = field(default_factory=list)
    insights: list[dict[str, Any]] = field(default_factory=list)
    dashboards: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    event_definitions: list[dict[str, Any]] = field(default_factory=list)
    property_definitions: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    session_recordings: list[dict[str, Any]] = field(default_factory=list)
    # Results to serve for an insight instead of computing its query (a test's stand-in, e.g.
    # None for "computes to nothing"); others are computed (insights/saved.py) when a request
    # asks, since PostHog keeps no result for an insight nobody computed.
    insight_results: dict[int, Any] = field(default_factory=dict)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _strings(values: Any, order: np.ndarray | None = None) -> Any:
    """A pandas "string" array built through Arrow in one C pass (pd.array on objects checks
    every value in Python)."""
    arr = pa.array(values, type=pa.string())
    if order is not None:
        arr = arr.take(pa.array(order))
    return arr.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get).array


def _to_utc(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True)).astype("datetime64[ns, UTC]")


def _person_properties(
    rng: np.random.Generator, n: int, identified: np.ndarray, start_s: int
) -> list[dict[str, Any]]:
    """Person property dicts: unicode names, nesting, missing keys and a mixed-type key."""
    r = rng.random((n, 8))
    first = rng.integers(0, len(_FIRST), n).tolist()
    last = rng.integers(0, len(_LAST), n).tolist()
    uni = rng.integers(0, len(_UNICODE_NAMES), n).tolist()
    browser = rng.integers(0, len(_BROWSERS), n).tolist()
    plan = rng.choice(3, n, p=(0.6, 0.3, 0.1)).tolist()
    city = rng.integers(0, len(_CITIES), n).tolist()
    jitter = np.round(rng.normal(0, 0.05, (n, 2)), 4).tolist()
    ints = rng.integers(0, 100, n).tolist()
    first_seen = (start_s - rng.integers(0, 400 * 86400, n)).tolist()
    props: list[dict[str, Any]] = []
    for i in range(n):
        ri = r[i]
        p: dict[str, Any] = {}
        name = _UNICODE_NAMES[uni[i]] if ri[0] < 0.15 else f"{_FIRST[first[i]]} {_LAST[last[i]]}"
        if identified[i] and ri[1] < 0.9:
            p["email"] = f"user{i}@example.com" if ri[0] >= 0.15 else f"intl{i}@例え.jp"
        if ri[2] < 0.85:
            p["name"] = name
        p["$browser"] = _BROWSERS[browser[i]]
        p["plan"] = _PLANS[plan[i]]
        if ri[3] < 0.8:
            c = _CITIES[city[i]]
            lat, lng = round(c[1] + jitter[i][0], 4), round(c[2] + jitter[i][1], 4)
            p["address"] = {"city": c[0], "geo": {"lat": lat, "lng": lng}}
        if ri[4] < 0.5:
            p["signup_count"] = ints[i] % 7
        if ri[5] < 1 / 3:
            p["ab_score"] = ints[i]
        elif ri[5] < 2 / 3:
            p["ab_score"] = f"variant-{ints[i] % 3}"
        else:
            p["ab_score"] = bool(ints[i] % 2)
        if ri[6] < 0.3:
            p["is_beta"] = bool(ri[7] < 0.5)
        p["first_seen"] = datetime.fromtimestamp(first_seen[i], UTC).isoformat()
        props.append(p)
    return props


def _persons(
    rng: np.random.Generator, n: int, start_s: int, days: int
) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Persons frame, the flat list of distinct ids and each person's offset into it."""
    ids, _ = uuid_strings(rng, n)
    # Few distinct seconds, so `created_at` ties are common at page boundaries.
    secs = rng.integers(start_s - 60 * 86400, start_s + days * 86400, max(1, n // 3))
    created = secs[rng.integers(0, len(secs), n)]
    identified = rng.random(n) < 0.7
    counts = rng.integers(1, 4, n)
    anon, _ = uuid_strings(rng, int(counts.sum()))
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    distinct_ids: list[list[str]] = []
    flat: list[str] = []
    for i, (off, k) in enumerate(zip(offsets.tolist(), counts.tolist(), strict=True)):
        dids = anon[off : off + k]
        if identified[i]:
            dids = [*dids[:-1], f"user_{i}"]
        distinct_ids.append(dids)
        flat.extend(dids)
    props = _person_properties(rng, n, identified, start_s)
    frame = pd.DataFrame(
        {
            "id": _strings(ids),
            "numeric_id": pd.array(np.arange(1, n + 1), dtype="Int64"),
            "created_at": _to_utc(created),
            "is_identified": pd.array(identified, dtype="boolean"),
            "properties": pd.Series(props, dtype=object),
            "distinct_ids": pd.Series(distinct_ids, dtype=object),
        }
    )
    return frame, flat, offsets


def _event_properties(
    rng: np.random.Generator,
    names: np.ndarray,
    person_idx: np.ndarray,
    ts: np.ndarray,
    person_props: list[dict[str, Any]],
) -> list[str]:
    """Per-event properties JSON text, assembled from pre-encoded fragments (fast path)."""
    n = len(names)
    urls = [_dumps(u) for u in _URLS]
    browsers = [_dumps(b) for b in _BROWSERS]
    oses = [_dumps(o) for o in _OSES]
    url_i = rng.integers(0, len(_URLS), n).tolist()
    br_i = rng.integers(0, len(_BROWSERS), n).tolist()
    os_i = rng.integers(0, len(_OSES), n).tolist()
    extra = np.full(n, "", dtype=object)
    purchase = np.flatnonzero(names == EVENT_NAMES.index("purchase"))
    revenue = np.round(rng.gamma(2.0, 25.0, len(purchase)), 2).tolist()
    extra[purchase] = [f',"revenue":{r!r}' for r in revenue]
    identify = np.flatnonzero(names == EVENT_NAMES.index("$identify"))
    sets = [_dumps(p) for p in person_props]
    extra[identify] += [f',"$set":{sets[p]}' for p in person_idx[identify].tolist()]
    tagged = np.flatnonzero(rng.random(n) < 0.2)
    tags = [_dumps(t) for t in _TAGS]
    extra[tagged] += [f',"tags":{tags[t]}' for t in rng.integers(0, len(_TAGS), len(tagged))]
    late = np.flatnonzero(ts >= np.quantile(ts, 0.95)) if n else np.array([], dtype=int)
    extra[late] += [f',"late_prop":"v{v}"' for v in rng.integers(0, 5, len(late)).tolist()]
    return [
        f'{{"$current_url":{urls[u]},"$browser":{browsers[b]},"$os":{oses[o]}{x}}}'
        for u, b, o, x in zip(url_i, br_i, os_i, extra.tolist(), strict=True)
    ]


def _created_by_first_event(persons: pd.DataFrame, person_idx: np.ndarray, ts: np.ndarray) -> None:
    """Make the persons consistent with their events, in place: a person is created no later
    than its first event (so `last_seen_at`, the last one, never precedes `created_at`), and
    its `first_seen` property is no later than its creation. Only the values that broke these
    rules change; no random draw is added, so every other generated value stays the same."""
    if not len(person_idx):
        return
    first = np.full(len(persons), np.iinfo(np.int64).max)
    np.minimum.at(first, person_idx, ts)
    created = persons["created_at"].astype("int64").to_numpy() // 1_000_000_000  # ns -> s
    created = np.minimum(created, first)
    persons["created_at"] = _to_utc(created)
    for props, at in zip(persons["properties"], created.tolist(), strict=True):
        seen = datetime.fromisoformat(props["first_seen"])
        if seen.timestamp() > at:
            props["first_seen"] = datetime.fromtimestamp(at, UTC).isoformat()


def _events(
    rng: np.random.Generator,
    n: int,
    persons: pd.DataFrame,
    flat_dids: list[str],
    offsets: np.ndarray,
    start_s: int,
    days: int,
) -> pd.DataFrame:
    """Events sorted by (timestamp, uuid); timestamps at second resolution with many ties."""
    n_persons = len(persons)
    uuids, raw = uuid_strings(rng, n)
    secs = rng.integers(start_s, start_s + days * 86400, max(1, n // 4))
    ts = secs[rng.integers(0, len(secs), n)]
    # Heavy-tailed activity: a few persons produce many events, some none.
    weights = rng.pareto(1.5, n_persons) + 0.05
    person_idx = rng.choice(n_persons, n, p=weights / weights.sum())
    counts = np.array([len(d) for d in persons["distinct_ids"]])
    did_idx = offsets[person_idx] + (rng.random(n) * counts[person_idx]).astype(np.int64)
    names = rng.choice(len(EVENT_NAMES), n, p=_EVENT_WEIGHTS)
    _created_by_first_event(persons, person_idx, ts)  # before `$set` copies the properties
    props = _event_properties(rng, names, person_idx, ts, list(persons["properties"]))
    created = ts + rng.integers(0, 5, n)
    hi = raw[:, :8].copy().view(">u8").ravel()
    lo = raw[:, 8:].copy().view(">u8").ravel()
    order = np.lexsort((lo, hi, ts))
    names_arr = np.array(EVENT_NAMES, dtype=object)[names]
    chain = np.where(names == EVENT_NAMES.index("$autocapture"), _AUTOCAPTURE_CHAIN, "")
    dids = np.array(flat_dids, dtype=object)[did_idx]
    pids = persons["id"].to_numpy(dtype=object)[person_idx]
    return pd.DataFrame(
        {
            "uuid": _strings(uuids, order),
            "event": _strings(names_arr, order),
            "distinct_id": _strings(dids, order),
            "timestamp": _to_utc(ts[order]),
            "properties": _strings(props, order),
            "elements_chain": _strings(chain.astype(object), order),
            "created_at": _to_utc(created[order]),
            "person_id": _strings(pids, order),
        }
    )


def _groups(rng: np.random.Generator, n_persons: int, start_s: int) -> pd.DataFrame:
    """Two group types: 0 organization, 1 company."""
    rows: list[tuple[int, str, dict[str, Any], int]] = []
    n_org, n_co = max(5, n_persons // 10), max(3, n_persons // 20)
    secs = rng.integers(start_s - 120 * 86400, start_s, max(1, (n_org + n_co) // 2))
    created = secs[rng.integers(0, len(secs), n_org + n_co)].tolist()
    ind = rng.integers(0, len(_ORG_INDUSTRIES), n_org + n_co).tolist()
    size = rng.integers(1, 5000, n_org + n_co).tolist()
    for i in range(n_org):
        props = {"name": f"Org {i}", "industry": _ORG_INDUSTRIES[ind[i]], "employees": size[i]}
        rows.append((0, f"org-{i}", props, created[i]))
    for j in range(n_co):
        k = n_org + j
        props = {"name": f"Company {j} GmbH", "domain": f"company{j}.example", "seats": size[k]}
        rows.append((1, f"company:{j}", props, created[k]))
    return pd.DataFrame(
        {
            "group_type_index": pd.array([r[0] for r in rows], dtype="Int64"),
            "group_key": pd.array([r[1] for r in rows], dtype="string"),
            "group_properties": pd.Series([r[2] for r in rows], dtype=object),
            "created_at": _to_utc(np.array([r[3] for r in rows], dtype=np.int64)),
        }
    )


def generate_dataset(
    project_id: int,
    *,
    seed: int,
    persons: int,
    events: int,
    start: datetime,
    days: int,
    timezone: str = "UTC",
) -> Dataset:
    """Deterministic data for one project: the same (seed, project_id) gives the same rows
    whatever its timezone (only the insights' local-day counts depend on it)."""
    rng = np.random.default_rng([seed, project_id])
    start_s = int(start.timestamp())
    people, flat, offsets = _persons(rng, max(1, persons), start_s, days)
    pdi = pd.DataFrame(
        {
            "distinct_id": _strings(flat),
            "person_id": _strings(
                np.repeat(people["id"].to_numpy(dtype=object), people["distinct_ids"].map(len))
            ),
        }
    )
    ev = _events(rng, events, people, flat, offsets, start_s, days)
    groups = _groups(rng, len(people), start_s)
    ds = Dataset(
        project_id=project_id,
        seed=seed,
        start=start,
        days=days,
        persons=people,
        person_distinct_ids=pdi,
        events=ev,
        groups=groups,
        cohort_people=pd.DataFrame(
            {"cohort_id": pd.array([], dtype="Int64"), "person_id": pd.array([], dtype="string")}
        ),
        timezone=timezone,
    )
    build_catalog(ds, rng)
    return ds


def new_persons(
    first_numeric_id: int,
    count: int,
    *,
    created_at: datetime,
    properties: dict[str, Any] | None,
    seed: int,
    project_id: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`count` persons shaped like the generated ones (and their distinct ids), for
    `ProjectStore.add_persons`: anonymous, one distinct id each, the same `created_at`."""
    numeric = list(range(first_numeric_id, first_numeric_id + count))
    ids = [stable_uuid("created-person", seed, project_id, n) for n in numeric]
    dids = [f"created-{project_id}-{n}" for n in numeric]
    persons = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="string"),
            "numeric_id": pd.array(numeric, dtype="Int64"),
            "created_at": pd.Series([created_at] * count, dtype="datetime64[ns, UTC]"),
            "is_identified": pd.array([False] * count, dtype="boolean"),
            "properties": pd.Series([dict(properties or {}) for _ in numeric], dtype=object),
            "distinct_ids": pd.Series([[d] for d in dids], dtype=object),
        }
    )
    distinct_ids = pd.DataFrame(
        {"distinct_id": pd.array(dids, dtype="string"), "person_id": pd.array(ids, dtype="string")}
    )
    return persons, distinct_ids


_EVENT_COLUMNS = (
    "uuid",
    "event",
    "distinct_id",
    "timestamp",
    "properties",
    "elements_chain",
    "created_at",
    "person_id",
)


def ingested_events(events: Sequence[Mapping[str, Any]], ds: Dataset) -> pd.DataFrame:
    """Events given as dicts ({event, distinct_id, timestamp, properties?, uuid?}) as a frame
    shaped like `Dataset.events`: person from the distinct id, created_at now."""
    pdi = ds.person_distinct_ids
    persons = dict(zip(pdi["distinct_id"], pdi["person_id"], strict=True))
    now = datetime.now(UTC)
    rows = []
    for e in events:
        did = str(e["distinct_id"])
        stamp = pd.Timestamp(e["timestamp"])
        rows.append(
            {
                "uuid": str(e.get("uuid") or uuid.uuid4()),
                "event": str(e["event"]),
                "distinct_id": did,
                "timestamp": stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp,
                "properties": _dumps(e.get("properties") or {}),
                "elements_chain": "",
                "created_at": now,
                "person_id": persons.get(did) or stable_uuid("person", did),
            }
        )
    frame = pd.DataFrame(rows, columns=list(_EVENT_COLUMNS))
    for column in ("timestamp", "created_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
    for column in ("uuid", "event", "distinct_id", "properties", "elements_chain", "person_id"):
        frame[column] = frame[column].astype("string")
    return frame


# The tables the HogQL engine (hogql.py) knows; its tests build the same ones from here.
TABLES_DDL = """
SET TimeZone = 'UTC';
CREATE TABLE events(uuid VARCHAR, event VARCHAR, distinct_id VARCHAR, timestamp TIMESTAMPTZ,
    properties VARCHAR, elements_chain VARCHAR, created_at TIMESTAMPTZ, person_id VARCHAR);
CREATE TABLE persons(id VARCHAR, created_at TIMESTAMPTZ, properties VARCHAR,
    is_identified BOOLEAN);
CREATE TABLE person_distinct_ids(distinct_id VARCHAR, person_id VARCHAR);
CREATE TABLE groups(group_type_index INTEGER, group_key VARCHAR, group_properties VARCHAR,
    created_at TIMESTAMPTZ);
CREATE TABLE cohort_people(cohort_id INTEGER, person_id VARCHAR);
"""


def _arrow_ts(s: pd.Series) -> pa.Array:
    return pa.array(s.to_numpy(dtype="datetime64[us]"), type=pa.timestamp("us", tz="UTC"))


def _arrow_str(values: Any) -> pa.Array:
    if isinstance(values, pd.Series):
        return pa.array(values)  # zero-copy when pandas stores the strings in Arrow
    return pa.array(list(values), type=pa.string())


def _events_table(e: pd.DataFrame) -> pa.Table:
    """Rows of `Dataset.events` as the Arrow table loaded into DuckDB's `events`."""
    return pa.table(
        {
            "uuid": _arrow_str(e["uuid"]),
            "event": _arrow_str(e["event"]),
            "distinct_id": _arrow_str(e["distinct_id"]),
            "timestamp": _arrow_ts(e["timestamp"]),
            "properties": _arrow_str(e["properties"]),
            "elements_chain": _arrow_str(e["elements_chain"]),
            "created_at": _arrow_ts(e["created_at"]),
            "person_id": _arrow_str(e["person_id"]),
        }
    )


def load_duckdb(ds: Dataset) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB holding the five tables the HogQL engine reads."""
    conn = duckdb.connect(":memory:")
    conn.execute(TABLES_DDL)
    events_t = _events_table(ds.events)
    p = ds.persons
    persons_t = pa.table(
        {
            "id": _arrow_str(p["id"]),
            "created_at": _arrow_ts(p["created_at"]),
            "properties": _arrow_str(_dumps(x) for x in p["properties"]),
            "is_identified": pa.array(p["is_identified"].to_numpy(dtype=bool)),
        }
    )
    pdi_t = pa.table(
        {
            "distinct_id": _arrow_str(ds.person_distinct_ids["distinct_id"]),
            "person_id": _arrow_str(ds.person_distinct_ids["person_id"]),
        }
    )
    g = ds.groups
    groups_t = pa.table(
        {
            "group_type_index": pa.array(g["group_type_index"].to_numpy(dtype=np.int32)),
            "group_key": _arrow_str(g["group_key"]),
            "group_properties": _arrow_str(_dumps(x) for x in g["group_properties"]),
            "created_at": _arrow_ts(g["created_at"]),
        }
    )
    cp_t = pa.table(
        {
            "cohort_id": pa.array(ds.cohort_people["cohort_id"].to_numpy(dtype=np.int32)),
            "person_id": _arrow_str(ds.cohort_people["person_id"]),
        }
    )
    for name, table in (
        ("events", events_t),
        ("persons", persons_t),
        ("person_distinct_ids", pdi_t),
        ("groups", groups_t),
        ("cohort_people", cp_t),
    ):
        conn.register("_load", table)
        conn.execute(f"INSERT INTO {name} SELECT * FROM _load")
        conn.unregister("_load")
    return conn


class ProjectStore:
    """One project's dataset and DuckDB connection, built once on first use.

    The data is live: `add_persons` / `delete_persons` change the tables while the server
    runs (as ingestion and merges do in PostHog), and every derived value is rebuilt after.
    """

    def __init__(
        self,
        project_id: int,
        *,
        seed: int,
        persons: int,
        events: int,
        start: datetime,
        days: int,
        timezone: str = "UTC",
    ) -> None:
        self.project_id = project_id
        self.timezone = timezone
        self._seed, self._persons, self._events = seed, persons, events
        self._start, self._days = start, days
        self._lock = threading.Lock()
        self._dataset: Dataset | None = None
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._cache: dict[str, tuple[int, Any]] = {}
        self._version = 0  # bumped by every write; derived values of older versions are dropped
        # insight id -> (result, last_refresh): what PostHog's insight cache would hold
        self.insight_cache: dict[int, tuple[Any, datetime]] = {}

    def cached(self, name: str, build: Callable[[], T]) -> T:
        """A value derived from the dataset (serialized rows, indexes), computed once per
        version of the data."""
        version = self._version
        hit = self._cache.get(name)
        if hit is not None and hit[0] == version:
            return cast(T, hit[1])
        value = build()
        with self._lock:
            if self._version == version:  # else built from data that changed meanwhile
                self._cache[name] = (version, value)
        return value

    def add_persons(self, persons: pd.DataFrame, distinct_ids: pd.DataFrame) -> None:
        """Insert persons (frames shaped like `Dataset.persons` / `person_distinct_ids`).

        The dataset is updated before the tables, so a list that reads a new id from DuckDB
        always finds its row."""
        ds = self.dataset
        with self._lock:
            ds.persons = pd.concat([ds.persons, persons], ignore_index=True)
            ds.person_distinct_ids = pd.concat(
                [ds.person_distinct_ids, distinct_ids], ignore_index=True
            )
            self._version += 1
            self._cache.clear()
        cur = self.cursor()
        try:
            cur.executemany(
                "INSERT INTO persons VALUES (?, ?, ?, ?)",
                [
                    [pid, created.to_pydatetime(), _dumps(props), bool(ident)]
                    for pid, created, props, ident in zip(
                        persons["id"], persons["created_at"], persons["properties"],
                        persons["is_identified"], strict=True,
                    )
                ],
            )  # fmt: skip
            cur.executemany(
                "INSERT INTO person_distinct_ids VALUES (?, ?)",
                distinct_ids[["distinct_id", "person_id"]].values.tolist(),
            )
        finally:
            cur.close()

    def delete_persons(self, ids: list[str]) -> None:
        """Remove persons (a deletion, or the loser of a merge). The tables change before the
        dataset, so a list never reads an id whose row is gone."""
        cur = self.cursor()
        try:
            for table, column in (("persons", "id"), ("person_distinct_ids", "person_id")):
                cur.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?))", [ids])
        finally:
            cur.close()
        ds = self.dataset
        with self._lock:
            ds.persons = ds.persons[~ds.persons["id"].isin(ids)].reset_index(drop=True)
            pdi = ds.person_distinct_ids
            ds.person_distinct_ids = pdi[~pdi["person_id"].isin(ids)].reset_index(drop=True)
            self._version += 1
            self._cache.clear()

    def _build(self) -> None:
        with self._lock:
            if self._dataset is None:
                self._dataset = generate_dataset(
                    self.project_id,
                    seed=self._seed,
                    persons=self._persons,
                    events=self._events,
                    start=self._start,
                    days=self._days,
                    timezone=self.timezone,
                )
            if self._conn is None:  # first use, or reopened after close()
                self._conn = load_duckdb(self._dataset)

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._build()
        assert self._dataset is not None
        return self._dataset

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A per-thread cursor: DuckDB connections are not safe to share across threads."""
        if self._conn is None:
            self._build()
        assert self._conn is not None
        with self._lock:
            return self._conn.cursor()

    def close(self) -> None:
        """Release the DuckDB connection now, not at interpreter exit (where DuckDB may abort
        the process, duckdb/duckdb#13904); the next query reopens it from the dataset."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def replace_events(self, events: pd.DataFrame) -> None:
        """Drop every event and insert these (a frame shaped like `Dataset.events`)."""
        ds = self.dataset
        cur = self.cursor()
        try:
            cur.execute("DELETE FROM events")
        finally:
            cur.close()
        with self._lock:
            ds.events = ds.events.iloc[:0]
            self._version += 1
            self._cache.clear()
        self.add_events(events)

    def add_events(self, events: pd.DataFrame) -> None:
        """Insert events (a frame shaped like `Dataset.events`), as ingestion does while the
        server runs: into DuckDB first, then the dataset, kept in (timestamp, uuid) order."""
        ds = self.dataset
        cur = self.cursor()
        try:
            cur.register("_ingested", _events_table(events))
            cur.execute("INSERT INTO events SELECT * FROM _ingested")
            cur.unregister("_ingested")
        finally:
            cur.close()
        with self._lock:
            combined = pd.concat([ds.events, events[list(_EVENT_COLUMNS)]], ignore_index=True)
            ordered = combined.sort_values(["timestamp", "uuid"], kind="stable")
            ds.events = ordered.reset_index(drop=True)
            self._version += 1
            self._cache.clear()
