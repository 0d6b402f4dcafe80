"""The transport part: credentials attached, project discovered, GETs and paged lists.

`Connection` owns the HTTP client and the fetcher (cache policy over the store); every other
part (queries, lists, events, export) is handed one and reads PostHog only through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Self

import requests

from posthog_pandas import _config, _credentials
from posthog_pandas._credentials import Credentials
from posthog_pandas._fetcher import CacheTTL, Fetcher
from posthog_pandas._http import HttpClient
from posthog_pandas._pagination import Page, iter_pages, to_page
from posthog_pandas._progress import counted
from posthog_pandas.cache import CacheStore
from posthog_pandas.exceptions import (
    CacheError,
    CredentialsError,
    NotFoundError,
    PermissionDeniedError,
)
from posthog_pandas.frames import FrameOptions

log = logging.getLogger("posthog_pandas")


@dataclass(frozen=True)
class Project:
    """The project the connector reads, and how it was chosen."""

    id: int | None
    name: str | None
    source: str


class Connection:
    """Login, project discovery, and generic access to PostHog: one GET, every page of a list.

    `progress` and `frame_options` are the connection's defaults for progress bars and frame
    shape, which the other parts read."""

    def __init__(
        self,
        *,
        settings: _config.Settings,
        store: CacheStore | None,
        session: requests.Session | None,
        cache_ttl: CacheTTL,
        offline: bool,
        progress: bool | None,
        legacy: bool | None,
        host_source: str = "argument",
    ) -> None:
        self.settings = settings
        self._store = store
        self._session = session
        self._cache_ttl = cache_ttl
        self._offline = offline
        self.progress = progress
        self._legacy = legacy
        self._host_source = host_source
        self._credentials: Credentials | None = None
        self._http: HttpClient | None = None
        self._fetcher: Fetcher | None = None
        self._me: dict[str, Any] | None = None
        self._user_unreadable = False  # the key lacks user:read: /api/users/@me/ is a 403
        self._project = Project(settings.project_id, None, "argument/environment")
        self.frame_options = FrameOptions()

    # -- connecting ------------------------------------------------------------------------

    def login(
        self,
        api_key: str | None = None,
        *,
        credentials: Credentials | None = None,
        project_id: int | str | None = None,
        host: str | None = None,
    ) -> Self:
        """Attach credentials (used by connect() and by the notebook login form)."""
        if credentials is None:
            if not api_key:
                raise CredentialsError("login() needs a personal API key (phx_...).")
            credentials = Credentials(
                api_key=_credentials.check_api_key(api_key, source="login form"),
                source="login form",
            )
        if host is not None:
            self.settings = replace(self.settings, host=_config.normalize_host(host))
        if project_id not in (None, ""):
            pid = _config.parse_project_id(project_id, source="login")
            self.settings = replace(self.settings, project_id=pid)
            self._project = Project(pid, None, "login")
        self._credentials = credentials
        self._http = HttpClient(self.settings, credentials, session=self._session)
        self._fetcher = Fetcher(
            self._http,
            self._store,
            scope=self._scope(credentials),
            ttl=self._cache_ttl,
            offline=self._offline,
        )
        self._me = None
        self._user_unreadable = False
        self._discover()
        return self

    def _scope(self, credentials: Credentials) -> str:
        fingerprint = self._store.fingerprint(*credentials.secrets) if self._store else "-"
        return f"{self.settings.host}|{fingerprint}"

    def _discover(self) -> None:
        """Read the user once: it checks the key and picks the project when none was given.

        A key without `user:read` gets a 403 there; with a project given that is no obstacle
        (the 403 already proves the key valid, and the user is only shown, never needed)."""
        assert self._credentials is not None
        if self._legacy is None and self._credentials.mode == "basic":
            # HTTP Basic exists only on old self-hosted PostHog, which has only the old API.
            self._legacy = True
        if self._legacy:
            self._discover_legacy()
            return
        try:
            me = self.me()
        except NotFoundError:
            if self._legacy is False:
                raise
            log.info("no /api/users/@me/ on %s: using the legacy API", self.settings.host)
            self._legacy = True
            self._discover_legacy()
            return
        except PermissionDeniedError as exc:
            if self.settings.project_id is None:
                raise _cannot_find_project(exc) from None
            self._user_unreadable = True
            log.info(
                "this key cannot read /api/users/@me/; using project %s as given",
                self.settings.project_id,
            )
            return
        self._choose_project(me.get("team") or {})

    def _discover_legacy(self) -> None:
        """Old PostHog: /api/user/ checks the credentials and names the current team."""
        try:
            user = self.get("/api/user/", resource="user")
        except NotFoundError:
            # No legacy API here: current PostHog. Its @me answer explains what is wrong
            # (for HTTP Basic: that only personal API keys are accepted).
            self._legacy = False
            self._choose_project(self.me().get("team") or {})
            return
        self._me = user if isinstance(user, dict) else {}
        team = self._me.get("team") or {}
        if self.settings.project_id is None and team.get("id") is not None:
            self.settings = replace(self.settings, project_id=int(team["id"]))
            self._project = Project(int(team["id"]), team.get("name"), "your user's team")

    def _choose_project(self, team: dict[str, Any]) -> None:
        if self.settings.project_id is None:
            pid = team.get("project_id") or team.get("id")
            if pid is None:
                raise CredentialsError(
                    "Your PostHog user has no current project; pass project_id=... "
                    "(ph.projects() lists them)."
                )
            self.settings = replace(self.settings, project_id=int(pid))
            self._project = Project(int(pid), team.get("name"), "your user's current project")
            log.info("using project %s (%s), your current project", pid, team.get("name"))
        elif team.get("project_id") == self.settings.project_id:
            self._project = Project(self.settings.project_id, team.get("name"), "argument")

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            raise CredentialsError(
                "Not connected yet: enter your personal API key in the login form shown by "
                "connect() (or run %posthog login), or call ph.login('phx_...')."
            )
        return self._fetcher

    @property
    def http(self) -> HttpClient:
        self.fetcher  # noqa: B018 - raises the not-connected message
        assert self._http is not None
        return self._http

    @property
    def project_id(self) -> int:
        self.fetcher  # noqa: B018 - not connected yet: say how to connect, first
        if self.settings.project_id is None:
            raise CredentialsError(
                "No project selected: pass project_id=... to connect() or set POSTHOG_PROJECT_ID."
            )
        return self.settings.project_id

    @property
    def legacy(self) -> bool:
        return bool(self._legacy)

    @property
    def project(self) -> Project:
        """The project read, and how it was chosen (for display)."""
        return self._project

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def store(self) -> CacheStore | None:
        """The cache store, or None when the cache is off."""
        return self._store

    @property
    def host_source(self) -> str:
        """Where the host came from (argument, environment, .env, ...)."""
        return self._host_source

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def user_if_read(self) -> dict[str, Any] | None:
        """The user as read so far (None before /api/users/@me/ was read); never fetches."""
        return self._me

    @property
    def user_unreadable(self) -> bool:
        """The key lacks user:read, so /api/users/@me/ answered 403."""
        return self._user_unreadable

    @property
    def cache(self) -> CacheStore:
        """The on-disk cache: `ph.cache.info()`, `ph.cache.clear(resource=..., older_than=...)`."""
        if self._store is None:
            raise CacheError("The cache is off for this connection (connect(cache=False)).")
        return self._store

    def project_path(self, resource: str) -> str:
        return f"/api/projects/{self.project_id}/{resource.strip('/')}/"

    # -- generic access ----------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        resource: str | None = None,
        cache: bool = True,
        refresh: bool = False,
    ) -> Any:
        """GET one URL on the PostHog origin and return its JSON (cached like every GET)."""
        try:
            return self.fetcher.get(
                path,
                params,
                resource=resource or _resource_of(path),
                cache=cache,
                refresh=refresh,
            )
        finally:
            self.fetcher.flush()  # on disk before the next connection (or process) looks

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        resource: str | None = None,
        cache: bool = True,
        refresh: bool = False,
        progress: bool | None = None,
        desc: str | None = None,
        grow_to: int | None = None,
        overlap: int = 0,
        rows: int | None = None,
    ) -> Iterator[Page]:
        """Every page of a list endpoint, following `next` (or `has_next`) to the end;
        `grow_to` lets limit/offset pages grow to that many rows, `overlap` makes each
        repeat that many rows of the one before, `rows` reads a limit/offset list only as
        far as its first `rows` rows (see _pagination)."""
        name = resource or _resource_of(path)

        def fetch(url: str, page_params: Mapping[str, Any] | None) -> Any:
            return self.fetcher.get(
                url,
                page_params,
                resource=name,
                cache=cache,
                refresh=refresh,
                validate=lambda body: to_page(body, url) is not None,  # never cache a bad page
            )

        # ahead: two requests in flight on limit/offset lists (see _pagination); the fetcher,
        # the cache and the HTTP client are safe to use from two threads.
        pages = iter_pages(
            fetch,
            self.http.url_for(path),
            params,
            ahead=True,
            grow_to=grow_to,
            overlap=overlap,
            rows=rows,
        )
        show = self.progress if progress is None else progress

        def total(page: Page) -> int | None:
            return page.count if rows is None or page.count is None else min(page.count, rows)

        yield from counted(
            pages, show=show, desc=desc or name, rows=lambda p: len(p.results), total=total
        )

    # -- who and where -------------------------------------------------------------------------

    def me(self, *, refresh: bool = False) -> dict[str, Any]:
        """The authenticated user (/api/users/@me/, needs the user:read scope), as a dict."""
        if self._me is None or refresh:
            data = self.get("/api/users/@me/", resource="me", refresh=refresh)
            self._me = data if isinstance(data, dict) else {}
        return self._me

    def readable_user(self) -> dict[str, Any]:
        """The user, or {} when the key may not read it (no user:read): for display only."""
        return {} if self._user_unreadable else self.me()


def _cannot_find_project(exc: PermissionDeniedError) -> PermissionDeniedError:
    """The 403 from /api/users/@me/ with what to do when no project was given."""
    scope = exc.scope or "user:read"
    exc.args = (
        f"{exc.args[0].splitlines()[0]}\n"
        f"posthog-pandas reads /api/users/@me/ to find your project, and this key lacks the "
        f"'{scope}' scope. Name the project instead: connect(project_id=...) or set "
        "POSTHOG_PROJECT_ID (the number in your PostHog URL, /project/<id>/); or add "
        f"'{scope}' to the key (Settings → Personal API keys → edit the key).",
    )
    return exc


def _resource_of(path: str) -> str:
    parts = [p for p in path.split("?")[0].split("/") if p and p != "api"]
    if len(parts) >= 3 and parts[0] in ("projects", "environments"):
        return parts[2]
    return parts[-1] if parts else "root"
