"""HTTP transport (gzip, keep-alive) and every injected fault of the local server."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from posthog_pandas.server import Faults, LocalPostHog
from posthog_pandas.testing import local_posthog  # noqa: F401  (the plugin fixture, explicitly)

pytestmark = pytest.mark.integration

PERSONS = "/api/projects/1/persons/"


@pytest.fixture
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=200, events=1000, seed=5) as server:
        yield server


def get(srv: LocalPostHog, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {srv.api_key}", **kwargs.pop("headers", {})}
    return requests.get(srv.url + path, headers=headers, **kwargs)


def test_plugin_fixture_serves(local_posthog: LocalPostHog) -> None:  # noqa: F811
    r = get(local_posthog, "/api/projects/1/persons/?limit=1")
    assert r.status_code == 200
    assert len(local_posthog.dataset().persons) == 500
    assert len(local_posthog.dataset().events) == 5000


def test_gzip_only_when_asked(srv: LocalPostHog) -> None:
    zipped = get(srv, PERSONS, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    plain = get(srv, PERSONS, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.json() == plain.json()


def test_keep_alive_serves_several_requests_on_one_connection(srv: LocalPostHog) -> None:
    host, port = srv.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        socks = []
        for path in (PERSONS, "/api/projects/1/events/", "/api/users/@me/"):
            conn.request("GET", path, headers={"Authorization": f"Bearer {srv.api_key}"})
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("Content-Length") is not None
            orjson.loads(resp.read())
            socks.append(conn.sock)
        assert socks[0] is not None and socks[0] is socks[1] is socks[2]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("faults", "status", "ctype"),
    [
        (Faults(rate_500=1.0), 500, "application/json"),
        (Faults(rate_502=1.0), 502, "text/html"),
        (Faults(rate_503=1.0), 503, "application/json"),
        (Faults(rate_504=1.0), 504, "text/html"),
        (Faults(html_login=1.0), 200, "text/html; charset=utf-8"),
    ],
)
def test_status_faults(srv: LocalPostHog, faults: Faults, status: int, ctype: str) -> None:
    srv.set_faults(faults)
    r = get(srv, PERSONS)
    assert r.status_code == status
    assert r.headers["Content-Type"] == ctype
    if status == 500:
        assert r.json() == {
            "type": "server_error",
            "code": "error",
            "detail": "A server error occurred.",
            "attr": None,
        }
    if ctype.startswith("text/html"):
        assert r.text.lstrip().lower().startswith(("<html", "<!doctype html"))


def test_429_fault_has_retry_after(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(rate_429=1.0, retry_after=7))
    r = get(srv, PERSONS)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert r.json()["detail"] == "Request was throttled. Expected available in 7 seconds."


def test_malformed_json_fault(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(malformed_json=1.0))
    r = get(srv, PERSONS, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


def test_reset_mid_body_fault(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(reset_mid_body=1.0))
    with pytest.raises(requests.exceptions.RequestException):
        get(srv, PERSONS)


def test_slow_fault_trips_a_client_timeout(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(slow=3.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(srv, PERSONS, timeout=0.3)


def test_hang_after_n_requests(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(hang_after=2))
    assert get(srv, PERSONS).status_code == 200
    assert get(srv, PERSONS).status_code == 200
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(srv, PERSONS, timeout=0.5)
    assert srv.requests[-1].status == 0  # logged as "never answered"
    # @me is exempt unless selected by `paths`.
    assert get(srv, "/api/users/@me/", timeout=2).status_code == 200


def test_faults_follow_the_paths_filter_and_spare_me(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(rate_500=1.0, paths=("/persons",)))
    assert get(srv, PERSONS).status_code == 500
    assert get(srv, "/api/projects/1/events/").status_code == 200
    srv.set_faults(Faults(rate_500=1.0))
    assert get(srv, "/api/users/@me/").status_code == 200
    srv.set_faults(Faults(rate_500=1.0, paths=("/api/users/@me",)))
    assert get(srv, "/api/users/@me/").status_code == 500


def test_faults_are_reproducible_from_their_seed(srv: LocalPostHog) -> None:
    runs = []
    for _ in range(2):
        srv.set_faults(Faults(rate_500=0.5, seed=9))
        runs.append([get(srv, PERSONS).status_code for _ in range(12)])
    assert runs[0] == runs[1] and set(runs[0]) == {200, 500}


def test_short_pages_still_give_next_and_lose_nothing(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(short_pages=True))
    url: str | None = f"{srv.url}{PERSONS}?limit=50"
    sizes, ids = [], []
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {srv.api_key}"}).json()
        sizes.append(len(page["results"]))
        ids += [p["id"] for p in page["results"]]
        url = page["next"]
    assert sizes[0] < 50 and len(sizes) > 4
    persons = srv.dataset().persons.sort_values(["created_at", "id"], ascending=False)
    assert ids == list(persons["id"])


def test_repeat_next(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(repeat_next=True))
    for path in (f"{PERSONS}?limit=10", "/api/projects/1/feature_flags/?limit=3"):
        assert get(srv, path).json()["next"] == srv.url + path


def test_foreign_next_and_the_foreign_listener(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(foreign_next=True))
    nxt = get(srv, "/api/projects/1/events/?limit=10").json()["next"]
    assert nxt.startswith(srv.foreign_url + "/api/projects/1/events/?limit=10&before=")
    requests.get(nxt, headers={"Authorization": f"Bearer {srv.api_key}"})
    requests.get(nxt)
    foreign = srv.foreign_requests
    assert [f.had_credentials for f in foreign] == [True, False]
    assert foreign[0].path == "/api/projects/1/events/"
    assert srv.api_key not in repr(foreign)


def test_stop_releases_a_hung_request() -> None:
    server = LocalPostHog(persons=50, events=100, faults=Faults(hang_after=0)).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            get(server, PERSONS, timeout=30)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    while not server.requests:
        threading.Event().wait(0.01)
    server.stop()
    t.join(10)
    assert not t.is_alive() and len(errors) == 1


def test_hang_from_offset_picks_requests_by_offset_not_arrival(srv: LocalPostHog) -> None:
    srv.set_faults(Faults(hang_from_offset=100, paths=("/persons",)))
    assert get(srv, PERSONS + "?limit=10&offset=99").status_code == 200
    assert get(srv, PERSONS + "?limit=10").status_code == 200  # no offset: never hangs
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(srv, PERSONS + "?limit=10&offset=100", timeout=0.5)
    assert srv.requests[-1].status == 0
    assert get(srv, PERSONS + "?limit=10&offset=5").status_code == 200  # still answered after
