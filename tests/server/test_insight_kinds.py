"""The local server's insight kinds (server/insights) on small crafted event sets, against answers
computed by hand: buckets zero-filled, range and window boundaries, a person with several
distinct ids, steps at the same timestamp, the project's timezone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pandas as pd
import pytest
import requests

from posthog_pandas.server import LocalPostHog
from posthog_pandas.server.data import TABLES_DDL, generate_dataset, load_duckdb
from posthog_pandas.server.insights import InsightError, compute_insight

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def at(days: float = 0, **delta: float) -> datetime:
    return T0 + timedelta(days=days, **delta)


class Events:
    """An empty events table to add crafted events to, one person per `person` name."""

    def __init__(self) -> None:
        self.conn = duckdb.connect(":memory:")
        self.conn.execute(TABLES_DDL)
        self.count = 0

    def add(
        self,
        event: str,
        when: datetime,
        person: str,
        *,
        distinct_id: str | None = None,
        **properties: Any,
    ) -> None:
        self.count += 1
        self.conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, '', ?, ?)",
            [
                f"00000000-0000-0000-0000-{self.count:012d}",
                event,
                distinct_id or person,
                when,
                orjson.dumps(properties).decode(),
                when,
                person,
            ],
        )

    def person(self, person: str, created: datetime) -> None:
        self.conn.execute("INSERT INTO persons VALUES (?, ?, '{}', true)", [person, created])

    def query(self, node: dict[str, Any], timezone: str = "UTC") -> dict[str, Any]:
        return compute_insight(self.conn.cursor(), node, timezone)


@pytest.fixture()
def ev() -> Iterator[Events]:
    events = Events()
    yield events
    events.conn.close()


def trends_node(*events: str, math: str = "total", **extra: Any) -> dict[str, Any]:
    series = [{"kind": "EventsNode", "event": e, "math": math} for e in events]
    return {"kind": "TrendsQuery", "series": series, **extra}


def days(first: str, last: str) -> dict[str, Any]:
    return {"dateRange": {"date_from": first, "date_to": last}}


# -- TrendsQuery -----------------------------------------------------------------------------------


def test_daily_totals_and_persons_count_the_range_days_and_fill_empty_ones_with_zero(
    ev: Events,
) -> None:
    ev.add("$pageview", at(0, hours=10), "p1", distinct_id="p1-anon")
    ev.add("$pageview", at(0, hours=11), "p1", distinct_id="p1-user")  # the same person
    ev.add("$pageview", at(2, hours=23, minutes=59, seconds=59), "p2")  # the last instant
    ev.add("$pageview", at(3), "p2")  # the first instant after the range
    ev.add("$pageview", at(-1, hours=23, minutes=59, seconds=59), "p3")  # just before it
    ev.add("signed_up", at(0), "p1")

    total = ev.query(trends_node("$pageview", **days("2024-01-01", "2024-01-03")))
    dau = ev.query(trends_node("$pageview", math="dau", **days("2024-01-01", "2024-01-03")))

    (series,) = total["results"]
    assert series["data"] == [2, 0, 1]
    assert series["days"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert series["labels"] == ["1-Jan-2024", "2-Jan-2024", "3-Jan-2024"]
    assert series["count"] == 3.0
    assert series["label"] == "$pageview"
    assert series["action"]["id"] == "$pageview" and series["action"]["math"] == "total"
    assert "breakdown_value" not in series
    assert dau["results"][0]["data"] == [1, 0, 1]


def test_a_range_without_events_is_one_series_of_zeros(ev: Events) -> None:
    answer = ev.query(trends_node("$pageview", **days("2024-01-01", "2024-01-02")))
    assert [(r["data"], r["count"]) for r in answer["results"]] == [([0, 0], 0.0)]


def test_days_are_the_projects_days(ev: Events) -> None:
    ev.add("$pageview", at(1, hours=3), "p1")  # 2024-01-01 19:00 in Los Angeles
    ev.add("$pageview", at(1, hours=9), "p1")  # 2024-01-02 01:00 there
    node = trends_node("$pageview", **days("2024-01-01", "2024-01-02"))
    assert ev.query(node, "America/Los_Angeles")["results"][0]["data"] == [1, 1]
    assert ev.query(node)["results"][0]["data"] == [0, 2]


def test_weeks_start_on_sunday_and_the_first_week_counts_its_days_before_date_from(
    ev: Events,
) -> None:
    ev.add("$pageview", at(-2), "p0")  # Sat 2023-12-30: the week before
    ev.add("$pageview", at(0), "p1")  # Mon 2024-01-01: before date_from, in the first week
    ev.add("$pageview", at(1), "p1")
    ev.add("$pageview", at(6), "p2")  # Sun 2024-01-07: the second week
    ev.add("$pageview", at(9, hours=12), "p2")  # Wed 2024-01-10, the last day
    ev.add("$pageview", at(10), "p3")  # Thu 2024-01-11: after date_to
    node = trends_node("$pageview", interval="week", **days("2024-01-03", "2024-01-10"))
    (series,) = ev.query(node)["results"]
    assert series["days"] == ["2023-12-31", "2024-01-07"]
    assert series["data"] == [2, 2]
    assert series["labels"] == ["3–6 Jan", "7–10 Jan"]
    dau = trends_node("$pageview", math="dau", interval="week", **days("2024-01-03", "2024-01-10"))
    assert ev.query(dau)["results"][0]["data"] == [1, 1]


def test_months_are_calendar_months(ev: Events) -> None:
    ev.add("$pageview", at(2), "p1")  # Jan 3, before date_from, in the first month
    ev.add("$pageview", at(31), "p1")  # Feb 1
    ev.add("$pageview", at(40), "p1")  # Feb 10, the last day
    ev.add("$pageview", at(41), "p1")  # Feb 11, after date_to
    node = trends_node(
        "$pageview", math="dau", interval="month", **days("2024-01-15", "2024-02-10")
    )
    (series,) = ev.query(node)["results"]
    assert (series["days"], series["data"]) == (["2024-01-01", "2024-02-01"], [1, 1])
    assert series["labels"] == ["Jan 2024", "Feb 2024"]


def test_a_breakdown_orders_values_by_total_and_puts_missing_values_last(ev: Events) -> None:
    for hour in range(3):
        ev.add("$pageview", at(0, hours=hour), "p1", **{"$browser": "Chrome"})
    ev.add("$pageview", at(1), "p2", **{"$browser": "Firefox"})
    ev.add("$pageview", at(1), "p2", **{"$browser": ""})  # empty: PostHog's null value
    ev.add("$pageview", at(1), "p3")  # no $browser at all
    ev.add("signed_up", at(1), "p3", **{"$browser": "Safari"})
    node = trends_node(
        "$pageview", "signed_up", breakdownFilter={"breakdown": "$browser"},
        **days("2024-01-01", "2024-01-02"),
    )  # fmt: skip
    rows = [(r["action"]["id"], r["breakdown_value"], r["data"]) for r in ev.query(node)["results"]]
    assert rows == [
        ("$pageview", "Chrome", [3, 0]),
        ("$pageview", "Firefox", [0, 1]),
        ("$pageview", "$$_posthog_breakdown_null_$$", [0, 2]),
        ("signed_up", "Safari", [0, 1]),
    ]
    labels = [r["label"] for r in ev.query(node)["results"]]
    assert labels[0] == "$pageview - Chrome"


def test_breakdown_values_past_the_limit_are_summed_as_other(ev: Events) -> None:
    ev.add("$pageview", at(0), "p1", **{"$browser": "Chrome"})
    ev.add("$pageview", at(0), "p1", **{"$browser": "Chrome"})
    ev.add("$pageview", at(0), "p2", **{"$browser": "Firefox"})
    ev.add("$pageview", at(0), "p3", **{"$browser": "Safari"})
    node = trends_node(
        "$pageview", breakdownFilter={"breakdown": "$browser", "breakdown_limit": 1},
        **days("2024-01-01", "2024-01-01"),
    )  # fmt: skip
    answer = ev.query(node)
    assert [(r["breakdown_value"], r["data"]) for r in answer["results"]] == [
        ("Chrome", [2]),
        ("$$_posthog_breakdown_other_$$", [2]),
    ]
    assert answer["hasMore"] is True


def test_a_breakdown_without_events_has_no_series(ev: Events) -> None:
    node = trends_node("$pageview", breakdownFilter={"breakdown": "$browser"})
    assert ev.query({**node, **days("2024-01-01", "2024-01-02")})["results"] == []


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (trends_node("$pageview", math="weekly_active"), "math 'weekly_active' is not supported"),
        (trends_node("$pageview", interval="hour"), "interval='hour' is not supported"),
        ({"kind": "TrendsQuery", "series": []}, "series must be a non-empty list"),
        (
            trends_node(
                "$pageview", breakdownFilter={"breakdown": "$browser", "breakdown_type": "person"}
            ),
            "breakdown_type 'person' is not supported",
        ),
        (trends_node("$pageview", dateRange={"date_from": "yesterday"}), "is not a date"),
    ],
)
def test_what_the_server_cannot_answer_is_an_error_saying_so(
    ev: Events, node: dict[str, Any], message: str
) -> None:
    with pytest.raises(InsightError, match=message):
        ev.query(node)


# -- FunnelsQuery ----------------------------------------------------------------------------------


def funnel_node(*events: str, **extra: Any) -> dict[str, Any]:
    series = [{"kind": "EventsNode", "event": e} for e in events]
    return {"kind": "FunnelsQuery", "series": series, **extra}


def counts(answer: dict[str, Any]) -> list[int]:
    return [step["count"] for step in answer["results"]]


def test_a_funnel_counts_each_person_once_at_the_furthest_step_in_order_and_in_time(
    ev: Events,
) -> None:
    ev.add("a", at(0), "done")
    ev.add("b", at(0, hours=1), "done")
    ev.add("c", at(0, hours=2), "done")
    ev.add("a", at(0), "same_time")
    ev.add("b", at(0), "same_time")  # at a's timestamp: PostHog chains them in step order
    ev.add("b", at(0), "wrong_order")
    ev.add("a", at(0, hours=1), "wrong_order")
    ev.add("a", at(0), "window_edge")
    ev.add("b", at(14), "window_edge")  # exactly 14 days later: inside the window
    ev.add("a", at(0), "too_late")
    ev.add("b", at(14, seconds=1), "too_late")
    ev.add("b", at(1), "no_start")
    ev.add("a", at(0), "two_ids", distinct_id="two_ids-anon")
    ev.add("b", at(1), "two_ids", distinct_id="two_ids-user")
    answer = ev.query(funnel_node("a", "b", "c", **days("2024-01-01", "2024-01-31")))
    assert counts(answer) == [6, 4, 1]
    first, second, third = answer["results"]
    assert [s["order"] for s in answer["results"]] == [0, 1, 2]
    assert (first["name"], first["action_id"], first["type"]) == ("a", "a", "events")
    assert first["average_conversion_time"] is None
    # PostHog averages the positive times only (same_time's 0 s is left out)
    assert second["average_conversion_time"] == (3600 + 14 * 86400 + 86400) / 3
    assert second["median_conversion_time"] == 86400
    assert third["average_conversion_time"] == 3600


def test_the_window_and_the_unit_come_from_funnels_filter(ev: Events) -> None:
    ev.add("a", at(0), "p1")
    ev.add("b", at(0, hours=2), "p1")
    hour = {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"}
    two = {"funnelWindowInterval": 2, "funnelWindowIntervalUnit": "hour"}
    span = days("2024-01-01", "2024-01-01")
    assert counts(ev.query(funnel_node("a", "b", funnelsFilter=hour, **span))) == [1, 0]
    assert counts(ev.query(funnel_node("a", "b", funnelsFilter=two, **span))) == [1, 1]


def test_every_step_must_lie_in_the_date_range(ev: Events) -> None:
    ev.add("a", at(-1), "p1")  # the day before date_from
    ev.add("b", at(0), "p1")
    ev.add("a", at(0), "p2")
    ev.add("b", at(2), "p2")  # the day after date_to
    answer = ev.query(funnel_node("a", "b", **days("2024-01-01", "2024-01-01")))
    assert counts(answer) == [1, 0]


def test_the_best_attempt_counts_a_later_start_that_converts_in_its_window(ev: Events) -> None:
    ev.add("a", at(0), "p1")
    ev.add("a", at(20), "p1")
    ev.add("b", at(20, hours=1), "p1")  # 20 days after the first a, 1 hour after the second
    answer = ev.query(funnel_node("a", "b", **days("2024-01-01", "2024-01-31")))
    assert counts(answer) == [1, 1]
    assert answer["results"][1]["average_conversion_time"] == 3600


def test_a_funnel_nobody_entered_has_no_steps(ev: Events) -> None:
    ev.add("b", at(0), "p1")
    assert ev.query(funnel_node("a", "b", **days("2024-01-01", "2024-01-02")))["results"] == []


def test_a_funnel_breakdown_takes_the_first_value_among_the_persons_funnel_events(
    ev: Events,
) -> None:
    ev.add("a", at(0), "p1", **{"$browser": "Chrome"})
    ev.add("b", at(0, hours=1), "p1", **{"$browser": "Firefox"})
    ev.add("a", at(0), "p2")  # no value anywhere: ""
    ev.add("a", at(0), "p3", **{"$browser": ""})  # empty: not a value; the next one counts
    ev.add("a", at(20), "p3", **{"$browser": "Safari"})
    ev.add("b", at(20, hours=1), "p3")
    ev.add("other", at(-1), "p4", **{"$browser": "Edge"})  # not a funnel event
    ev.add("a", at(0), "p4", **{"$browser": "Chrome"})
    ev.add("a", at(1), "p5", **{"$browser": "Opera"})
    ev.add("b", at(1), "p5", **{"$browser": "Opera"})
    node = funnel_node("a", "b", breakdownFilter={"breakdown": "$browser"})
    answer = ev.query({**node, **days("2024-01-01", "2024-01-31")})
    table = [[(s["breakdown_value"], s["count"]) for s in steps] for steps in answer["results"]]
    assert table == [  # the most persons at the last step first, then at the first
        [(["Chrome"], 2), (["Chrome"], 1)],
        [(["Opera"], 1), (["Opera"], 1)],
        [(["Safari"], 1), (["Safari"], 1)],
        [([""], 1), ([""], 0)],
    ]
    assert answer["results"][0][0]["breakdown"] == ["Chrome"]


@pytest.mark.parametrize(
    ("ff", "message"),
    [
        ({"funnelOrderType": "strict"}, "funnelOrderType='strict' is not supported"),
        ({"funnelVizType": "trends"}, "funnelVizType='trends' is not supported"),
        ({"breakdownAttributionType": "last_touch"}, "first_touch"),
        ({"funnelWindowIntervalUnit": "fortnight"}, "funnelWindowIntervalUnit one of"),
    ],
)
def test_funnel_options_the_server_lacks_are_errors(
    ev: Events, ff: dict[str, Any], message: str
) -> None:
    with pytest.raises(InsightError, match=message):
        ev.query(funnel_node("a", "b", funnelsFilter=ff))


# -- RetentionQuery --------------------------------------------------------------------------------


def retention_node(
    kind: str, period: str = "Day", total: int = 3, last: str = "2024-01-03"
) -> dict[str, Any]:
    return {
        "kind": "RetentionQuery",
        "retentionFilter": {
            "targetEntity": {"id": "$pageview", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
            "period": period,
            "totalIntervals": total,
            "retentionType": kind,
        },
        "dateRange": {"date_from": "2024-01-01", "date_to": last},
    }


def table(answer: dict[str, Any]) -> list[list[float]]:
    return [[v["count"] for v in cohort["values"]] for cohort in answer["results"]]


@pytest.fixture()
def visits(ev: Events) -> Events:
    for day in (0, 1, 2):
        ev.add("$pageview", at(day, hours=12), "p1")
    ev.add("$pageview", at(0), "p2", distinct_id="p2-anon")
    ev.add("$pageview", at(2, hours=23, minutes=59), "p2", distinct_id="p2-user")
    ev.add("$pageview", at(-1), "p3")  # first seen before the cohorts
    ev.add("$pageview", at(1), "p3")
    ev.add("$pageview", at(3), "p4")  # the day after the last cohort
    return ev


def test_recurring_retention_puts_a_person_in_every_cohort_they_started_in(visits: Events) -> None:
    answer = visits.query(retention_node("retention_recurring"))
    assert table(answer) == [[2, 1, 2], [2, 1, 0.0], [2, 0.0, 0.0]]
    first = answer["results"][0]
    assert (first["label"], first["date"], first["breakdown_value"]) == (
        "Day 0",
        "2024-01-01T00:00:00Z",
        None,
    )
    assert [v["label"] for v in first["values"]] == ["Day 0", "Day 1", "Day 2"]
    assert [c["date"][:10] for c in answer["results"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_first_time_retention_puts_a_person_in_the_cohort_of_their_first_ever_start(
    visits: Events,
) -> None:
    answer = visits.query(retention_node("retention_first_time"))
    assert table(answer) == [[2, 1, 2], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_the_cohorts_are_the_periods_ending_with_date_to(visits: Events) -> None:
    answer = visits.query(retention_node("retention_recurring", total=2, last="2024-01-03"))
    assert [c["date"][:10] for c in answer["results"]] == ["2024-01-02", "2024-01-03"]
    assert table(answer) == [[2, 1], [2, 0.0]]


def test_weekly_retention_in_the_projects_timezone(ev: Events) -> None:
    ev.add("signup", at(0, hours=12), "p1")  # Mon Jan 1 in Los Angeles
    ev.add("signup", at(7, hours=7), "p1")  # Sun Jan 7 23:00 there: still week 0
    ev.add("signup", at(7, hours=9), "p2")  # Mon Jan 8 01:00 there: week 1
    ev.add("signup", at(8), "p1")  # week 1
    node = retention_node("retention_recurring", "Week", total=2, last="2024-01-13")
    node["retentionFilter"]["targetEntity"]["id"] = "signup"
    node["retentionFilter"]["returningEntity"]["id"] = "signup"
    answer = ev.query(node, "America/Los_Angeles")
    assert [c["date"] for c in answer["results"]] == [
        "2023-12-31T00:00:00-08:00",
        "2024-01-07T00:00:00-08:00",
    ]
    assert table(answer) == [[1, 1], [2, 0.0]]
    assert answer["results"][1]["label"] == "Week 1"


# -- StickinessQuery and LifecycleQuery -----------------------------------------------------------


def test_stickiness_counts_persons_by_how_many_intervals_they_were_active(ev: Events) -> None:
    ev.add("$pageview", at(0), "p1")
    ev.add("$pageview", at(0, hours=5), "p1")
    ev.add("$pageview", at(1), "p1")
    ev.add("$pageview", at(2), "p2")
    for day in (0, 1, 2):
        ev.add("$pageview", at(day), "p3", distinct_id=f"p3-{day}")
    ev.add("$pageview", at(3), "p4")  # after the range
    node = {"kind": "StickinessQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
    (series,) = ev.query({**node, **days("2024-01-01", "2024-01-03")})["results"]
    assert (series["data"], series["days"], series["count"]) == ([1, 1, 1], [1, 2, 3], 3)
    assert series["labels"] == ["1 day", "2 days", "3 days"]
    assert series["action"]["id"] == "$pageview" and series["label"] == "$pageview"
    weekly = ev.query({**node, "interval": "week", **days("2024-01-01", "2024-01-03")})
    assert weekly["results"][0]["data"] == [3]  # one week (Dec 31 - Jan 6): all three once


def test_lifecycle_sorts_each_persons_active_buckets_into_new_returning_resurrecting_dormant(
    ev: Events,
) -> None:
    ev.person("pA", at(1))
    ev.add("$pageview", at(1), "pA")
    ev.add("$pageview", at(2), "pA")
    ev.person("pB", at(-31))
    ev.add("$pageview", at(0), "pB")  # the day before the range: read, not shown
    ev.add("$pageview", at(2), "pB")
    ev.add("$pageview", at(3), "pC")  # no person row: never "new"
    ev.person("pD", at(3, hours=1))
    ev.add("$pageview", at(3, hours=2), "pD", distinct_id="pD-anon")
    ev.add("$pageview", at(3, hours=3), "pD", distinct_id="pD-user")
    ev.add("$pageview", at(2), "pE", **{"$process_person_profile": False})  # not a person
    node = {"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
    answer = ev.query({**node, **days("2024-01-02", "2024-01-04")})
    rows = {r["status"]: r["data"] for r in answer["results"]}
    assert [r["status"] for r in answer["results"]] == [
        "new",
        "returning",
        "resurrecting",
        "dormant",
    ]
    assert rows == {
        "new": [1.0, 0.0, 1.0],
        "returning": [0.0, 1.0, 0.0],
        "resurrecting": [0.0, 1.0, 1.0],
        "dormant": [-1.0, 0.0, -2.0],
    }
    first = answer["results"][0]
    assert first["days"] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert (first["label"], first["count"]) == ("$pageview - new", 2.0)


def test_paths_count_transitions_between_compacted_items_within_sessions(ev: Events) -> None:
    url = "$current_url"
    ev.add("$pageview", at(0), "p1", **{url: "https://x.com/"})  # trailing slash dropped
    ev.add("$pageview", at(0, minutes=1), "p1", **{url: "https://x.com/pricing"})
    ev.add("$pageview", at(0, minutes=2), "p1", **{url: "https://x.com/pricing"})  # same item
    ev.add("signed_up", at(0, minutes=5), "p1")
    ev.add("$pageview", at(0, minutes=40), "p1", **{url: "https://x.com"})  # 35 min: new session
    ev.add("$pageview", at(0, minutes=41), "p1", **{url: "https://x.com/pricing"})
    ev.add("$pageview", at(1), "p2", **{url: "https://x.com"})
    ev.add("signed_up", at(1, seconds=30), "p2")
    node = {"kind": "PathsQuery", **days("2024-01-01", "2024-01-02")}
    answer = ev.query(node)
    edges = [(r["source"], r["target"], r["value"]) for r in answer["results"]]
    assert edges == [
        ("1_https://x.com", "2_https://x.com/pricing", 2),
        ("1_https://x.com", "2_signed_up", 1),
        ("2_https://x.com/pricing", "3_signed_up", 1),
    ]
    first = answer["results"][0]
    assert first["average_conversion_time"] == (120 + 60) / 2 * 1000  # to the last of the run
    only_pages = {**node, "pathsFilter": {"includeEventTypes": ["$pageview"], "stepLimit": 2}}
    pages = [(r["source"], r["target"], r["value"]) for r in ev.query(only_pages)["results"]]
    assert pages == [("1_https://x.com", "2_https://x.com/pricing", 2)]


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_insight_kinds_go_through_the_query_apis_cache_and_async_modes() -> None:
    with LocalPostHog(persons=30, events=400, seed=4) as srv:
        headers = {"Authorization": f"Bearer {srv.api_key}"}
        url = f"{srv.url}/api/projects/1/query/"
        node = trends_node("$pageview", **days("2024-01-01", "2024-01-07"))
        first = requests.post(url, json={"query": node}, headers=headers, timeout=60)
        again = requests.post(url, json={"query": node}, headers=headers, timeout=60)
        assert first.status_code == 200 and first.json()["is_cached"] is False
        assert again.json()["is_cached"] is True
        assert again.json()["results"] == first.json()["results"]
        expected = srv.dataset().events
        in_range = expected[
            (expected["event"] == "$pageview")
            & (expected["timestamp"] >= "2024-01-01")
            & (expected["timestamp"] < "2024-01-08")
        ]
        assert sum(first.json()["results"][0]["data"]) == len(in_range) > 0
        started = requests.post(
            url, json={"query": node, "refresh": "force_async"}, headers=headers, timeout=60
        )
        assert started.status_code == 202
        status = started.json()["query_status"]
        polled = requests.get(f"{url}{status['id']}/", headers=headers, timeout=60)
        assert polled.status_code == 200
        assert polled.json()["query_status"]["results"]["results"] == first.json()["results"]


# -- against brute force on generated data ---------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> Iterator[tuple[duckdb.DuckDBPyConnection, pd.DataFrame]]:
    """Generated demo events (many persons with several distinct ids, ties on timestamps)."""
    data = generate_dataset(
        1, seed=11, persons=120, events=3000, start=datetime(2024, 1, 1, tzinfo=UTC), days=21
    )
    conn = load_duckdb(data)
    yield conn, data.events
    conn.close()


ZONES = ("UTC", "America/Los_Angeles")


def brute_days(events: pd.DataFrame, timezone: str) -> pd.Series:
    return events["timestamp"].map(lambda t: t.tz_convert(timezone).date())


@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("math", ["total", "dau"])
def test_trends_equal_a_count_of_the_events_by_local_day(
    generated: tuple[duckdb.DuckDBPyConnection, pd.DataFrame], timezone: str, math: str
) -> None:
    conn, events = generated
    node = trends_node("purchase", math=math, **days("2024-01-02", "2024-01-15"))
    (series,) = compute_insight(conn.cursor(), node, timezone)["results"]
    chosen = events[events["event"] == "purchase"].assign(day=brute_days(events, timezone))
    per_day = chosen.groupby("day")["person_id"]
    counted = per_day.size() if math == "total" else per_day.nunique()
    expected = [int(counted.get(date.fromisoformat(d), 0)) for d in series["days"]]
    assert series["data"] == expected and sum(expected) > 0


def brute_funnel(events: pd.DataFrame, steps: list[str], window: timedelta) -> list[int]:
    """Every choice of distinct step events in time order (ties allowed), person by person:
    the definition, no shortcuts."""
    limit = int(window.total_seconds() * 1e9)
    stamps = events["timestamp"].astype("int64")

    def depth(
        times: list[list[tuple[int, str]]], k: int, start: int, chain: tuple[tuple[int, str], ...]
    ) -> int:
        if k == len(times):
            return k
        last = chain[-1][0]
        later = [e for e in times[k] if e[0] >= last and e[0] - start <= limit and e not in chain]
        return max((depth(times, k + 1, start, (*chain, e)) for e in later), default=k)

    best = []
    for _, rows in events.groupby("person_id").groups.items():
        mine = list(
            zip(events.loc[rows, "event"], stamps.loc[rows], events.loc[rows, "uuid"], strict=True)
        )
        times = [sorted((t, u) for e, t, u in mine if e == s) for s in steps]
        best.append(max((depth(times, 1, e[0], (e,)) for e in times[0]), default=0))
    return [sum(1 for d in best if d >= k) for k in range(1, len(steps) + 1)]


@pytest.mark.parametrize("window_hours", [1, 24, 24 * 14])
def test_funnels_equal_the_definition_followed_by_brute_force(
    generated: tuple[duckdb.DuckDBPyConnection, pd.DataFrame], window_hours: int
) -> None:
    conn, events = generated
    steps = ["$pageview", "$autocapture", "$pageview"]
    span = days("2024-01-03", "2024-01-17")
    ff = {"funnelWindowInterval": window_hours, "funnelWindowIntervalUnit": "hour"}
    answer = compute_insight(conn.cursor(), funnel_node(*steps, funnelsFilter=ff, **span), "UTC")
    start, end = pd.Timestamp("2024-01-03", tz="UTC"), pd.Timestamp("2024-01-18", tz="UTC")
    chosen = events[(events["timestamp"] >= start) & (events["timestamp"] < end)]
    expected = brute_funnel(chosen, steps, timedelta(hours=window_hours))
    assert counts(answer) == expected and expected[-1] > 0


@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("kind", ["retention_first_time", "retention_recurring"])
def test_retention_equals_cohorts_counted_person_by_person(
    generated: tuple[duckdb.DuckDBPyConnection, pd.DataFrame], timezone: str, kind: str
) -> None:
    conn, events = generated
    node = retention_node(kind, total=7, last="2024-01-10")
    node["retentionFilter"]["returningEntity"]["id"] = "purchase"
    answer = compute_insight(conn.cursor(), node, timezone)
    first = date(2024, 1, 4)
    dated = events.assign(day=brute_days(events, timezone))
    starts = dated[dated["event"] == "$pageview"]
    returns = dated[dated["event"] == "purchase"]
    expected = [[0] * 7 for _ in range(7)]
    for person, mine in starts.groupby("person_id"):
        active = sorted(mine["day"])
        cohorts = [active[0]] if kind == "retention_first_time" else sorted(set(active))
        came_back = set(returns.loc[returns["person_id"] == person, "day"])
        for cohort in cohorts:
            k = (cohort - first).days
            if not 0 <= k < 7:
                continue
            expected[k][0] += 1
            for i in range(1, 7 - k):
                expected[k][i] += (cohort + timedelta(days=i)) in came_back
    assert table(answer) == expected


def brute_paths(events: pd.DataFrame, step_limit: int) -> dict[tuple[str, str], int]:
    """Sessions, runs and steps followed event by event, person by person, events at the same
    time in the order of `tie` (PostHog leaves that order to ClickHouse; the server uses the
    uuid's hash)."""
    rows = sorted(
        zip(
            events["person_id"],
            events["timestamp"].astype("int64"),
            map(int, events["tie"]),
            events["event"],
            events["properties"],
            strict=True,
        )
    )
    counted: dict[tuple[str, str], int] = {}
    sessions: list[list[str]] = []
    before: tuple[str, int] | None = None
    for person, stamp, _, event, props in rows:
        item = event
        if event == "$pageview":
            url = orjson.loads(props).get("$current_url") or ""
            item = url[:-1] if len(url) > 1 and url.endswith("/") else url
        if before is None or before[0] != person or stamp - before[1] >= 30 * 60 * 10**9:
            sessions.append([])
        sessions[-1].append(item)
        before = (person, stamp)
    for session in sessions:
        kept = [x for x, nxt in zip(session, [*session[1:], None], strict=True) if nxt != x]
        for i in range(1, min(len(kept), step_limit)):
            key = (f"{i}_{kept[i - 1]}", f"{i + 1}_{kept[i]}")
            counted[key] = counted.get(key, 0) + 1
    return counted


@pytest.mark.parametrize("step_limit", [3, 5])
def test_paths_equal_sessions_followed_event_by_event(
    generated: tuple[duckdb.DuckDBPyConnection, pd.DataFrame], step_limit: int
) -> None:
    conn, events = generated
    node = {"kind": "PathsQuery", "pathsFilter": {"stepLimit": step_limit, "edgeLimit": 10_000}}
    answer = compute_insight(conn.cursor(), {**node, **days("2024-01-03", "2024-01-09")}, "UTC")
    start, end = pd.Timestamp("2024-01-03", tz="UTC"), pd.Timestamp("2024-01-10", tz="UTC")
    ties = dict(conn.execute("SELECT uuid, hash(uuid) FROM events").fetchall())
    chosen = events[(events["timestamp"] >= start) & (events["timestamp"] < end)]
    expected = brute_paths(chosen.assign(tie=chosen["uuid"].map(ties)), step_limit)
    got = {(r["source"], r["target"]): r["value"] for r in answer["results"]}
    assert got == expected and len(got) > 20
    values = [r["value"] for r in answer["results"]]
    assert values == sorted(values, reverse=True)
