"""Every pagination shape of the local server, followed to the end against the generated data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
import pandas as pd
import pytest
import requests

from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=1200, events=6000, seed=11) as server:
        yield server


@pytest.fixture(scope="module")
def session(srv: LocalPostHog) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {srv.api_key}"
        yield s


def follow(
    session: requests.Session, url: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All rows and all page envelopes, following `next` until null."""
    rows: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        r = session.get(next_url)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        rows += page["results"]
        next_url = page.get("next")
        assert len(pages) < 500
    return rows, pages


def expected_person_order(srv: LocalPostHog) -> list[str]:
    p = srv.dataset().persons
    return list(p.sort_values(["created_at", "id"], ascending=False)["id"])


def test_persons_follow_next_gets_every_person_in_order(
    srv: LocalPostHog, session: requests.Session
) -> None:
    rows, pages = follow(session, f"{srv.url}/api/projects/1/persons/?limit=300")
    assert [r["id"] for r in rows] == expected_person_order(srv)
    assert set(pages[0]) == {"results", "next", "previous"}  # no count
    # 1200 = 4 full pages; a full last page still gets a `next`, which returns an empty page.
    assert [len(p["results"]) for p in pages] == [300, 300, 300, 300, 0]
    assert pages[-1]["next"] is None
    assert pages[0]["previous"] is None
    assert pages[1]["previous"] == f"{srv.url}/api/projects/1/persons/?limit=300"
    assert pages[0]["next"] == f"{srv.url}/api/projects/1/persons/?limit=300&offset=300"


def test_person_row_shape(srv: LocalPostHog, session: requests.Session) -> None:
    row = session.get(f"{srv.url}/api/projects/1/persons/?limit=1").json()["results"][0]
    assert set(row) == {
        "type", "id", "uuid", "created_at", "last_seen_at", "properties", "is_identified",
        "name", "distinct_ids", "matched_recordings", "value_at_data_point",
    }  # fmt: skip
    assert row["type"] == "person" and row["id"] == row["uuid"]
    person = srv.dataset().persons.set_index("id").loc[row["id"]]
    assert row["properties"] == person["properties"]
    assert row["distinct_ids"] == person["distinct_ids"]
    detail = session.get(f"{srv.url}/api/projects/1/persons/{row['id']}/").json()
    assert detail["id"] == int(person["numeric_id"]) and detail["uuid"] == row["id"]


def test_persons_filters(srv: LocalPostHog, session: requests.Session) -> None:
    persons = srv.dataset().persons
    email_row = persons[persons["properties"].map(lambda p: "email" in p)].iloc[0]
    email = email_row["properties"]["email"]
    url = f"{srv.url}/api/projects/1/persons/"
    r = session.get(url, params={"email": email}).json()
    assert [p["id"] for p in r["results"]] == [email_row["id"]]
    did = email_row["distinct_ids"][0]
    r = session.get(url, params={"distinct_id": did}).json()
    assert [p["id"] for p in r["results"]] == [email_row["id"]]
    props = orjson.dumps([{"key": "plan", "value": "enterprise", "type": "person"}]).decode()
    rows, _ = follow(session, f"{url}?limit=1000&properties={quote(props)}")
    expected = persons[persons["properties"].map(lambda p: p.get("plan") == "enterprise")]
    assert {r["id"] for r in rows} == set(expected["id"])


def test_events_follow_next_skips_rows_tying_the_boundary(
    srv: LocalPostHog, session: requests.Session
) -> None:
    rows, pages = follow(session, f"{srv.url}/api/projects/1/events/?limit=100")
    assert set(pages[0]) == {"next", "results"}  # no count, no previous
    events = srv.dataset().events
    got = [r["id"] for r in rows]
    assert len(got) == len(set(got))
    boundaries = {
        pd.Timestamp(parse_qs(urlsplit(p["next"]).query)["before"][0]) for p in pages if p["next"]
    }
    lost = events[~events["uuid"].isin(got)]
    # Exactly the rows sharing a page's last timestamp were skipped (strict `timestamp < before`).
    assert len(lost) > 0
    assert set(lost["timestamp"]) <= boundaries
    tie_rows = events[events["timestamp"].isin(boundaries)]
    assert set(lost["uuid"]) == set(tie_rows["uuid"]) - set(got)
    # Within a page: newest first.
    stamps = [r["timestamp"] for r in pages[0]["results"]]
    assert stamps == sorted(stamps, reverse=True)


