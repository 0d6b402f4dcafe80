"""Handlers of the project-nested read endpoints: persons, events, groups, metadata lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from posthog_pandas.server.auth import check_scope
from posthog_pandas.server.catalog import iso_z
from posthog_pandas.server.data import ProjectStore
from posthog_pandas.server.filters import compile_properties
from posthog_pandas.server.insights.saved import saved_insight_result
from posthog_pandas.server.pagination import int_param
from posthog_pandas.server.state import Context
from posthog_pandas.server.web import ApiError, Response, json_response, page_url

__all__ = ["EVENTS_MAX_LIMIT", "LIST_ATTRS", "event_list", "persons_list"]

EVENTS_MAX_LIMIT = 1000  # PostHog clamps silently (PR ph#60124)
PERSONS_MAX_LIMIT = 50_000
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)

# Plain limit/offset lists: URL segment -> (Dataset attribute, default page size).
LIST_ATTRS: dict[str, tuple[str, int]] = {
    "cohorts": ("cohorts", 100),
    "feature_flags": ("feature_flags", 100),
    "insights": ("insights", 100),
    "dashboards": ("dashboards", 100),
    "annotations": ("annotations", 1000),
    "actions": ("actions", 100),
    "experiments": ("experiments", 100),
    "surveys": ("surveys", 100),
}


# --- persons -------------------------------------------------------------------------------


def _display_name(props: dict[str, Any], dids: list[str], pid: str) -> str:
    for key in ("email", "name", "username"):
        if props.get(key):
            return str(props[key])
    named = [d for d in dids if not _UUID.match(d)]
    return named[0] if named else pid


def _person_rows(store: ProjectStore) -> dict[str, dict[str, Any]]:
    """Persons in the list shape of `get_serialized_people`, keyed by UUID."""

    def build() -> dict[str, dict[str, Any]]:
        ds = store.dataset
        last = ds.events.groupby("person_id")["timestamp"].max()
        out: dict[str, dict[str, Any]] = {}
        p = ds.persons
        for pid, created, ident, props, dids, num in zip(
            p["id"], p["created_at"], p["is_identified"], p["properties"], p["distinct_ids"],
            p["numeric_id"], strict=True,
        ):  # fmt: skip
            seen = last.get(pid)
            out[pid] = {
                "type": "person",
                "id": pid,
                "uuid": pid,
                "created_at": iso_z(created),
                "last_seen_at": iso_z(seen) if seen is not None else None,
                "properties": props,
                "is_identified": bool(ident),
                "name": _display_name(props, dids, pid),
                "distinct_ids": dids,
                "matched_recordings": [],
                "value_at_data_point": None,
                "_numeric_id": int(num),
            }
        return out

    return store.cached("person_rows", build)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


# get_serialized_people's distinct_id_limit: 1,000 on the persons list, 10 on cohort persons
# (posthog/queries/actor_base_query.py, posthog/api/cohort.py).
PERSONS_DISTINCT_IDS = 1000
COHORT_PERSONS_DISTINCT_IDS = 10


def _listed(row: dict[str, Any], distinct_ids: int) -> dict[str, Any]:
    listed = _public(row)
    listed["distinct_ids"] = listed["distinct_ids"][:distinct_ids]
    return listed


def _person_where(ctx: Context) -> tuple[str, list[Any]]:
    params = ctx.request.params
    where, args = ["true"], []
    email_sql = "json_extract_string(properties, '$.email')"
    did_sql = "id IN (SELECT person_id FROM person_distinct_ids WHERE distinct_id = ?)"
    if params.get("email"):
        where.append(f"{email_sql} = ?")
        args.append(params["email"])
    if params.get("distinct_id"):
        where.append(did_sql)
        args.append(params["distinct_id"])
    if params.get("search"):
        where.append(f"({email_sql} ILIKE ? OR {did_sql})")
        args += [f"%{params['search']}%", params["search"]]
    cond, cargs = compile_properties(params.get("properties"), {"person": "properties"})
    where.append(cond)
    args += cargs
    return " AND ".join(where), args


def persons_list(ctx: Context, cohort_id: int | None = None) -> Response:
    """Persons: created_at DESC, id DESC; no count; `next` only when the page came back full."""
    limit = int_param(ctx.request, "limit", 100, cap=PERSONS_MAX_LIMIT)
    offset = int_param(ctx.request, "offset", 0)
    where, args = _person_where(ctx)
    if cohort_id is not None:
        where += " AND id IN (SELECT person_id FROM cohort_people WHERE cohort_id = ?)"
        args.append(cohort_id)
    short = ctx.pager.faults is not None and ctx.pager.faults.short_pages
    take = max(1, limit - max(1, limit // 5)) if short else limit
    sql = f"SELECT id FROM persons WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    cur = ctx.store.cursor()
    try:
        ids = [r[0] for r in cur.execute(sql, [*args, take, offset]).fetchall()]
        more = short and bool(cur.execute(sql, [*args, 1, offset + take]).fetchall())
    finally:
        cur.close()
    rows = _person_rows(ctx.store)
    cut = PERSONS_DISTINCT_IDS if cohort_id is None else COHORT_PERSONS_DISTINCT_IDS
    nxt = None
    if short and more:
        # Like ph#24787: a short page that still has a `next` (here: nothing is lost).
        nxt = page_url(ctx.request, limit=limit, offset=offset + take)
    elif not short and len(ids) >= limit:
        nxt = page_url(ctx.request, limit=limit, offset=offset + limit)
    prev = None
    if offset > 0:
        back = offset - limit
        prev = page_url(ctx.request, limit=limit, offset=back if back > 0 else None)
    body = {
        "results": [_listed(rows[i], cut) for i in ids],
        "next": ctx.pager.shape_next(nxt),
        "previous": prev,
    }
    return json_response(body)


def person_retrieve(ctx: Context, person_id: str) -> Response:
    """PersonSerializer: numeric `id`, `uuid`; the id in the URL may be either."""
    rows = _person_rows(ctx.store)
    row = rows.get(person_id)
    if row is None and person_id.isdigit():
        row = next((r for r in rows.values() if r["_numeric_id"] == int(person_id)), None)
    if row is None:
        raise ApiError.not_found()
    keys = ("name", "distinct_ids", "properties", "created_at", "uuid", "last_seen_at")
    return json_response({"id": row["_numeric_id"], **{k: row[k] for k in keys}})


def legacy_persons(ctx: Context) -> Response:
    """Old `/api/person/`: ordered by numeric id DESC, opaque `cursor` (base64 "p=<id>")."""
    import base64

    rows = sorted(_person_rows(ctx.store).values(), key=lambda r: -r["_numeric_id"])
    raw = ctx.request.params.get("cursor")
    position = None
    if raw:
        try:
            text = base64.b64decode(raw + "=" * (-len(raw) % 4)).decode()
            position = int(text.split("=", 1)[1])
        except (ValueError, IndexError, UnicodeDecodeError):
            raise ApiError.not_found("Invalid cursor") from None
    if position is not None:
        rows = [r for r in rows if r["_numeric_id"] < position]
    page = rows[:100]
    nxt = None
    if len(rows) > 100:
        cursor = base64.b64encode(f"p={page[-1]['_numeric_id']}".encode()).decode()
        nxt = page_url(ctx.request, cursor=cursor)
    keys = ("name", "distinct_ids", "properties", "created_at", "uuid", "is_identified")
    results = [{"id": r["_numeric_id"], **{k: r[k] for k in keys}} for r in page]
    return json_response({"next": ctx.pager.shape_next(nxt), "previous": None, "results": results})


# --- events --------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def parse_elements(chain: str) -> list[dict[str, Any]]:
    """A minimal reading of `elements_chain` into PostHog's element dicts."""
    out: list[dict[str, Any]] = []
    for order, part in enumerate(p for p in chain.split(";") if p):
        head, _, rest = part.partition(":")
        tag, *classes = head.split(".")
        attrs = dict(re.findall(r'([\w-]+)="((?:\\"|[^"])*)"', rest))
        out.append(
            {
                "text": attrs.get("text"),
                "tag_name": tag,
                "attr_class": classes or None,
                "href": attrs.get("href"),
                "attr_id": attrs.get("attr__id"),
                "nth_child": int(attrs["nth-child"]) if "nth-child" in attrs else None,
                "nth_of_type": int(attrs["nth-of-type"]) if "nth-of-type" in attrs else None,
                "attributes": {k: v for k, v in attrs.items() if k.startswith("attr__")},
                "order": order,
            }
        )
    return out


