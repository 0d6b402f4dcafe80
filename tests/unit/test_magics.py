"""%posthog and %%posthog on a real IPython shell, against requests-mock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import requests_mock
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import posthog_pandas as php
from posthog_pandas import _credentials, magics
from posthog_pandas.cache import CacheInfo
from posthog_pandas.exceptions import AuthenticationError, QueryError
from tests.conftest import NONE_DEFINED
from tests.ipython_shell import RaisingShell

HOST = "https://ph.test"
KEY = "phx_magics_unit_key_abcdefghijklmnopqrstuvwxyz0"
ME = {
    "email": "ann@example.com",
    "team": {"id": 5, "project_id": 5, "name": "Shop"},
    "organization": {"projects": [{"id": 5, "name": "Shop"}]},
}
PERSONS = [
    {
        "id": "11111111-1111-1111-1111-111111111111",
        "uuid": "11111111-1111-1111-1111-111111111111",
        "distinct_ids": ["d1"],
        "properties": {"email": "a@x.io"},
        "created_at": "2024-01-02T00:00:00Z",
    },
    {
        "id": "22222222-2222-2222-2222-222222222222",
        "uuid": "22222222-2222-2222-2222-222222222222",
        "distinct_ids": ["d2"],
        "properties": {"email": "b@x.io"},
        "created_at": "2024-01-03T00:00:00Z",
    },
]
PERSONS_URL = f"{HOST}/api/projects/5/persons/"
QUERY_URL = f"{HOST}/api/projects/5/query/"
UUID3 = "33333333-3333-3333-3333-333333333333"
DAILY = {
    "columns": ["day", "n"],
    "types": ["Date", "UInt64"],
    "results": [["2024-01-01", 3], ["2024-01-02", 4]],
    "hasMore": False,
}


@pytest.fixture(autouse=True)
def _fresh_default() -> Iterator[None]:
    magics.reset()
    yield
    magics.reset()


@pytest.fixture()
def adapter() -> requests_mock.Adapter:
    adapter = requests_mock.Adapter()
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)
    adapter.register_uri("GET", PERSONS_URL, json={"results": PERSONS, "next": None})
    adapter.register_uri("POST", QUERY_URL, json=DAILY)
    adapter.register_uri("GET", f"{HOST}/api/projects/5/property_definitions/", json=NONE_DEFINED)
    return adapter


@pytest.fixture()
def ph(adapter: requests_mock.Adapter, tmp_path: Path) -> php.PostHog:
    session = requests.Session()
    session.mount("https://", adapter)
    ph = php.connect(KEY, host=HOST, session=session, cache_dir=tmp_path / "c", progress=False)
    magics.set_connection(ph)
    return ph


def calls(adapter: requests_mock.Adapter, method: str, url: str) -> list[Any]:
    return [r for r in adapter.request_history if r.method == method and r.url.startswith(url)]


# -- registration and %config -------------------------------------------------------------------


def test_load_ext_registers_line_and_cell_magics(ip: RaisingShell) -> None:
    assert "posthog" in ip.magics_manager.magics["line"]
    assert "posthog" in ip.magics_manager.magics["cell"]
    assert any(type(c).__name__ == "PostHogMagics" for c in ip.configurables)


def test_config_sets_every_trait(ip: RaisingShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", "PostHogMagics.limit = 7")
    ip.run_line_magic("config", "PostHogMagics.auto_connect = False")
    ip.run_line_magic("config", "PostHogMagics.cache = False")
    obj = next(c for c in ip.configurables if type(c).__name__ == "PostHogMagics")
    assert (obj.limit, obj.auto_connect, obj.cache, obj.progress) == (7, False, False, False)
    ip.run_line_magic("config", "PostHogMagics")
    out = capsys.readouterr().out
    for name in ("limit", "progress", "display_rows", "auto_connect", "cache"):
        assert f"PostHogMagics.{name}" in out


def test_display_rows_sets_pandas_options(ip: RaisingShell) -> None:
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        ip.run_line_magic("config", "PostHogMagics.display_rows = 25")
        assert pd.get_option("display.max_rows") == 25
        assert pd.get_option("display.min_rows") == 25


# -- resources ----------------------------------------------------------------------------------


def test_line_magic_returns_the_frame_and_assignment_works(
    ip: RaisingShell, ph: php.PostHog
) -> None:
    df = ip.run_line_magic("posthog", "persons")
    assert list(df["id"]) == [p["id"] for p in PERSONS]
    assert list(df["properties.email"]) == ["a@x.io", "b@x.io"]
    ip.run_cell("people = %posthog persons --no-cache")
    pd.testing.assert_frame_equal(ip.user_ns["people"], df)
    shown = ip.run_cell("%posthog persons --no-cache").result
    pd.testing.assert_frame_equal(shown, df)


def test_output_variable(ip: RaisingShell, ph: php.PostHog) -> None:
    result = ip.run_line_magic("posthog", "persons -o people")
    assert ip.user_ns["people"] is result
    ip.run_line_magic("posthog", "persons --out others")
    assert len(ip.user_ns["others"]) == 2
    with pytest.raises(UsageError, match="not a valid variable name"):
        ip.run_line_magic("posthog", "persons -o 1x")


def test_limit_flag_and_trait_are_sent_to_posthog(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    adapter.register_uri("GET", PERSONS_URL, json={"results": PERSONS[:1], "next": None})
    assert list(ip.run_line_magic("posthog", "persons --limit 1")["id"]) == [PERSONS[0]["id"]]
    sent = calls(adapter, "GET", PERSONS_URL)
    assert len(sent) == 1 and sent[0].qs["limit"] == ["1"]  # one page of one row
    ip.run_line_magic("config", "PostHogMagics.limit = 1")
    assert len(ip.run_line_magic("posthog", "persons --no-cache")) == 1
    assert calls(adapter, "GET", PERSONS_URL)[-1].qs["limit"] == ["1"]
    adapter.register_uri("GET", PERSONS_URL, json={"results": PERSONS, "next": None})
    assert len(ip.run_line_magic("posthog", "persons --limit 2")) == 2
    assert calls(adapter, "GET", PERSONS_URL)[-1].qs["limit"] == ["2"]


def test_limit_cuts_an_insight_which_is_one_answer(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    series = {"label": "s", "days": ["2024-01-01", "2024-01-02", "2024-01-03"], "data": [1, 2, 3]}
    adapter.register_uri("GET", f"{HOST}/api/projects/5/insights/9/", json={"result": [series]})
    df = ip.run_line_magic("posthog", "insight 9 --limit 2")
    assert list(df["value"]) == [1, 2]


def test_events_flags_become_bound_values(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    adapter.register_uri(
        "POST",
        QUERY_URL,
        json={
            "columns": ["uuid", "event", "timestamp"],
            "types": ["UUID", "String", "DateTime64(6, 'UTC')"],
            "results": [
                ["33333333-3333-3333-3333-333333333333", "$pageview", "2024-01-01T10:00:00Z"]
            ],
            "hasMore": False,
        },
    )
    df = ip.run_line_magic(
        "posthog",
        "events --after 2024-01-01 --before 2024-01-02 --event $pageview --event signup --limit 10",
    )
    assert list(df["event"]) == ["$pageview"]
    body = calls(adapter, "POST", QUERY_URL)[-1].json()["query"]
    assert body["values"]["__after"] == "2024-01-01 00:00:00.000000"
    assert body["values"]["__before"] == "2024-01-02 00:00:00.000000"
    assert body["values"]["__events"] == ["$pageview", "signup"]
    assert body["query"].endswith("LIMIT 10")


def test_positional_id_for_groups(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    url = f"{HOST}/api/projects/5/groups/"
    adapter.register_uri("GET", url, json={"results": [{"group_key": "acme"}], "next": None})
    df = ip.run_line_magic("posthog", "groups 0")
    assert list(df["group_key"]) == ["acme"]
    assert calls(adapter, "GET", url)[-1].qs["group_type_index"] == ["0"]
    with pytest.raises(UsageError, match="needs group_type_index"):
        ip.run_line_magic("posthog", "groups")
    with pytest.raises(UsageError, match="must be an integer"):
        ip.run_line_magic("posthog", "groups zero")


def test_event_flags_are_refused_elsewhere(ip: RaisingShell, ph: php.PostHog) -> None:
    with pytest.raises(UsageError, match="--after does not apply to persons"):
        ip.run_line_magic("posthog", "persons --after 2024-01-01")
    with pytest.raises(UsageError, match="--event does not apply to cohorts"):
        ip.run_line_magic("posthog", "cohorts --event x")


def test_refresh_and_no_cache(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    ip.run_line_magic("posthog", "persons")
    ip.run_line_magic("posthog", "persons")
    assert len(calls(adapter, "GET", PERSONS_URL)) == 1  # second answer from the cache
    ip.run_line_magic("posthog", "persons --refresh")
    assert len(calls(adapter, "GET", PERSONS_URL)) == 2
    ip.run_line_magic("posthog", "persons --no-cache")
    ip.run_line_magic("posthog", "persons --no-cache")
    assert len(calls(adapter, "GET", PERSONS_URL)) == 4
    ip.run_line_magic("config", "PostHogMagics.cache = False")
    ip.run_line_magic("posthog", "persons")
    assert len(calls(adapter, "GET", PERSONS_URL)) == 5


def test_csv_and_parquet_exports(ip: RaisingShell, ph: php.PostHog, tmp_path: Path) -> None:
    out = tmp_path / "out"
    df = ip.run_line_magic(
        "posthog", f"persons --csv {out / 'p.csv'} --parquet '{out / 'p q.parquet'}'"
    )
    assert sorted(os.listdir(out)) == ["p q.parquet", "p.csv"]  # no temp files left behind
    assert list(pd.read_csv(out / "p.csv")["id"]) == list(df["id"])
    back = pd.read_parquet(out / "p q.parquet")
    assert list(back["id"]) == list(df["id"]) and list(back.columns) == list(df.columns)


def test_line_query(ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter) -> None:
    df = ip.run_line_magic("posthog", "query select toDate(timestamp) as day, count() as n")
    assert list(df["n"]) == [3, 4]
    body = calls(adapter, "POST", QUERY_URL)[-1].json()["query"]
    assert body["query"] == "select toDate(timestamp) as day, count() as n"


# -- the cell magic -----------------------------------------------------------------------------


def test_cell_binds_placeholders_as_values(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    sql = (
        "select toDate(timestamp) as day, count() as n from events\n"
        "where event = {event_name} and timestamp >= {start} group by day order by day"
    )
    ip.user_ns["event_name"] = "$pageview"
    ip.user_ns["start"] = pd.Timestamp("2024-01-01", tz="UTC")
    result = ip.run_cell_magic("posthog", "daily", sql)
    assert ip.user_ns["daily"] is result
    assert list(result["n"]) == [3, 4]
    body = calls(adapter, "POST", QUERY_URL)[-1].json()["query"]
    assert body["query"] == sql  # the text still has {event_name}: nothing was formatted in
    assert body["values"] == {"event_name": "$pageview", "start": "2024-01-01 00:00:00.000000"}


def test_cell_injection_attempt_stays_a_value(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    evil = "x' OR 1=1; DROP TABLE events --"
    ip.user_ns["name"] = evil
    sql = "select count() as n from events where event = {name}"
    ip.run_cell(f"%%posthog\n{sql}")
    body = calls(adapter, "POST", QUERY_URL)[-1].json()["query"]
    assert body["query"].strip() == sql
    assert body["values"] == {"name": evil}


def test_cell_lists_and_numbers(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    import numpy as np

    ip.user_ns.update(names=("a", "b"), n=np.int64(3))
    ip.run_cell_magic("posthog", "", "select 1 where event in {names} limit {n}")
    body = calls(adapter, "POST", QUERY_URL)[-1].json()["query"]
    assert body["values"] == {"names": ["a", "b"], "n": 3}


def test_cell_missing_placeholder_names_it_and_sends_nothing(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    before = len(adapter.request_history)
    with pytest.raises(UsageError, match=r"placeholder \{nowhere\} has no value"):
        ip.run_cell_magic("posthog", "out", "select {nowhere}")
    assert len(adapter.request_history) == before
    assert "out" not in ip.user_ns


def test_cell_flags(ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter) -> None:
    ip.run_cell_magic("posthog", "a --csv a.csv", "select 1")
    ip.run_cell_magic("posthog", "b", "select 1")
    assert len(calls(adapter, "POST", QUERY_URL)) == 1  # cached
    ip.run_cell_magic("posthog", "c --refresh", "select 1")
    ip.run_cell_magic("posthog", "d --no-cache", "select 1")
    assert len(calls(adapter, "POST", QUERY_URL)) == 3
    assert list(pd.read_csv("a.csv")["n"]) == [3, 4]
    with pytest.raises(UsageError, match="Did you mean '--refresh'"):
        ip.run_cell_magic("posthog", "e --refrsh", "select 1")
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell_magic("posthog", "", "  \n")


# -- errors ---------------------------------------------------------------------------------------


def test_posthog_errors_become_one_line_usage_errors(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    adapter.register_uri(
        "POST",
        QUERY_URL,
        status_code=400,
        json={"type": "validation_error", "code": "query_error", "detail": "Unknown column x"},
    )
    with pytest.raises(UsageError) as excinfo:
        ip.run_cell("%%posthog\nselect x from events")
    assert "\n" not in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, QueryError)
    assert str(excinfo.value) == str(excinfo.value.__cause__).strip().splitlines()[0]
    assert KEY not in str(excinfo.value)


def test_auth_failure_is_a_usage_error(
    ip: RaisingShell, ph: php.PostHog, adapter: requests_mock.Adapter
) -> None:
    adapter.register_uri(
        "GET",
        PERSONS_URL,
        status_code=401,
        json={"type": "authentication_error", "code": "not_authenticated", "detail": "Bad key"},
    )
    with pytest.raises(UsageError) as excinfo:
        ip.run_line_magic("posthog", "persons")
    assert isinstance(excinfo.value.__cause__, AuthenticationError)


def test_other_exceptions_propagate(
    ip: RaisingShell, ph: php.PostHog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug, not a PostHog error")

    monkeypatch.setattr(php.PostHog, "read", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        ip.run_line_magic("posthog", "persons")


def test_usage_error_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "posthog_pandas")
        shell.run_cell("%posthog persns")
        err = capsys.readouterr().err
        assert err.strip() == (
            "UsageError: %posthog: unrecognized argument 'persns'. Did you mean 'persons'? "
            "See %posthog help."
        )
    finally:
        shell.configurables.clear()
        InteractiveShell.clear_instance()


@pytest.mark.parametrize(
    ("line", "suggestion"),
    [
        ("persns", "'persons'"),
        ("whoamii", "'whoami'"),
        ("cach info", "'cache'"),
        ("feature_flag", "'feature_flags'"),
        ("persons --limt 3", "'--limit'"),
        ("events --afterr 2024-01-01", "'--after'"),
        ("connect --hots x", "'--host'"),
        ("cache clear --resourc persons", "'--resource'"),
    ],
)
def test_did_you_mean(ip: RaisingShell, line: str, suggestion: str) -> None:
    with pytest.raises(UsageError, match=f"Did you mean {suggestion}"):
        ip.run_line_magic("posthog", line)


def test_bad_values_are_usage_errors_not_exits(ip: RaisingShell) -> None:
    with pytest.raises(UsageError, match="invalid int value"):
        ip.run_line_magic("posthog", "persons --limit many")
    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("posthog", "cache wipe")
    with pytest.raises(UsageError, match="cannot parse"):
        ip.run_line_magic("posthog", "persons --csv 'unterminated")


# -- subcommands ----------------------------------------------------------------------------------


def test_whoami_never_shows_the_key(
    ip: RaisingShell, ph: php.PostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("posthog", "whoami")
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "user:    ann@example.com",
        "project: 5 (Shop)",
        "host:    https://ph.test",
        "auth:    personal API key in the Authorization header, from argument",
    ]
    assert KEY not in out and KEY[-4:] not in out


def test_cache_info_and_clear(
    ip: RaisingShell, ph: php.PostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("posthog", "persons")
    info = ip.run_line_magic("posthog", "cache info")
    assert isinstance(info, CacheInfo) and info.resources["persons"].entries >= 1
    one = ip.run_line_magic("posthog", "cache info --resource persons")
    assert list(one["resource"]) == ["persons"]
    removed = info.resources["persons"].entries
    assert ip.run_line_magic("posthog", "cache clear --resource persons") is None
    assert capsys.readouterr().out.startswith(f"Removed {removed} cache entries of persons")
    assert "persons" not in ph.cache.info().resources


def test_cache_works_without_a_connection(
    ip: RaisingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    info = ip.run_line_magic("posthog", "cache info")
    assert info.entries == 0
    ip.run_line_magic("posthog", "cache clear")
    assert capsys.readouterr().out.startswith("Removed 0 cache entries from")
    assert magics.get_connection() is None


def test_help_lists_everything(ip: RaisingShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("posthog", "help")
    text = capsys.readouterr().out
    for word in ("login", "connect", "whoami", "cache info|clear", "%%posthog", "persons"):
        assert word in text
    assert "%config PostHogMagics.auto_connect" in text
    ip.run_line_magic("posthog", "")
    assert capsys.readouterr().out == text


def test_help_shows_each_settings_whole_first_sentence(
    ip: RaisingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("posthog", "help")
    lines = capsys.readouterr().out.splitlines()
    obj = next(c for c in ip.configurables if type(c).__name__ == "PostHogMagics")
    for name, trait in obj.class_traits(config=True).items():
        help_text = " ".join(trait.help.split())
        first = help_text[: help_text.index(". ") + 1] if ". " in help_text else help_text
        (line,) = [x for x in lines if x.startswith(f"  %config PostHogMagics.{name} = ")]
        assert line.endswith(f"   {first} (now {getattr(obj, name)!r})")
    (rows_line,) = [x for x in lines if "PostHogMagics.display_rows" in x]
    assert "(sets pandas' display.max_rows and display.min_rows)." in rows_line


def test_first_sentence_keeps_dotted_names_and_stops_at_a_full_stop() -> None:
    assert magics.first_sentence("Sets display.max_rows. Then more.") == "Sets display.max_rows."
    assert magics.first_sentence("Uses .env and\n  connect(). None: off.") == (
        "Uses .env and connect()."
    )
    assert magics.first_sentence("No full stop") == "No full stop"


def test_connect_subcommand_sets_the_default(
    ip: RaisingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", KEY)
    with requests_mock.Mocker() as mock:
        mock.get(f"{HOST}/api/users/@me/", json=ME)
        ph = ip.run_line_magic("posthog", f"connect --host {HOST} --project-id 5")
    assert magics.get_connection() is ph
    assert ph.project_id == 5 and ph.settings.host == HOST
    assert KEY not in ph._repr_html_()


def test_auto_connect_uses_the_chain_once(
    ip: RaisingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", KEY)
    monkeypatch.setenv("POSTHOG_HOST", HOST)
    with requests_mock.Mocker() as mock:
        mock.get(f"{HOST}/api/users/@me/", json=ME)
        mock.get(PERSONS_URL, json={"results": PERSONS, "next": None})
        mock.get(f"{HOST}/api/projects/5/property_definitions/", json=NONE_DEFINED)
        assert len(ip.run_line_magic("posthog", "persons --no-cache")) == 2
        first = magics.get_connection()
        ip.run_line_magic("posthog", "persons --no-cache")
        assert magics.get_connection() is first
        assert [r.path for r in mock.request_history].count("/api/users/@me/") == 1
    magics.reset()
    assert magics.get_connection() is None


def test_auto_connect_without_a_key_is_a_usage_error(ip: RaisingShell) -> None:
    with pytest.raises(UsageError, match="No PostHog personal API key found") as excinfo:
        ip.run_line_magic("posthog", "persons")
    assert "\n" not in str(excinfo.value)


def test_auto_connect_off(ip: RaisingShell) -> None:
    ip.run_line_magic("config", "PostHogMagics.auto_connect = False")
    with pytest.raises(UsageError, match="Not connected: run %posthog connect"):
        ip.run_line_magic("posthog", "persons")


def test_login_in_a_terminal_uses_getpass(
    ip: RaisingShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(magics.getpass, "getpass", lambda prompt: KEY)
    with requests_mock.Mocker() as mock:
        mock.get(f"{HOST}/api/users/@me/", json=ME)
        ip.run_line_magic("posthog", f"login --host {HOST}")
    out = capsys.readouterr().out
    assert out.strip() == "Connected as ann@example.com to project 5 (Shop)"
    ph = magics.get_connection()
    assert ph is not None and ph.project_id == 5


def test_login_in_a_notebook_shows_the_form(
    ip: RaisingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posthog_pandas import widgets

    shown: list[Any] = []
    monkeypatch.setattr(_credentials, "_in_notebook", lambda: True)
    monkeypatch.setattr(widgets, "display", shown.append)
    assert ip.run_line_magic("posthog", "login --host eu --project-id 9") is None
    (form,) = shown
    assert isinstance(form, widgets.LoginForm)
    assert form.host.value == "https://eu.posthog.com" and form.project_id.value == "9"
    assert form.ph is magics.get_connection()
    with pytest.raises(UsageError, match="Not connected yet: enter your personal API key"):
        ip.run_line_magic("posthog", "persons")


def test_use_adopts_a_connection_from_a_variable(
    ip: RaisingShell, ph: php.PostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    magics.reset()
    ip.user_ns["mine"] = ph
    ip.run_line_magic("posthog", "use mine")
    assert magics.get_connection() is ph
    assert capsys.readouterr().out.strip() == "%posthog now uses mine (https://ph.test)."
    ip.user_ns["number"] = 3
    with pytest.raises(UsageError, match="'number' is a int, not a connection"):
        ip.run_line_magic("posthog", "use number")
    with pytest.raises(UsageError, match="'nothing' is not defined"):
        ip.run_line_magic("posthog", "use nothing")