def test_events_limit_is_clamped_to_1000(srv: LocalPostHog, session: requests.Session) -> None:
    page = session.get(f"{srv.url}/api/projects/1/events/?limit=10000").json()
    assert len(page["results"]) == 1000
    assert "limit=10000" in page["next"]  # the caller's params are copied as they were


def test_events_next_copies_params_and_filters(
    srv: LocalPostHog, session: requests.Session
) -> None:
    url = f"{srv.url}/api/projects/1/events/?event=purchase&limit=50&orderBy=%5B%22timestamp%22%5D"
    rows, pages = follow(session, url)
    assert all(r["event"] == "purchase" for r in rows)
    assert "after=" in pages[0]["next"] and "event=purchase" in pages[0]["next"]
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps)
    props = orjson.dumps([{"key": "revenue", "value": 100, "operator": "gt"}]).decode()
    page = session.get(
        f"{srv.url}/api/projects/1/events/", params={"properties": props, "limit": "1000"}
    ).json()
    assert page["results"] and all(r["properties"]["revenue"] > 100 for r in page["results"])


def test_event_row_shape(srv: LocalPostHog, session: requests.Session) -> None:
    row = session.get(f"{srv.url}/api/projects/1/events/?limit=1").json()["results"][0]
    assert set(row) == {
        "id", "distinct_id", "properties", "event", "timestamp", "person", "elements",
        "elements_chain",
    }  # fmt: skip
    assert row["timestamp"].endswith("+00:00") and row["person"] is None
    ev = srv.dataset().events.set_index("uuid").loc[row["id"]]
    assert row["properties"] == orjson.loads(ev["properties"])
    one = session.get(f"{srv.url}/api/projects/1/events/{row['id']}/").json()
    assert one["id"] == row["id"]
    bad = session.get(f"{srv.url}/api/projects/1/events/not-a-uuid/")
    assert bad.status_code == 400 and bad.json()["detail"] == "Invalid UUID"


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("feature_flags", 30),
        ("annotations", 25),
        ("insights", 14),  # twelve daily trends, a funnel, a retention
        ("cohorts", 4),
        ("actions", 8),
        ("dashboards", 5),
        ("experiments", 3),
        ("surveys", 3),
    ],
)
def test_limit_offset_lists(
    srv: LocalPostHog, session: requests.Session, name: str, count: int
) -> None:
    rows, pages = follow(session, f"{srv.url}/api/projects/1/{name}/?limit=7")
    expected = [r["id"] for r in getattr(srv.dataset(), name)]
    assert [r["id"] for r in rows] == expected and len(expected) == count
    assert all(p["count"] == count for p in pages)
    if len(pages) > 1:
        assert pages[1]["previous"] == f"{srv.url}/api/projects/1/{name}/?limit=7"


def test_annotations_default_page_is_1000(srv: LocalPostHog, session: requests.Session) -> None:
    page = session.get(f"{srv.url}/api/projects/1/annotations/").json()
    assert page["count"] == 25 and len(page["results"]) == 25 and page["next"] is None
    page = session.get(f"{srv.url}/api/projects/1/feature_flags/").json()
    assert len(page["results"]) == 30


