"""Display text shared by the connection's repr, the magics and the login form.

One wording per thing shown: how a connection authenticates, who and where it is, and the
first line of an error (what a notebook shows of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from posthog_pandas._credentials import Credentials

if TYPE_CHECKING:
    from posthog_pandas.client import PostHog

__all__ = ["auth_text", "connected_message", "first_line", "project_name", "whoami"]

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
    return ph._project.name


def connected_message(ph: PostHog) -> str:
    me = ph.readable_user() if not ph.legacy else {}
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
        "auth": auth_text(ph._credentials, show_masked_key=False),
    }
