"""Display text shared by the connection's repr, the magics and the login form.

One wording per thing shown: how a connection authenticates, who and where it is, and the
first line of an error (what a notebook shows of it).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from posthog_pandas._credentials import Credentials

if TYPE_CHECKING:
    from posthog_pandas._core import Connection
    from posthog_pandas.client import PostHog

__all__ = [
    "auth_text",
    "connected_message",
    "connection_html",
    "connection_summary",
    "first_line",
    "project_name",
    "readable_user",
    "whoami",
]

AUTH_MODES: dict[str, str] = {
    "bearer": "personal API key in the Authorization header",
    "body": "personal API key in the request body (queries: Authorization header)",
    "basic": "username and password (HTTP Basic, legacy)",
}


def auth_text(credentials: Credentials | None, *, show_masked_key: bool) -> str:
    """How the connection authenticates and where the key came from; the masked key only
    when asked (the repr shows it, whoami never does)."""
    if credentials is None:
        return "not connected"
    where = AUTH_MODES[credentials.mode]
    if show_masked_key:
        return f"{where} ({credentials.masked}, from {credentials.source})"
    return f"{where}, from {credentials.source}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its class name when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def project_name(ph: PostHog, me: Mapping[str, Any]) -> str | None:
    """The project's name from /users/@me/ (current team or the organization's list)."""
    pid = ph.settings.project_id
    team = me.get("team") or {}
    if pid is not None and pid in (team.get("project_id"), team.get("id")) and team.get("name"):
        return str(team["name"])
    for project in (me.get("organization") or {}).get("projects") or []:
        if isinstance(project, dict) and project.get("id") == pid and project.get("name"):
            return str(project["name"])
    return ph._conn.project.name


def readable_user(ph: PostHog) -> dict[str, Any]:
    """The user, or {} when the key may not read it (no user:read): for display only."""
    return ph._conn.readable_user()


def connected_message(ph: PostHog) -> str:
    me = readable_user(ph) if not ph.legacy else {}
    name = project_name(ph, me)
    suffix = f" ({name})" if name else ""
    return f"Connected as {me.get('email') or 'unknown user'} to project {ph.project_id}{suffix}"


def whoami(ph: PostHog, me: Mapping[str, Any]) -> dict[str, str]:
    """User, project, host and auth mode; never the key, not even masked."""
    name = project_name(ph, me)
    return {
        "user": str(me.get("email") or "unknown"),
        "project": f"{ph.project_id}" + (f" ({name})" if name else ""),
        "host": ph.settings.host,
        "auth": auth_text(ph._conn.credentials, show_masked_key=False),
    }


def connection_summary(conn: Connection) -> dict[str, str]:
    """Host, project, user, auth, cache and API of a connection, as its repr shows them."""
    user = (conn.user_if_read or {}).get("email") or "(not read)"
    if conn.user_unreadable:
        user = "(unknown: the key lacks the user:read scope)"
    project = "(not chosen)"
    if conn.settings.project_id is not None:
        name = f" {conn.project.name!r}" if conn.project.name else ""
        project = f"{conn.settings.project_id}{name} (from {conn.project.source})"
    if conn.credentials is None:
        auth = "not connected: enter a key in the login form or call ph.login()"
    else:
        auth = auth_text(conn.credentials, show_masked_key=True)
    return {
        "host": f"{conn.settings.host} (from {conn.host_source})",
        "project": project,
        "user": str(user),
        "auth": auth,
        "cache": _cache_text(conn),
        "api": "legacy (/api/person/, /api/user/)" if conn.legacy else "current",
    }


def _cache_text(conn: Connection) -> str:
    store = conn.store
    if store is None:
        return "off"
    mode = ", offline" if conn.offline else ""
    try:
        info = store.info()
        return f"{store.directory} ({info.entries} entries, {info.bytes:,} bytes{mode})"
    except Exception:  # noqa: BLE001 - a repr must never raise
        return f"{store.directory}{mode}"


def connection_html(summary: Mapping[str, str]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in summary.items()
    )
    return f"<div><b>PostHog connection</b><table>{rows}</table></div>"
