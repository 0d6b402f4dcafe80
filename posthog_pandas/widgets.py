"""The notebook login form: a password field that is emptied as soon as Connect is pressed.

The only module that imports ipywidgets. The key is read from the Password widget once, handed
to `ph.login()`, and the widget's value is cleared before anything else happens, so the key is
never in widget state that Jupyter saves into the .ipynb. "Remember for this session" keeps it in
the session's memory only (_session, never on disk), for a later connect() in the same kernel.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import display

from posthog_pandas._config import HOST_ALIASES, normalize_host
from posthog_pandas._credentials import Credentials
from posthog_pandas._display import connected_message, first_line
from posthog_pandas._session import Remembered, forget, remember, remembered, set_connection
from posthog_pandas.exceptions import PostHogError

if TYPE_CHECKING:
    from posthog_pandas.client import PostHog

__all__ = ["LoginForm", "Remembered", "forget", "remembered", "show_login"]

US_HOST = HOST_ALIASES["us"]
EU_HOST = HOST_ALIASES["eu"]
CUSTOM = "custom"
HOST_CHOICES = [("US cloud (us.posthog.com)", US_HOST), ("EU cloud (eu.posthog.com)", EU_HOST)]


class LoginForm:
    """Key, host and project fields with a Connect button that calls `ph.login()`."""

    def __init__(
        self,
        ph: PostHog,
        *,
        host: str | None = None,
        project_id: int | str | None = None,
    ) -> None:
        self.ph = ph
        start_host = normalize_host(host) if host else ph.settings.host
        known = start_host in (US_HOST, EU_HOST)
        self.key = widgets.Password(
            description="API key", placeholder="phx_… (personal API key)", value=""
        )
        self.host = widgets.Dropdown(
            description="Host",
            options=[*HOST_CHOICES, ("Custom…", CUSTOM)],
            value=start_host if known else CUSTOM,
        )
        self.custom_host = widgets.Text(
            description="URL",
            placeholder="https://posthog.example.com",
            value="" if known else start_host,
        )
        self.custom_host.layout.display = "none" if known else None
        pid = project_id if project_id is not None else ph.settings.project_id
        self.project_id = widgets.Text(
            description="Project id",
            placeholder="optional: your current project",
            value="" if pid is None else str(pid),
        )
        self.remember = widgets.Checkbox(description="Remember for this session", value=False)
        self.button = widgets.Button(description="Connect", button_style="primary")
        self.status = widgets.HTML(value="")
        self.host.observe(self._on_host_change, names="value")
        self.button.on_click(lambda _button: self.connect())
        self.box = widgets.VBox(
            [
                widgets.HTML("<b>Connect to PostHog</b>"),
                self.key,
                self.host,
                self.custom_host,
                self.project_id,
                self.remember,
                self.button,
                self.status,
            ]
        )

    @property
    def children(self) -> list[Any]:
        """Every widget of the form (tests check none of their state holds the key)."""
        return list(self.box.children)

    def _ipython_display_(self) -> None:
        display(self.box)  # type: ignore[no-untyped-call]

    def _on_host_change(self, change: dict[str, Any]) -> None:
        self.custom_host.layout.display = None if change["new"] == CUSTOM else "none"

    def chosen_host(self) -> str:
        value = self.custom_host.value.strip() if self.host.value == CUSTOM else self.host.value
        return str(value)

    def connect(self) -> bool:
        """Take the key out of the field, log in, and say what happened. True on success."""
        key = self.key.value.strip()
        self.key.value = ""  # first of all: the key must not stay in saved widget state
        if not key:
            self._show("Enter your personal API key (it starts with phx_).", ok=False)
            return False
        self.button.disabled = True
        self._show("Connecting…", ok=None)
        try:
            return self._login(key)
        finally:
            self.button.disabled = False

    def _login(self, key: str) -> bool:
        try:
            host = self.chosen_host()
            if not host:
                raise ValueError("Enter the URL of your PostHog instance, or pick a cloud.")
            project = self.project_id.value.strip() or None
            self.ph.login(key, host=host, project_id=project)
            message = connected_message(self.ph)
        except (PostHogError, ValueError) as exc:
            self._show(_scrub(first_line(exc), key), ok=False)
            return False
        creds = self.ph._conn.credentials
        if self.remember.value and isinstance(creds, Credentials):
            remember(Remembered(creds, self.ph.settings.host, self.ph.settings.project_id))
        else:
            forget()
        self._show(message, ok=True)
        set_connection(self.ph)  # the magics now use this connection
        return True

    def _show(self, text: str, *, ok: bool | None) -> None:
        color = {True: "#1a7f37", False: "#cf222e", None: "#57606a"}[ok]
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"


def show_login(
    ph: PostHog,
    *,
    host: str | None = None,
    project_id: int | str | None = None,
) -> LoginForm:
    """Display the login form for `ph` (connect() calls this in notebooks when no key is found).

    After a successful login, `ph` is also the connection the %posthog magics use.
    """
    form = LoginForm(ph, host=host, project_id=project_id)
    display(form)  # type: ignore[no-untyped-call]
    return form


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "********") if key else text
