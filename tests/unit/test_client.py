"""connect() and the PostHog object, against requests-mock: discovery, repr, fetch, secrets."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
import requests
import requests_mock

import posthog_pandas as php
from posthog_pandas.exceptions import CredentialsError, PaginationError

HOST = "https://ph.test"
KEY = "phx_client_unit_key_abcdefghijklmnopqrstuvwxyz0"
ME = {
    "email": "ann@example.com",
    "team": {"id": 5, "project_id": 5, "name": "Shop"},
    "organization": {"projects": [{"id": 5, "name": "Shop"}]},
}


@pytest.fixture()
def mocked() -> tuple[requests.Session, requests_mock.Adapter]:
    session = requests.Session()
    adapter = requests_mock.Adapter()
    session.mount("https://", adapter)
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)
    return session, adapter


def test_connect_discovers_the_project_and_shows_it(mocked, tmp_path: Path) -> None:
    session, adapter = mocked
    ph = php.connect(KEY, host=HOST, session=session, cache_dir=tmp_path / "c", progress=False)
    assert ph.project_id == 5
    text = repr(ph)
    assert "host: https://ph.test (from argument)" in text
    assert "project: 5 'Shop' (from your user's current project)" in text
    assert "user: ann@example.com" in text
    assert "auth: personal API key in the Authorization header (phx_…xyz0, from argument)" in text
    assert str(tmp_path / "c") in text
    assert KEY not in text and KEY not in ph._repr_html_()
    assert adapter.call_count == 1


def test_explicit_project_is_kept(mocked, tmp_path: Path) -> None:
    session, _ = mocked
    ph = php.connect(KEY, host=HOST, project_id="9", session=session, cache=False)
    assert ph.project_id == 9
    assert "cache: off" in repr(ph)


def test_connect_without_any_key_outside_a_notebook_raises(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="No PostHog personal API key found"):
        php.connect(prompt=False)


def test_connect_reads_the_environment(mocked, monkeypatch: pytest.MonkeyPatch) -> None:
    session, adapter = mocked
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", KEY)
    monkeypatch.setenv("POSTHOG_HOST", HOST)
    ph = php.connect(session=session, cache=False)
    assert "from environment" in repr(ph)
    assert adapter.request_history[0].headers["Authorization"] == f"Bearer {KEY}"


def test_connection_and_credentials_refuse_to_pickle(mocked) -> None:
    session, _ = mocked
    ph = php.connect(KEY, host=HOST, session=session, cache=False)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ph)


def test_fetch_follows_every_page_into_one_frame(mocked, tmp_path: Path) -> None:
    session, adapter = mocked
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/5/annotations/",
        [
            {
                "json": {
                    "count": 3,
                    "next": f"{HOST}/api/projects/5/annotations/?offset=2",
                    "results": [{"id": 1, "content": "a"}, {"id": 2, "content": "b"}],
                }
            },
        ],
    )
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/5/annotations/?offset=2",
        json={"count": 3, "next": None, "results": [{"id": 3, "content": "c"}]},
        complete_qs=True,
    )
    ph = php.connect(KEY, host=HOST, session=session, cache_dir=tmp_path / "c", progress=False)
    df = ph.fetch("annotations")
    assert df["id"].tolist() == [1, 2, 3]
    assert df["content"].tolist() == ["a", "b", "c"]
    # a second identical call is served from the cache: no new request
    before = adapter.call_count
    again = ph.fetch("annotations")
    assert adapter.call_count == before
    assert again["id"].tolist() == [1, 2, 3]


def test_a_next_link_to_another_origin_is_refused_without_sending(mocked) -> None:
    session, adapter = mocked
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/5/cohorts/",
        json={"next": "https://evil.test/api/projects/5/cohorts/?offset=1", "results": [{"id": 1}]},
    )
    evil = adapter.register_uri("GET", "https://evil.test/api/projects/5/cohorts/", json={})
    ph = php.connect(KEY, host=HOST, session=session, cache=False, progress=False)
    with pytest.raises(PaginationError, match="outside the configured PostHog origin"):
        ph.fetch("cohorts")
    assert evil.call_count == 0


def test_not_connected_message_points_at_the_form() -> None:
    from posthog_pandas import _config
    from posthog_pandas._core import Connection
    from posthog_pandas._fetcher import CacheTTL

    ph = php.PostHog(
        Connection(
            settings=_config.Settings(),
            store=None,
            session=None,
            cache_ttl=CacheTTL(),
            offline=False,
            progress=False,
            legacy=None,
        )
    )
    with pytest.raises(CredentialsError, match="enter your personal API key in the login form"):
        ph.persons()
    assert "not connected" in repr(ph)


def test_a_cached_page_decodes_big_integers_as_exactly_as_a_fresh_one(
    mocked, tmp_path: Path
) -> None:
    # 2**64 + 1: orjson alone would read it back as 1.8446744073709552e19 from the cache
    session, adapter = mocked
    adapter.register_uri(
        "GET",
        f"{HOST}/api/projects/5/annotations/",
        text='{"next": null, "results": [{"id": 18446744073709551617, "content": "big"}]}',
        headers={"Content-Type": "application/json"},
    )
    ph = php.connect(KEY, host=HOST, session=session, cache_dir=tmp_path / "c", progress=False)
    fresh = ph.fetch("annotations")
    calls = adapter.call_count
    cached = ph.fetch("annotations")
    assert adapter.call_count == calls  # the second frame came from the cached page
    assert fresh["id"].tolist() == ["18446744073709551617"]
    pd.testing.assert_frame_equal(cached, fresh)
