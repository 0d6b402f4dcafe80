"""URL routing and PostHog's check order: path, auth, project, key scoping, scope, throttle."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from posthog_pandas.server import resources as res
from posthog_pandas.server.auth import (
    PERSONS_BREAK_GLASS,
    Credentials,
    Principal,
    UserThrottle,
    check_project_access,
    check_scope,
    find_credentials,
)
from posthog_pandas.server.pagination import Pager
from posthog_pandas.server.query import query_endpoint, query_id_endpoint
from posthog_pandas.server.state import Context, ServerState
from posthog_pandas.server.web import ApiError, Request, Response, json_response

__all__ = ["Outcome", "dispatch"]

Handler = Callable[..., Response]
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    handler: Handler
    scope: str
    methods: tuple[str, ...] = ("GET",)
    sharing: bool = False  # sharing-enabled viewsets answer auth failures with 403
    environments: bool = False  # also served under /api/environments/{id}/
    read_action: bool = False  # POST that PostHog treats as a read (the query API)
    also: tuple[str, ...] = ()  # further scope objects the action requires (`required_scopes`)
    throttles: tuple[UserThrottle, ...] = ()  # the viewset's per-user throttle_classes


def _r(
    pattern: str,
    handler: Handler,
    scope: str,
    *,
    methods: tuple[str, ...] = ("GET",),
    sharing: bool = False,
    env: bool = False,
    read_action: bool = False,
    also: tuple[str, ...] = (),
    throttles: tuple[UserThrottle, ...] = (),
) -> Route:
    regex = re.compile(rf"^{pattern}/?$" if pattern else r"^/?$")
    return Route(regex, handler, scope, methods, sharing, env, read_action, also, throttles)


def _project_detail(ctx: Context) -> Response:
    assert ctx.project_id is not None
    team = ctx.state.team(ctx.project_id)
    return json_response(
        {**team, "product_description": None, "created_at": "2023-01-01T00:00:00Z"}
    )


def _project_routes() -> list[Route]:
    routes = [
        _r("", _project_detail, "project"),
        # PersonViewSet's break-glass throttles (posthog/api/person.py); cohort persons are
        # CohortViewSet's and go without them.
        _r("persons", res.persons_list, "person", env=True, throttles=PERSONS_BREAK_GLASS),
        _r(
            "persons/(?P<person_id>[^/]+)",
            res.person_retrieve,
            "person",
            env=True,
            throttles=PERSONS_BREAK_GLASS,
        ),
        _r("events", res.event_list, "query", env=True),
        _r("events/(?P<event_id>[^/]+)", res.event_retrieve, "query", env=True),
        _r(
            "query",
            query_endpoint,
            "query",
            methods=("POST",),
            sharing=True,
            env=True,
            read_action=True,
        ),
        # posthog/api/query.py: `retrieve` and `destroy` are read actions (query:read)
        _r(
            "query/(?P<query_id>[^/]+)",
            query_id_endpoint,
            "query",
            methods=("GET", "DELETE"),
            sharing=True,
            env=True,
            read_action=True,
        ),
        # posthog/api/cohort.py: @action(required_scopes=["cohort:read", "person:read"])
        _r("cohorts/(?P<cohort_id>[^/]+)/persons", res.cohort_persons, "cohort", also=("person",)),
        _r("event_definitions", partial(res.definitions_list, kind="event"), "event_definition"),
        _r(
            "property_definitions",
            partial(res.definitions_list, kind="property"),
            "property_definition",
        ),
        _r("session_recordings", res.recordings_list, "session_recording", sharing=True, env=True),
        _r(
            "session_recordings/(?P<recording_id>[^/]+)",
            res.recording_retrieve,
            "session_recording",
            sharing=True,
            env=True,
        ),
        _r("groups", res.groups_list, "group", env=True),
        _r("groups/find", res.group_find, "group", env=True),
        _r("groups_types", res.group_types, "group", env=True),
    ]
    scopes = {
        "cohorts": "cohort",
        "feature_flags": "feature_flag",
        "insights": "insight",
        "dashboards": "dashboard",
        "annotations": "annotation",
        "actions": "action",
        "experiments": "experiment",
        "surveys": "survey",
    }
    for name, scope in scopes.items():
        shared = name in ("insights", "dashboards")
        routes.append(_r(name, partial(res.metadata_list, name=name), scope, sharing=shared,
                         env=shared))  # fmt: skip
        routes.append(
            _r(
                f"{name}/(?P<item_id>[^/]+)",
                partial(res.metadata_retrieve, name=name),
                scope,
                sharing=shared,
                env=shared,
            )
        )
    return routes


def _me(ctx: Context) -> Response:
    return json_response(ctx.state.user(ctx.principal))


def _projects(ctx: Context) -> Response:
    visible = [ctx.state.team(p) for p in ctx.state.projects if ctx.principal.can_see(p)]
    return json_response(ctx.pager.limit_offset(visible))


def _org(ctx: Context, org_id: str) -> dict[str, Any]:
    if org_id not in ("@current", ctx.state.org_id):
        raise ApiError.not_found()
    return ctx.state.organization(ctx.principal)


def _org_detail(ctx: Context, org_id: str) -> Response:
    return json_response(_org(ctx, org_id))


def _org_projects(ctx: Context, org_id: str) -> Response:
    _org(ctx, org_id)
    visible = [ctx.state.team(p) for p in ctx.state.projects if ctx.principal.can_see(p)]
    return json_response(ctx.pager.limit_offset(visible))


def _legacy_person(ctx: Context) -> Response:
    return res.legacy_persons(ctx) if ctx.state.legacy else res.persons_list(ctx)


_PROJECT_PATH = re.compile(r"^/api/(?P<base>projects|environments)/(?P<pid>[^/]+)(?P<rest>/.*)?$")
PROJECT_ROUTES = _project_routes()
# Top-level routes: (route, project segment) where "@current" means the caller's project.
TOP_ROUTES: list[tuple[Route, str | None, bool]] = [
    (_r("/api/users/@me", _me, "user"), None, False),
    (_r("/api/projects", _projects, "project"), None, False),
    (_r("/api/organizations/(?P<org_id>[^/]+)", _org_detail, "organization"), None, False),
    (_r("/api/organizations/(?P<org_id>[^/]+)/projects", _org_projects, "project"), None, False),
    (_r("/api/person", _legacy_person, "person"), "@current", False),
    (_r("/api/event", res.event_list, "query"), "@current", False),
    (_r("/api/user", res.legacy_user, "user"), "@current", True),  # legacy mode only
]


@dataclass
class Outcome:
    """The response plus what the request log needs (never the raw key)."""

    response: Response
    credentials: Credentials
    project_id: int | None


def _resolve(path: str, legacy: bool) -> tuple[Route, str | None, dict[str, str]] | None:
    m = _PROJECT_PATH.match(path)
    if m:
        rest = (m.group("rest") or "/")[1:]
        for route in PROJECT_ROUTES:
            rm = route.pattern.match(rest)
            if rm and (m.group("base") == "projects" or route.environments):
                return route, m.group("pid"), rm.groupdict()
        return None
    for route, project, legacy_only in TOP_ROUTES:
        rm = route.pattern.match(path)
        if rm and (legacy or not legacy_only):
            return route, project, rm.groupdict()
    return None


def _project_id(state: ServerState, principal: Principal, raw: str, request: Request) -> int:
    if raw == "@current":
        pid = principal.current_project
    else:
        try:
            pid = int(raw)
        except ValueError:
            raise ApiError.not_found("Project not found.") from None
    token = request.params.get("token") or request.params.get("api_key")
    if request.method == "GET" and token:
        # ph routing.py `_get_team_from_request`: a project token overrides the URL's project.
        override = state.project_for_token(token)
        if override is None:
            raise ApiError(
                401,
                "authentication_error",
                "authentication_failed",
                "Incorrect authentication credentials.",
            )
        pid = override
    if pid not in state.projects:
        raise ApiError.not_found("Project not found.")
    return pid


def dispatch(state: ServerState, request: Request, faults_on: bool) -> Outcome:
    """Answer one request, or the PostHog error JSON for the first check that fails."""
    creds = find_credentials(request)
    project_id: int | None = None
    try:
        found = _resolve(request.path, state.legacy)
        if found is None:
            raise ApiError.not_found("Endpoint not found.")
        route, raw_project, kwargs = found
        principal = state.keyring.authenticate(creds, sharing=route.sharing)
        if raw_project is not None:
            project_id = _project_id(state, principal, raw_project, request)
            check_project_access(principal, project_id)
        write = request.method in _WRITE_METHODS and not route.read_action
        for scope in (route.scope, *route.also):
            check_scope(principal, scope, "write" if write else "read")
        state.limiter.check(principal, route.throttles if state.persons_throttle else ())
        if request.method not in route.methods:
            raise ApiError(
                405,
                "invalid_request",
                "method_not_allowed",
                f'Method "{request.method}" not allowed.',
            )
        faults = state.injector.faults if faults_on else None
        pager = Pager(request, faults, state.foreign_url)
        ctx = Context(request, state, principal, project_id, pager)
        response = route.handler(ctx, **kwargs)
    except ApiError as exc:
        response = exc.response()
    return Outcome(response, creds, project_id)
