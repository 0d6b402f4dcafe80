"""The resources, as data: one entry per accessor, from which every front door is derived.

`ph.<name>()`, `read_posthog(name)`, `ph.export(name, ...)`, `%posthog <name>` and its help, and
the `posthog-pandas export` command all read this table. Adding a resource is one entry here
(and the accessor method that documents its arguments), plus its row in the front-door test.

A list entry says where the list lives (`path`, under /api/projects/<id>/ unless it starts
with "/"), how its filters become query parameters (`params`, which also checks them), how it
is paged (`grow_to`, `live_key`) and which frames schema types its columns (`schema`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from posthog_pandas import _checks
from posthog_pandas._dates import DateLike

__all__ = ["RESOURCES", "Resource", "resource_named"]

# Lists whose pages start at 1,000 rows and grow to 5,000 (see _pagination): the persons
# lists, millions of rows in a big project, at 240 requests a minute (posthog-api.md §7).
# 5,000 stays under the row cap of the HogQL query behind both endpoints (10,000 in older
# PostHog, 50,000 now): above it PostHog would return a short page and no `next`.
PERSONS_PAGE_GROWTH = 5000
# PostHog's default page for limit/offset lists (REST_FRAMEWORK["PAGE_SIZE"], settings/web.py).
DRF_PAGE_SIZE = 100
_NO_FLAGS: Mapping[str, str] = MappingProxyType({})


def _no_params() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Resource:
    """One PostHog resource and how each front door reaches it.

    kind: "list" (a paged list endpoint, read by the generic list machinery), "events"
        (the keyset events pipeline), "insight", "user" or "query" (their own methods).
    path: a list's path under the project, or absolute when it starts with "/"; it may
        name the id argument, as in "cohorts/{cohort_id}/persons".
    params: the accessor's filters (keyword arguments named in `filters`) to query
        parameters, checked; None values are left out of the request.
    schema: the frames.SCHEMAS entry that types the columns (the name, by default).
    page_size: the rows of a page PostHog serves when no `limit` is sent (DRF's PAGE_SIZE,
        100, unless the endpoint sets its own); a `limit=N` pull sends `limit` so that small
        pulls get small pages. None: the list is paged by cursor and takes no `limit`.
    definitions: the kind of PostHog property definitions ("person", "event") that type its
        `properties.<key>` columns (see _property_types).
    grow_to: limit/offset pages may grow to this many rows (see _pagination).
    live_key: the list changes while it is read; its pages overlap by a row and are joined
        on this key without repeats or gaps (see _live).
    id_argument: the accessor's positional argument (`%posthog <name> ID` fills it).
    magic_flags: `%posthog` flags this resource takes -> the accessor argument they fill
        (besides --limit, which every resource takes: see `takes_limit`).
    call_options: whether the accessor takes the common options (cache, refresh, ...).
    """

    name: str
    doc: str
    kind: str = "list"
    path: str | None = None
    params: Callable[..., dict[str, Any]] = _no_params
    filters: tuple[str, ...] = ()
    schema: str | None = None
    page_size: int | None = DRF_PAGE_SIZE
    definitions: str | None = None
    grow_to: int | None = None
    live_key: str | None = None
    id_argument: str | None = None
    exportable: bool = True
    magic_flags: Mapping[str, str] = field(default_factory=lambda: _NO_FLAGS)
    call_options: bool = True

    @property
    def frame_schema(self) -> str:
        return self.schema or self.name

    @property
    def takes_limit(self) -> bool:
        """`limit=N` is an accessor argument that stops paging after N rows (lists, events);
        `%posthog <name> --limit N` passes it."""
        return self.kind in ("list", "events")

    @property
    def arguments(self) -> tuple[str, ...]:
        """Every argument of the accessor besides the common options."""
        return ((self.id_argument,) if self.id_argument else ()) + self.filters


# -- filters to query parameters ------------------------------------------------------------


def _persons(
    *,
    search: str | None = None,
    email: str | None = None,
    distinct_id: str | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "search": _checks.opt_str(search, "search"),
        "email": _checks.opt_str(email, "email"),
        "distinct_id": _checks.opt_str(distinct_id, "distinct_id"),
        "properties": _checks.opt_filters(properties),
        "limit": 1000,
    }


def _cohort_persons(cohort_id: int) -> dict[str, Any]:
    return {"cohort_id": _checks.positive_int(cohort_id, "cohort_id"), "limit": 1000}


def _groups(group_type_index: int, *, search: str | None = None) -> dict[str, Any]:
    index = _checks.int_in(group_type_index, "group_type_index", 0, 4)
    return {"group_type_index": index, "search": _checks.opt_str(search, "search")}


def _feature_flags(*, active: bool | None = None, search: str | None = None) -> dict[str, Any]:
    return {
        "active": _checks.opt_bool(active, "active"),
        "search": _checks.opt_str(search, "search"),
    }


def _insights(*, saved: bool | None = None) -> dict[str, Any]:
    return {"saved": _checks.opt_bool(saved, "saved"), "basic": "true"}


def _search_only(*, search: str | None = None) -> dict[str, Any]:
    return {"search": _checks.opt_str(search, "search")}


def _property_definitions(
    *, type: str = "event", group_type_index: int | None = None, search: str | None = None
) -> dict[str, Any]:
    index = _checks.definitions_group_index(_checks.definitions_type(type), group_type_index)
    return {"type": type, "group_type_index": index, "search": _checks.opt_str(search, "search")}


def _session_recordings(
    *, date_from: DateLike | None = None, date_to: DateLike | None = None
) -> dict[str, Any]:
    start = _checks.opt_iso(date_from, "date_from") or _checks.recordings_default_start()
    return {"date_from": start, "date_to": _checks.opt_iso(date_to, "date_to"), "limit": 100}


# -- the table --------------------------------------------------------------------------------

_EVENT_FILTERS = (
    "after",
    "before",
    "event",
    "person_id",
    "distinct_id",
    "properties",
    "where",
    "columns",
    "limit",
    "incremental",
    "lookback",
)

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "persons",
        "all persons, one row per person",
        path="persons",
        params=_persons,
        filters=("search", "email", "distinct_id", "properties"),
        definitions="person",
        grow_to=PERSONS_PAGE_GROWTH,
        live_key="id",
    ),
    Resource(
        "events",
        "events in [after, before), oldest first",
        kind="events",
        filters=_EVENT_FILTERS,
        definitions="event",
        magic_flags=MappingProxyType(
            {"after": "after", "before": "before", "event": "event", "limit": "limit"}
        ),
    ),
    Resource("cohorts", "all cohorts", path="cohorts"),
    Resource(
        "cohort_persons",
        "the persons in one cohort",
        path="cohorts/{cohort_id}/persons",
        params=_cohort_persons,
        id_argument="cohort_id",
        definitions="person",
        grow_to=PERSONS_PAGE_GROWTH,
        live_key="id",
    ),
    Resource(
        "feature_flags",
        "all feature flags",
        path="feature_flags",
        params=_feature_flags,
        filters=("active", "search"),
    ),
    Resource(
        "insights",
        "all insights (definitions)",
        path="insights",
        params=_insights,
        filters=("saved",),
    ),
    Resource(
        "insight",
        "one insight's result",
        kind="insight",
        id_argument="insight_id",
        exportable=False,
    ),
    Resource("dashboards", "all dashboards", path="dashboards"),
    Resource(
        "annotations",
        "all annotations",
        path="annotations",
        params=_search_only,
        page_size=1000,
        filters=("search",),
    ),
    Resource("actions", "all actions", path="actions"),
    Resource(
        "event_definitions",
        "every event name, with volumes",
        path="event_definitions",
        params=_search_only,
        filters=("search",),
    ),
    Resource(
        "property_definitions",
        "property definitions of one kind",
        path="property_definitions",
        params=_property_definitions,
        filters=("type", "group_type_index", "search"),
    ),
    Resource("experiments", "all experiments", path="experiments"),
    Resource("surveys", "all surveys", path="surveys"),
    Resource(
        "groups",
        "groups of one group type",
        path="groups",
        params=_groups,
        page_size=None,
        id_argument="group_type_index",
        filters=("search",),
    ),
    Resource(
        "session_recordings",
        "session recordings (metadata)",
        path="session_recordings",
        params=_session_recordings,
        filters=("date_from", "date_to"),
        magic_flags=MappingProxyType({"after": "date_from", "before": "date_to"}),
    ),
    Resource("projects", "the projects the key can see", path="/api/projects/"),
    Resource(
        "me",
        "the authenticated user",
        kind="user",
        exportable=False,
        call_options=False,
    ),
    Resource("query", "a HogQL query", kind="query", exportable=False),
)

_BY_NAME: Mapping[str, Resource] = MappingProxyType({r.name: r for r in RESOURCES})
NAMES: tuple[str, ...] = tuple(_BY_NAME)
EVENTS: Resource = _BY_NAME["events"]
EXPORTABLE: tuple[str, ...] = tuple(r.name for r in RESOURCES if r.exportable)


def resource_named(name: str) -> Resource | None:
    return _BY_NAME.get(name)
