"""The notebook login form: a password field emptied the moment a key arrives in the kernel.

The only module that imports ipywidgets. The Password widget syncs its value on Enter or when it
loses focus (continuous_update=False), never per keystroke; the kernel then takes the key into
memory and clears the field at once, so neither a submitted nor an unsent key stays in the widget
state that Jupyter saves into the .ipynb. Enter submits; so does Connect. "Remember for this
session" keeps the key in the session's memory only (_session, never on disk), for a later
connect() in the same kernel.
"""

from __future__ import annotations

import html
import time
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
# Where PostHog's app lists personal API keys: the user-level settings section 'user-api-keys'
# (frontend/src/scenes/settings/SettingsMap.tsx in PostHog's repository).
KEYS_PAGE = "/settings/user-api-keys"
# The table of scopes each accessor needs (docs/connecting.md, "Scopes").
SCOPES_DOCS = "https://github.com/posthog-pandas/posthog-pandas/blob/main/docs/connecting.md#scopes"
RECEIVED = "Key received (hidden): press Enter or Connect."
# The browser sends Enter's submit message, then at once the value; an Enter in an empty field
# is followed by nothing, and must not make a key that arrives later (on blur) connect by itself.
ENTER_WAITS_FOR_KEY = 2.0  # seconds
_clock = time.monotonic  # tests replace it


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
        self._key: str | None = None  # taken out of the field; lives only in kernel memory
        self._entered_at: float | None = None  # Enter reached the kernel before the key did
        start_host = normalize_host(host) if host else ph.settings.host
        known = start_host in (US_HOST, EU_HOST)
        self.key = widgets.Password(
            description="API key",
            placeholder="phx_… (personal API key)",
            value="",
            continuous_update=False,  # sent on Enter or blur, not keystroke by keystroke
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
        self.hint = widgets.HTML(value="")
        self.key.observe(self._take_key, names="value")
        self.key.on_msg(self._on_key_message)
        self.host.observe(self._on_host_change, names="value")
        self.custom_host.observe(lambda _change: self._show_hint(), names="value")
        self.button.on_click(lambda _button: self.connect())
        self._show_hint()
        self.box = widgets.VBox(
            [
                widgets.HTML("<b>Connect to PostHog</b>"),
                self.hint,
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

    def _take_key(self, change: dict[str, Any]) -> None:
        """The field's value reached the kernel: keep the key in memory, empty the field."""
        typed = str(change["new"]).strip()
        if not typed:
            return
        self._key = typed
        self.key.value = ""  # first of all: the key must not stay in saved widget state
        entered, self._entered_at = self._entered_at, None
        if entered is not None and _clock() - entered < ENTER_WAITS_FOR_KEY:
            self.connect()
        else:
            self._show(RECEIVED, ok=None)

    def _on_key_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        """Enter in the key field (the Text view sends {"event": "submit"}) connects."""
        if content.get("event") != "submit":
            return
        if self._key is None:  # the browser sends Enter before the value: connect on arrival
            self._entered_at = _clock()
        else:
            self.connect()

    def _on_host_change(self, change: dict[str, Any]) -> None:
        self.custom_host.layout.display = None if change["new"] == CUSTOM else "none"
        self._show_hint()

    def _show_hint(self) -> None:
        """One line: where to create a key on the chosen host, and which scopes it needs."""
        host = self.chosen_host()
        host = host if host.startswith(("https://", "http://")) else US_HOST
        page = html.escape(host.rstrip("/") + KEYS_PAGE, quote=True)
        self.hint.value = (
            f"<small>Create a personal API key at <a href='{page}' target='_blank'>{page}</a> "
            "with read scopes: user:read, query:read (events, HogQL), person:read (persons); "
            f"<a href='{SCOPES_DOCS}' target='_blank'>scopes of every accessor</a>.</small>"
        )

    def chosen_host(self) -> str:
        value = self.custom_host.value.strip() if self.host.value == CUSTOM else self.host.value
        return str(value)

    def connect(self) -> bool:
        """Log in with the key taken from the field, and say what happened. True on success."""
        key, self._key, self._entered_at = self._key or "", None, None
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