def test_insight_result_is_computed_from_events(
    srv: LocalPostHog, session: requests.Session
) -> None:
    ins = session.get(f"{srv.url}/api/projects/1/insights/1/?refresh=blocking").json()
    series = ins["result"][0]
    events = srv.dataset().events
    # PostHog counts the project's local days, from local midnight of date_from on
    assert ins["timezone"] == srv.timezone
    stamps = events.loc[events["event"] == series["action"]["id"], "timestamp"]
    local_days = stamps.dt.tz_convert(srv.timezone).dt.strftime("%Y-%m-%d")
    assert series["days"] == [f"2024-01-{d:02d}" for d in range(1, 31)]
    assert series["data"] == [int((local_days == day).sum()) for day in series["days"]]
    assert series["count"] == sum(series["data"])
    basic = session.get(f"{srv.url}/api/projects/1/insights/?basic=true").json()["results"][0]
    assert "result" not in basic


def test_definitions(srv: LocalPostHog, session: requests.Session) -> None:
    ev = session.get(f"{srv.url}/api/projects/1/event_definitions/").json()
    counts = srv.dataset().events["event"].value_counts()
    assert {d["name"]: d["volume_30_day"] for d in ev["results"]} == counts.to_dict()
    person = session.get(f"{srv.url}/api/projects/1/property_definitions/?type=person").json()
    types = {d["name"]: d["property_type"] for d in person["results"]}
    assert types["first_seen"] == "DateTime" and types["is_beta"] == "Boolean"
    numeric = session.get(
        f"{srv.url}/api/projects/1/property_definitions/?type=event&is_numerical=true"
    ).json()
    assert [d["name"] for d in numeric["results"]] == ["revenue"]


def test_groups_cursor_pagination(srv: LocalPostHog, session: requests.Session) -> None:
    rows, pages = follow(session, f"{srv.url}/api/projects/1/groups/?group_type_index=0")
    groups = srv.dataset().groups
    orgs = groups[groups["group_type_index"] == 0].sort_values(
        ["created_at", "group_key"], ascending=[False, True]
    )
    assert [r["group_key"] for r in rows] == list(orgs["group_key"])
    assert [len(p["results"]) for p in pages] == [100, 20]
    assert "cursor=" in pages[0]["next"] and "offset" not in pages[0]["next"]
    assert set(pages[0]) == {"next", "previous", "results"}
    missing = session.get(f"{srv.url}/api/projects/1/groups/")
    assert missing.status_code == 400
    assert missing.json() == {  # PostHog's text (ee/clickhouse/views/groups.py)
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "You must pass ?group_type_index= in this URL. To get a list of valid group "
        "types, call /api/:project_id/groups_types/.",
        "attr": "group_type_index",
    }
    bad = session.get(f"{srv.url}/api/projects/1/groups/?group_type_index=0&cursor=zzz")
    assert bad.status_code == 404 and bad.json()["detail"] == "Invalid cursor"


def test_session_recordings_has_next_envelope(srv: LocalPostHog, session: requests.Session) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = session.get(
            f"{srv.url}/api/projects/1/session_recordings/"
            f"?date_from=2020-01-01&limit=50&offset={offset}"
        ).json()
        assert set(page) == {"results", "has_next", "version"}
        seen += [r["id"] for r in page["results"]]
        if not page["has_next"]:
            break
        offset += 50
    assert seen == [r["id"] for r in srv.dataset().session_recordings] and len(seen) == 120


def test_cohort_members(srv: LocalPostHog, session: requests.Session) -> None:
    rows, _ = follow(session, f"{srv.url}/api/projects/1/cohorts/2/persons/?limit=500")
    cp = srv.dataset().cohort_people
    assert {r["id"] for r in rows} == set(cp[cp["cohort_id"] == 2]["person_id"])
    cohort = session.get(f"{srv.url}/api/projects/1/cohorts/2/").json()
    assert cohort["is_static"] is True and cohort["count"] == len(rows)


def test_next_links_use_the_request_host(srv: LocalPostHog, session: requests.Session) -> None:
    port = srv.url.rsplit(":", 1)[1]
    r = session.get(
        f"{srv.url}/api/projects/1/feature_flags/?limit=5", headers={"Host": f"localhost:{port}"}
    )
    assert r.json()["next"].startswith(f"http://localhost:{port}/api/projects/1/feature_flags/")
