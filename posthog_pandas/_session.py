"""The current notebook session: the default connection and a remembered login.

Kept in one place, as plain module state, so that the magics, the login form and connect()
share it without importing each other. Nothing here is ever written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from posthog_pandas._credentials import Credentials

if TYPE_CHECKING:
    from posthog_pandas.client import PostHog

__all__ = [
    "Remembered",
    "forget",
    "get_connection",
    "remember",
    "remembered",
    "reset",
    "set_connection",
]


@dataclass(frozen=True)
class Remembered:
    """A login kept in kernel memory for this session (Credentials masks its repr)."""

    credentials: Credentials
    host: str
    project_id: int | None


_connection: PostHog | None = None
_remembered: Remembered | None = None


def get_connection() -> PostHog | None:
    """The connection the magics use, or None before the first `%posthog` call."""
    return _connection


def set_connection(ph: PostHog | None) -> None:
    """Make `ph` the connection the magics use (the login form calls this on success)."""
    global _connection
    _connection = ph


def reset() -> None:
    """Forget the session's connection, so the next `%posthog` connects again (tests call this)."""
    set_connection(None)


def remembered() -> Remembered | None:
    """The login kept by the form's "Remember for this session", if any."""
    return _remembered


def remember(value: Remembered) -> None:
    global _remembered
    _remembered = value


def forget() -> None:
    """Drop the remembered login."""
    global _remembered
    _remembered = None