def _parse_time(raw: str, name: str) -> datetime:
    """ISO datetimes (Z or offset; naive means UTC) and relative `-7d` / `-3h` forms."""
    m = re.fullmatch(r"-(\d+)([hdwm])", raw.strip())
    if m:
        unit = {"h": "hours", "d": "days", "w": "weeks", "m": "minutes"}[m.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(m.group(1))})
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise ApiError.validation(f"Invalid datetime '{raw}'.", attr=name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _order(raw: str | None) -> str:
    if not raw:
        return "DESC"
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError.validation("Invalid orderBy.", attr="orderBy") from None
    if fields in (["timestamp"], "timestamp"):
        return "ASC"
    if fields in (["-timestamp"], "-timestamp", []):
        return "DESC"
    raise ApiError.validation("Only ordering by timestamp is supported.", attr="orderBy")


def _person_summary(store: ProjectStore) -> dict[str, dict[str, Any]]:
    def build() -> dict[str, dict[str, Any]]:
        return {
            pid: {
                "is_identified": row["is_identified"],
                "distinct_ids": row["distinct_ids"][:1],
                "properties": {
                    k: row["properties"][k]
                    for k in ("email", "name", "username")
                    if k in row["properties"]
                },
            }
            for pid, row in _person_rows(store).items()
        }

    return store.cached("person_summary", build)


def event_list(ctx: Context) -> Response:
    """Events, newest first by default; `next` moves `before` to the last row's timestamp.

    Rows are fetched with a strict `timestamp < before`, so events sharing the boundary
    second with the last row of a page are skipped, exactly as PostHog does (ph#34143).
    Ties are ordered by uuid so the skipped rows are deterministic.
    """
    params = ctx.request.params
    limit = int_param(ctx.request, "limit", 100, cap=EVENTS_MAX_LIMIT)
    offset = int_param(ctx.request, "offset", 0)
    direction = _order(params.get("orderBy"))
    where: list[str] = []
    args: list[Any] = []
    for name, column in (("event", "e.event"), ("distinct_id", "e.distinct_id")):
        if params.get(name):
            where.append(f"{column} = ?")
            args.append(params[name])
    if params.get("person_id"):
        pid = params["person_id"]
        if pid.isdigit():
            rows = _person_rows(ctx.store)
            pid = next((k for k, r in rows.items() if r["_numeric_id"] == int(pid)), "")
        where.append("e.person_id = ?")
        args.append(pid)
    before = _parse_time(params["before"], "before") if params.get("before") else None
    if before is None:
        before = datetime.now(UTC) + timedelta(seconds=5)
    where.append("e.timestamp < ?")
    args.append(before)
    if params.get("after"):
        where.append("e.timestamp > ?")
        args.append(_parse_time(params["after"], "after"))
    cond, cargs = compile_properties(
        params.get("properties"), {"event": "e.properties", "person": "pp.properties"}
    )
    where.append(cond)
    args += cargs
    join = " LEFT JOIN persons pp ON pp.id = e.person_id" if "pp." in cond else ""
    sql = (
        "SELECT e.uuid, e.event, e.distinct_id, e.timestamp, e.properties, e.elements_chain, "
        f"e.person_id FROM events e{join} WHERE {' AND '.join(where)} "
        f"ORDER BY e.timestamp {direction}, e.uuid {direction} LIMIT ? OFFSET ?"
    )
    cur = ctx.store.cursor()
    try:
        fetched = cur.execute(sql, [*args, limit + 1, offset]).fetchall()
    finally:
        cur.close()
    page = fetched[:limit]
    people = _person_summary(ctx.store) if params.get("include_person") == "true" else None
    results = [
        {
            "id": uuid,
            "distinct_id": did,
            "properties": orjson.Fragment(props),
            "event": event,
            "timestamp": ts.isoformat(),
            "person": people.get(pid) if people is not None else None,
            "elements": parse_elements(chain) if chain else [],
            "elements_chain": chain,
        }
        for uuid, event, did, ts, props, chain, pid in page
    ]
    nxt = None
    if len(fetched) > limit:
        boundary = page[-1][3].isoformat()
        nxt = page_url(ctx.request, **{"before" if direction == "DESC" else "after": boundary})
    return json_response({"next": ctx.pager.shape_next(nxt), "results": results})


def event_retrieve(ctx: Context, event_id: str) -> Response:
    if not _UUID.match(event_id):
        raise ApiError.validation("Invalid UUID")
    cur = ctx.store.cursor()
    try:
        row = cur.execute(
            "SELECT uuid, event, distinct_id, timestamp, properties, elements_chain "
            "FROM events WHERE uuid = ?",
            [event_id.lower()],
        ).fetchone()
    finally:
        cur.close()
    if row is None:
        raise ApiError.not_found()
    uuid, event, did, ts, props, chain = row
    return json_response(
        {
            "id": uuid,
            "distinct_id": did,
            "properties": orjson.Fragment(props),
            "event": event,
            "timestamp": ts.isoformat(),
            "person": None,
            "elements": parse_elements(chain) if chain else [],
            "elements_chain": chain,
        }
    )


# --- groups --------------------------------------------------------------------------------


def _group_rows(store: ProjectStore, index: int) -> list[dict[str, Any]]:
    def build() -> list[dict[str, Any]]:
        g = store.dataset.groups
        g = g[g["group_type_index"] == index]
        g = g.sort_values(["created_at", "group_key"], ascending=[False, True])
        return [
            {
                "group_type_index": int(t),
                "group_key": k,
                "group_properties": p,
                "created_at": iso_z(c),
            }
            for t, k, p, c in zip(
                g["group_type_index"], g["group_key"], g["group_properties"], g["created_at"],
                strict=True,
            )
        ]  # fmt: skip

    return store.cached(f"groups:{index}", build)


_GROUP_INDEX_MISSING = (
    "You must pass ?group_type_index= in this URL. To get a list of valid group types, "
    "call /api/:project_id/groups_types/."
)


def _group_index(ctx: Context) -> int:
    raw = ctx.request.params.get("group_type_index")
    if raw is None or raw == "":
        raise ApiError.validation(_GROUP_INDEX_MISSING, "group_type_index")  # ee/.../groups.py
    try:
        return int(raw)
    except ValueError:
        raise ApiError.validation(
            "A valid integer is required.", "group_type_index", "invalid"
        ) from None


def groups_list(ctx: Context) -> Response:
    """Groups: DRF CursorPagination, newest first, `group_type_index` required.

    `search` matches like PostHog's: the key exactly (any case), or any text of the properties.
    """
    rows = _group_rows(ctx.store, _group_index(ctx))
    search = ctx.request.params.get("search")
    if search:
        s = search.lower()
        rows = [
            r
            for r in rows
            if s == r["group_key"].lower()
            or s in orjson.dumps(r["group_properties"]).decode().lower()
        ]
    return json_response(ctx.pager.cursor_page(rows))


def group_find(ctx: Context) -> Response:
    key = ctx.request.params.get("group_key")
    for row in _group_rows(ctx.store, _group_index(ctx)):
        if row["group_key"] == key:
            return json_response(row)
    raise ApiError.not_found()


def group_types(ctx: Context) -> Response:
    return json_response(ctx.dataset.group_types)


# --- metadata lists ------------------------------------------------------------------------


def _truthy(raw: str | None) -> bool:
    return raw is not None and raw.lower() in ("1", "true", "yes")


def metadata_list(ctx: Context, name: str) -> Response:
    attr, default_limit = LIST_ATTRS[name]
    rows: list[dict[str, Any]] = getattr(ctx.dataset, attr)
    params = ctx.request.params
    if name == "insights":
        if params.get("short_id"):
            rows = [r for r in rows if r["short_id"] == params["short_id"]]
        if _truthy(params.get("basic")):
            skip = {"result", "hogql", "types", "columns", "is_cached", "query_status"}
            rows = [{k: v for k, v in r.items() if k not in skip} for r in rows]
        else:
            mode = refresh_mode(params.get("refresh"))
            rows = [insight_view(ctx.store, r, mode) for r in rows]
    if name == "feature_flags" and params.get("active") in ("true", "false"):
        rows = [r for r in rows if r["active"] == (params["active"] == "true")]
    return json_response(ctx.pager.limit_offset(rows, default_limit=default_limit))


def metadata_retrieve(ctx: Context, name: str, item_id: str) -> Response:
    attr, _ = LIST_ATTRS[name]
    for row in getattr(ctx.dataset, attr):
        if str(row["id"]) == item_id:
            if name == "insights":
                row = insight_view(ctx.store, row, refresh_mode(ctx.request.params.get("refresh")))
            return json_response(row)
    raise ApiError.not_found()


# --- insight results and PostHog's refresh modes --------------------------------------------

# The string values `?refresh=` may take (posthog/utils.py `refresh_requested_by_client`).
_REFRESH_VALUES = (
    "async",
    "blocking",
    "force_async",
    "force_blocking",
    "force_cache",
    "lazy_async",
)
# How long a computed result counts as fresh (posthog/caching/utils.py, a "day" interval).
INSIGHT_STALE_AFTER = timedelta(hours=6)
LAZY_STALE_AFTER = timedelta(hours=12)


def refresh_mode(raw: str | None) -> str:
    """PostHog's execution mode for `?refresh=`: true/1/yes/"" mean force_blocking, a known
    mode name is itself, anything else (and no parameter) means force_cache, "never compute"
    (`execution_mode_from_refresh` in posthog/hogql_queries/query_runner.py)."""
    if raw is None:
        return "force_cache"
    if raw.lower() in ("true", "1", "yes", ""):
        return "force_blocking"
    return raw if raw in _REFRESH_VALUES else "force_cache"


def insight_view(store: ProjectStore, row: dict[str, Any], mode: str) -> dict[str, Any]:
    """The insight with the result fields its refresh mode gives: computed now (blocking
    modes), from the cache, or null when nothing was ever computed (force_cache, async)."""
    insight_id = int(row["id"])
    now = datetime.now(UTC)
    cached = store.insight_cache.get(insight_id)
    stale_after = LAZY_STALE_AFTER if mode == "lazy_async" else INSIGHT_STALE_AFTER
    fresh = cached is not None and now - cached[1] < stale_after
    if mode == "force_blocking" or (mode == "blocking" and not fresh):
        computed = (saved_insight_result(store, row), now)
        store.insight_cache[insight_id] = computed
        return _with_result(row, computed, is_cached=False)
    if cached is not None and (fresh or mode == "force_cache"):
        return _with_result(row, cached, is_cached=True)
    if mode in ("async", "lazy_async", "force_async"):
        # The calculation "runs in the background": this answer has no result, the next has.
        store.insight_cache[insight_id] = (saved_insight_result(store, row), now)
        pending = {"id": f"insight-{insight_id}", "complete": False, "error": False}
        return {**row, "query_status": pending}
    return row  # force_cache and nothing cached: result null, last_refresh null


def _with_result(
    row: dict[str, Any], cached: tuple[Any, datetime], *, is_cached: bool
) -> dict[str, Any]:
    result, last_refresh = cached
    return {
        **row,
        "result": result,
        "last_refresh": iso_z(last_refresh),
        "cache_target_age": iso_z(last_refresh + INSIGHT_STALE_AFTER),
        "next_allowed_client_refresh": iso_z(last_refresh + timedelta(minutes=3)),
        "is_cached": is_cached,
    }


def definitions_list(ctx: Context, kind: str) -> Response:
    params = ctx.request.params
    ds = ctx.dataset
    rows = ds.event_definitions if kind == "event" else ds.property_definitions
    search = (params.get("search") or "").lower()
    if search:
        rows = [r for r in rows if search in r["name"].lower()]
    if kind == "property":
        ptype = params.get("type") or "event"
        gti = _definitions_group_index(ptype, params.get("group_type_index"))
        rows = [r for r in rows if r["type"] == ptype]
        if gti is not None:
            rows = [r for r in rows if r["group_type_index"] == gti]
        if params.get("is_numerical") in ("true", "false"):
            rows = [r for r in rows if r["is_numerical"] == (params["is_numerical"] == "true")]
    return json_response(ctx.pager.limit_offset(rows))


GROUP_TYPES_LIMIT = 5


def _definitions_group_index(ptype: str, raw: str | None) -> int | None:
    """PropertyDefinitionQuerySerializer.validate (posthog/taxonomy/property_definition_api.py):
    `group` needs a group_type_index, other types refuse one. Non-field errors: attr null,
    code invalid_input (drf-exceptions-hog renames DRF's "invalid")."""
    index = None
    if raw:
        try:
            index = int(raw)
        except ValueError:
            raise ApiError.validation("A valid integer is required.", "group_type_index") from None
    if ptype == "group" and index is None:
        raise ApiError.validation("`group_type_index` must be set for `group` type")
    if ptype != "group" and index is not None:
        raise ApiError.validation("`group_type_index` can only set for `group` type")
    if index and not 0 <= index < GROUP_TYPES_LIMIT:  # PostHog's test skips 0 the same way
        raise ApiError.validation("Invalid value for `group_type_index`")
    return index


# RecordingsQuery.date_from's default (posthog/schema.py): without dates, the last 3 days.
RECORDINGS_DEFAULT_FROM = "-3d"


def recordings_list(ctx: Context) -> Response:
    """Session recordings: {results, has_next, version}; limit/offset params, no `next` URL.

    Filtered like PostHog's listing query on each recording's start: `date_from` (default
    -3d, so older recordings need an explicit range) <= start_time <= `date_to`."""
    limit = int_param(ctx.request, "limit", 50)
    offset = int_param(ctx.request, "offset", 0)
    params = ctx.request.params
    since = _parse_time(params.get("date_from") or RECORDINGS_DEFAULT_FROM, "date_from")
    until = _parse_time(params["date_to"], "date_to") if params.get("date_to") else None
    rows = [
        r
        for r in ctx.dataset.session_recordings
        if since <= (start := _parse_time(r["start_time"], "start_time"))
        and (until is None or start <= until)
    ]
    return json_response(
        {
            "results": rows[offset : offset + limit],
            "has_next": offset + limit < len(rows),
            "version": 3,
        }
    )


def recording_retrieve(ctx: Context, recording_id: str) -> Response:
    for row in ctx.dataset.session_recordings:
        if row["id"] == recording_id:
            return json_response(row)
    raise ApiError.not_found()


def cohort_persons(ctx: Context, cohort_id: str) -> Response:
    check_scope(ctx.principal, "person", "read")  # cohort:read (the route) and person:read
    if not any(str(c["id"]) == cohort_id for c in ctx.dataset.cohorts):
        raise ApiError.not_found()
    return persons_list(ctx, cohort_id=int(cohort_id))


def legacy_user(ctx: Context) -> Response:
    """Old `/api/user/` (removed 2021): the API-overview shape with event and property names."""
    ds = ctx.dataset
    user = ctx.state.user(ctx.principal)
    props = ds.property_definitions
    return json_response(
        {
            "id": user["id"],
            "distinct_id": user["distinct_id"],
            "name": user["first_name"],
            "email": user["email"],
            "team": ctx.state.team(ctx.principal.current_project),
            "organization": user["organization"],
            "event_names": [d["name"] for d in ds.event_definitions],
            "event_properties": [p["name"] for p in props if p["type"] == "event"],
            "event_properties_numerical": [
                p["name"] for p in props if p["type"] == "event" and p["is_numerical"]
            ],
            "person_properties": [p["name"] for p in props if p["type"] == "person"],
        }
    )
