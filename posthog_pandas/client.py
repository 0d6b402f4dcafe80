"""The connector: `connect()` and the `PostHog` object that the accessors hang off."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import requests

from posthog_pandas import _config, _credentials, _session
from posthog_pandas._credentials import Prompter
from posthog_pandas._display import auth_text
from posthog_pandas._fetcher import CacheTTL
from posthog_pandas.cache import CacheStore, default_cache_dir
from posthog_pandas.exceptions import ConfigurationError, CredentialsError
from posthog_pandas.export import ExportMixin


def connect(
    api_key: str | None = None,
    *,
    host: str | None = None,
    project_id: int | str | None = None,
    key_in: str = "header",
    username: str | None = None,
    password: str | None = None,
    session: requests.Session | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    cache_ttl: CacheTTL | None = None,
    offline: bool = False,
    progress: bool | None = None,
    timeout: float | tuple[float, float] | None = None,
    retry: _config.RetrySettings | None = None,
    pacing: _config.PacingSettings | None = None,
    verify: bool | str = True,
    legacy: bool | None = None,
    dotenv: bool | str | Path = True,
    prompt: bool | Prompter = True,
    login: bool = True,
) -> PostHog:
    """Connect to PostHog and return the connector that the accessors hang off.

    The personal API key is looked up in this order, first found wins: `api_key` (or
    `username`/`password` for old self-hosted instances), the environment
    (POSTHOG_PERSONAL_API_KEY, POSTHOG_HOST, POSTHOG_PROJECT_ID), a `.env` file in the working
    directory or a parent, then a prompt (a widget in notebooks, getpass in terminals).

    Args:
        api_key: a personal API key (phx_...). Project keys (phc_...) are refused: they cannot read.
        host: https://us.posthog.com (default), https://eu.posthog.com, "us", "eu", or your
            self-hosted origin.
        project_id: the project to read; when omitted, your user's current project is used,
            read from /api/users/@me/, which needs the key's user:read scope.
        key_in: "header" (Authorization: Bearer, default) or "body": personal_api_key in the
            JSON body of GET requests. PostHog's query body (QueryRequest) forbids extra
            fields, so query POSTs carry the key in the Authorization header in both modes.
        session: a prepared requests.Session (proxies, test adapters).
        cache: keep responses on disk (default); cache_dir overrides the location.
        offline: answer only from the cache; a miss raises CacheError naming what is missing.
        progress: show progress bars (default: on in notebooks and terminals).
        timeout: seconds, or (connect, read).
        verify: TLS verification (default on); False warns, a path names a CA bundle.
        legacy: force (True) or forbid (False) the old /api/person/ and /api/user/ API; by
            default it is used with HTTP Basic or when the server lacks /api/users/@me/.
        login: False returns the connection without credentials (settings and cache only),
            for a login form to complete with `ph.login(...)`.

    In a notebook with no key anywhere, a login form is shown and the connection is returned
    unconnected: accessors raise CredentialsError pointing at the form until you connect.
    """
    resolved = _credentials.resolve(
        api_key=api_key,
        username=username,
        password=password,
        host=host,
        project_id=project_id,
        key_in=key_in,
        dotenv=dotenv,
        prompt=prompt,
    )
    settings = _config.Settings(
        host=resolved.host,
        project_id=resolved.project_id,
        timeout=_timeout(timeout),
        retry=retry or _config.RetrySettings(),
        pacing=pacing or _config.PacingSettings(),
        verify=verify,
    )
    store = _open_store(cache, cache_dir)
    ph = PostHog(
        settings=settings,
        store=store,
        session=session,
        cache_ttl=cache_ttl or CacheTTL(),
        offline=offline,
        progress=progress,
        legacy=legacy,
        host_source=resolved.host_source,
    )
    if not login:
        return ph
    if resolved.credentials is not None:
        return ph.login(credentials=resolved.credentials)
    saved = _session.remembered()  # the login form's "Remember for this session"
    if saved is not None:
        return ph.login(credentials=saved.credentials, host=saved.host, project_id=saved.project_id)
    if _credentials._in_notebook() and prompt:
        from posthog_pandas.widgets import show_login

        show_login(ph)
        return ph
    raise CredentialsError(_credentials.missing_credentials_message(settings.host))


def _timeout(value: float | tuple[float, float] | None) -> tuple[float, float]:
    if value is None:
        return (_config.DEFAULT_CONNECT_TIMEOUT, _config.DEFAULT_READ_TIMEOUT)
    parts = value if isinstance(value, tuple) else (value, value)
    try:
        connect, read = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"timeout={value!r}: give seconds as a number (e.g. 30) or a (connect, read) pair "
            "(e.g. (10, 120))."
        ) from None
    if connect <= 0 or read <= 0:
        raise ConfigurationError(f"timeout={value!r}: seconds must be positive.")
    return (connect, read)


def _open_store(cache: bool, cache_dir: str | Path | None) -> CacheStore | None:
    if not cache:
        return None
    return CacheStore(Path(cache_dir) if cache_dir is not None else default_cache_dir())


class PostHog(ExportMixin):
    """A connection to one PostHog project. Create it with `posthog_pandas.connect()`.

    The layers, each in its own module: Core (_core.py: login, project, paging, cache) ->
    QueryMixin (query.py: HogQL) -> ResourcesMixin (resources.py: the accessors) ->
    ExportMixin (export.py: files). This class adds display.
    """

    # -- display ---------------------------------------------------------------------------------

    def _summary(self) -> dict[str, str]:
        user = (self._me or {}).get("email") or "(not read)"
        if self._user_unreadable:
            user = "(unknown: the key lacks the user:read scope)"
        project = "(not chosen)"
        if self.settings.project_id is not None:
            name = f" {self._project.name!r}" if self._project.name else ""
            project = f"{self.settings.project_id}{name} (from {self._project.source})"
        if self._credentials is None:
            auth = "not connected: enter a key in the login form or call ph.login()"
        else:
            auth = auth_text(self._credentials, show_masked_key=True)
        return {
            "host": f"{self.settings.host} (from {self._host_source})",
            "project": project,
            "user": str(user),
            "auth": auth,
            "cache": self._describe_cache(),
            "api": "legacy (/api/person/, /api/user/)" if self._legacy else "current",
        }

    def _describe_cache(self) -> str:
        if self._store is None:
            return "off"
        mode = ", offline" if self._offline else ""
        try:
            info = self._store.info()
            return f"{self._store.directory} ({info.entries} entries, {info.bytes:,} bytes{mode})"
        except Exception:  # noqa: BLE001 - a repr must never raise
            return f"{self._store.directory}{mode}"

    def __repr__(self) -> str:
        lines = [f"  {k}: {v}" for k, v in self._summary().items()]
        return "PostHog(\n" + "\n".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<div><b>PostHog connection</b><table>{rows}</table></div>"

    def __reduce__(self) -> Any:
        raise TypeError(
            "A PostHog connection cannot be pickled: it holds your key. Pickle the DataFrames "
            "instead, and call posthog_pandas.connect() again where you need it."
        )
