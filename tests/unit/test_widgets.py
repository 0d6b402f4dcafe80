"""The notebook login form: what it sends, what it shows, and that the key never stays in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ipywidgets
import pytest
import requests_mock

from posthog_pandas import magics, widgets
from posthog_pandas.client import PostHog
from posthog_pandas.exceptions import CredentialsError

HOST = "https://ph.test"
KEY = "phx_widget_unit_key_abcdefghijklmnopqrstuvwxyz0"
ME = {
    "email": "ann@example.com",
    "team": {"id": 5, "project_id": 5, "name": "Shop"},
    "organization": {"projects": [{"id": 5, "name": "Shop"}, {"id": 9, "name": "Lab"}]},
}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    magics.reset()
    widgets.forget()
    yield
    magics.reset()
    widgets.forget()


@pytest.fixture()
def mock() -> Iterator[requests_mock.Mocker]:
    with requests_mock.Mocker() as m:
        m.get(f"{HOST}/api/users/@me/", json=ME)
        m.get("https://us.posthog.com/api/users/@me/", json=ME)
        yield m


@pytest.fixture()
def ph(mock: requests_mock.Mocker) -> PostHog:
    ph = magics.unconnected_client(host=HOST)
    ph.progress = False
    return ph


def spy_login(ph: PostHog) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    real = ph.login

    def login(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    ph.login = login  # type: ignore[method-assign]
    return seen


def all_state(form: widgets.LoginForm) -> str:
    states = [form.box.get_state()] + [child.get_state() for child in form.children]
    return json.dumps(states, default=str)


def test_form_fields(ph: PostHog) -> None:
    form = widgets.LoginForm(ph)
    assert isinstance(form.key, ipywidgets.Password)
    assert [value for _, value in form.host.options] == [
        "https://us.posthog.com",
        "https://eu.posthog.com",
        "custom",
    ]
    assert form.host.value == "custom" and form.custom_host.value == HOST  # ph's host is custom
    assert isinstance(form.remember, ipywidgets.Checkbox) and form.remember.value is False
    assert form.button.description == "Connect"
    assert form.status.value == ""
    for child in (form.key, form.host, form.custom_host, form.project_id, form.remember):
        assert child in form.children


def test_connect_logs_in_clears_the_key_and_says_who(ph: PostHog, mock: Any) -> None:
    seen = spy_login(ph)
    form = widgets.LoginForm(ph)
    form.key.value = KEY
    form.button.click()
    assert seen == [((KEY,), {"host": HOST, "project_id": None})]
    assert form.key.value == ""
    assert "Connected as ann@example.com to project 5 (Shop)" in form.status.value
    assert form.button.disabled is False
    assert magics.get_connection() is ph  # the magics now use it
    assert KEY not in all_state(form)
    assert mock.last_request.headers["Authorization"] == f"Bearer {KEY}"


def test_project_id_and_cloud_host(mock: requests_mock.Mocker) -> None:
    ph = magics.unconnected_client()
    form = widgets.LoginForm(ph)
    assert form.host.value == "https://us.posthog.com" and form.custom_host.value == ""
    assert form.custom_host.layout.display == "none"
    form.key.value = KEY
    form.project_id.value = " 9 "
    assert form.connect() is True
    assert ph.project_id == 9 and ph.settings.host == "https://us.posthog.com"
    assert "to project 9 (Lab)" in form.status.value


def test_custom_host_shows_the_url_field(ph: PostHog) -> None:
    form = widgets.LoginForm(ph, host="us")
    form.host.value = "custom"
    assert form.custom_host.layout.display is None
    form.custom_host.value = "  "
    form.key.value = KEY
    assert form.connect() is False
    assert "Enter the URL of your PostHog instance" in form.status.value
    assert form.key.value == ""


def test_bad_key_shows_the_error_and_no_key_anywhere(ph: PostHog, mock: Any) -> None:
    mock.get(
        f"{HOST}/api/users/@me/",
        status_code=401,
        json={
            "type": "authentication_error",
            "code": "authentication_failed",
            "detail": f"Personal API key {KEY} is invalid.",
        },
    )
    form = widgets.LoginForm(ph)
    form.key.value = KEY
    form.remember.value = True
    assert form.connect() is False
    assert form.key.value == ""
    assert "cf222e" in form.status.value  # shown as an error
    assert "invalid" in form.status.value
    assert KEY not in all_state(form)
    assert widgets.remembered() is None
    assert magics.get_connection() is None


def test_project_key_is_refused_before_any_request(ph: PostHog, mock: Any) -> None:
    form = widgets.LoginForm(ph)
    form.key.value = "phc_project_key_0123456789"
    assert form.connect() is False
    assert "project API key" in form.status.value
    assert mock.call_count == 0
    assert "phc_project_key_0123456789" not in all_state(form)


def test_empty_key_asks_for_one(ph: PostHog, mock: Any) -> None:
    form = widgets.LoginForm(ph)
    form.button.click()
    assert "Enter your personal API key" in form.status.value
    assert mock.call_count == 0
    with pytest.raises(CredentialsError, match="Not connected yet"):
        ph.persons()


def test_remember_keeps_the_key_in_memory_for_the_next_connection(
    ph: PostHog, mock: Any, tmp_path: Any
) -> None:
    form = widgets.LoginForm(ph)
    form.key.value = KEY
    form.remember.value = True
    assert form.connect()
    saved = widgets.remembered()
    assert saved is not None and saved.host == HOST and saved.project_id == 5
    assert KEY not in repr(saved)
    assert not any(KEY.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    # A new magics connection (no key in the environment) reuses it.
    magics.reset()
    reused = magics.auto_connect(progress=False)
    assert reused is not ph and reused.project_id == 5
    assert mock.last_request.headers["Authorization"] == f"Bearer {KEY}"


def test_a_login_without_remember_forgets(ph: PostHog) -> None:
    first = widgets.LoginForm(ph)
    first.key.value, first.remember.value = KEY, True
    first.connect()
    second = widgets.LoginForm(ph)
    second.key.value = KEY
    second.connect()
    assert widgets.remembered() is None


def test_show_login_displays_the_form(ph: PostHog, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr(widgets, "display", shown.append)
    form = widgets.show_login(ph, project_id=5)
    assert shown == [form] and form.project_id.value == "5"
    shown.clear()
    form._ipython_display_()
    assert shown == [form.box]


def sent_states(widget: Any) -> list[dict[str, Any]]:
    """The state updates the kernel sends to the browser for `widget` from now on."""
    sent: list[dict[str, Any]] = []
    widget.comm.send = lambda data=None, **_kwargs: sent.append(data)
    return sent


def from_browser(widget: Any, **state: Any) -> None:
    """What ipywidgets does when the browser syncs a value (the comm's update message)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state}}, "buffers": []})


def press_enter(widget: Any) -> None:
    """The Text view's message for Enter (ipywidgets' widget_string.ts handleKeypress)."""
    data = {"method": "custom", "content": {"event": "submit"}}
    widget._handle_msg({"content": {"data": data}, "buffers": []})


def test_an_unsent_key_leaves_the_field_at_once(ph: PostHog, mock: Any) -> None:
    form = widgets.LoginForm(ph)
    assert form.key.continuous_update is False  # synced on Enter or blur, not per keystroke
    sent = sent_states(form.key)
    from_browser(form.key, value=KEY)  # typed, then the field lost focus: nothing submitted
    assert form.key.value == ""
    assert [s["state"] for s in sent if s["method"] == "update"] == [{"value": ""}]
    assert KEY not in all_state(form)
    assert "Key received (hidden): press Enter or Connect." in form.status.value
    assert mock.call_count == 0  # not submitted
    form.button.click()
    assert mock.last_request.headers["Authorization"] == f"Bearer {KEY}"
    assert magics.get_connection() is ph


def test_enter_after_the_key_connects(ph: PostHog, mock: Any) -> None:
    form = widgets.LoginForm(ph)
    from_browser(form.key, value=KEY)
    press_enter(form.key)
    assert "Connected as ann@example.com" in form.status.value
    assert KEY not in all_state(form)


def test_enter_before_the_key_connects_when_it_arrives(ph: PostHog, mock: Any) -> None:
    # The browser sends Enter on keypress, and the value on the change event that follows.
    form = widgets.LoginForm(ph)
    press_enter(form.key)
    assert mock.call_count == 0
    from_browser(form.key, value=f" {KEY} ")
    assert "Connected as ann@example.com" in form.status.value
    assert mock.last_request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in all_state(form)


def test_enter_in_an_empty_field_does_not_connect_a_later_key(
    ph: PostHog, mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([100.0, 100.0 + widgets.ENTER_WAITS_FOR_KEY])
    monkeypatch.setattr(widgets, "_clock", lambda: next(clock))
    form = widgets.LoginForm(ph)
    press_enter(form.key)  # nothing typed: no value follows
    from_browser(form.key, value=KEY)  # typed later, then the field lost focus
    assert mock.call_count == 0
    assert "Key received (hidden)" in form.status.value
    form.button.click()
    assert "Connected as ann@example.com" in form.status.value


def test_a_key_is_used_once(ph: PostHog, mock: Any) -> None:
    form = widgets.LoginForm(ph)
    form.key.value = KEY
    assert form.connect() is True
    assert form.connect() is False  # the key is not kept by the form after a login
    assert "Enter your personal API key" in form.status.value


def test_the_form_says_where_to_create_a_key_and_which_scopes(ph: PostHog) -> None:
    form = widgets.LoginForm(ph)
    assert form.hint in form.children
    page = f"{HOST}/settings/user-api-keys"
    assert f"<a href='{page}' target='_blank'>{page}</a>" in form.hint.value
    assert "user:read, query:read (events, HogQL), person:read (persons)" in form.hint.value
    assert f"<a href='{widgets.SCOPES_DOCS}' target='_blank'>" in form.hint.value
    form.host.value = "https://eu.posthog.com"
    assert "https://eu.posthog.com/settings/user-api-keys" in form.hint.value
    form.host.value, form.custom_host.value = "custom", "javascript:alert(1)"
    assert "https://us.posthog.com/settings/user-api-keys" in form.hint.value


def test_the_scopes_link_points_at_the_scopes_table() -> None:
    from pathlib import Path

    path, anchor = widgets.SCOPES_DOCS.split("/blob/main/")[1].split("#")
    doc = (Path(__file__).resolve().parents[2] / path).read_text()
    assert f"\n## {anchor.capitalize()}\n" in doc and "| `ph.persons()` | `person:read` |" in doc
