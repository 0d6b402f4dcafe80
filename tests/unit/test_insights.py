"""ph.trends/funnel/retention against requests-mock: the exact query each sends, the exact tidy
frame built from PostHog's answer (dtypes included), the project's time zone, our cache,
asynchronous runs and their cancellation, and saved insights through ph.insight(id)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pandas as pd
import pytest
import requests
import requests_mock

import posthog_pandas as php
from posthog_pandas import _polling
from posthog_pandas.exceptions import ConfigurationError, QueryError

HOST = "https://ph.test"
KEY = "phx_insights_unit_key_abcdefghijklmnopqrstuvwxy"
LA = "America/Los_Angeles"
ME = {
    "email": "ann@example.com",
    "team": {"id": 5, "project_id": 5, "name": "Shop", "timezone": LA},
}
QUERY = f"{HOST}/api/projects/5/query/"
POLL = re.compile(re.escape(QUERY) + r"[0-9a-f]{32}/")
UNPACED = php.PacingSettings(analytics_per_minute=10**9, other_per_minute=10**9)
NO_RETRY = php.RetrySettings(attempts=0, backoff_factor=0.0, jitter=0.0)


@pytest.fixture()
def mocked() -> requests_mock.Adapter:
    adapter = requests_mock.Adapter()
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)
    return adapter


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_polling, "POLL_INTERVAL", 0.0)


def connect(adapter: requests_mock.Adapter, **options: Any) -> php.PostHog:
    session = requests.Session()
    session.mount("https://", adapter)
    settings: dict[str, Any] = {"cache": False, **options}
    return php.connect(
        KEY, host=HOST, session=session, progress=False, retry=NO_RETRY, pacing=UNPACED, **settings
    )


def posted(adapter: requests_mock.Adapter) -> list[dict[str, Any]]:
    return [r.json() for r in adapter.request_history if r.method == "POST"]


def without_id(body: dict[str, Any]) -> dict[str, Any]:
    """The body minus the random client_query_id (checked to be there)."""
    assert re.fullmatch(r"[0-9a-f]{32}", body.pop("client_query_id"))
    return body


def frame(columns: dict[str, tuple[list[Any], str]]) -> pd.DataFrame:
    out = {}
    for name, (values, dtype) in columns.items():
        if dtype.startswith("datetime64"):
            out[name] = pd.Series(pd.to_datetime(values, utc=True)).astype(dtype)
        else:
            out[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(out)


def la_midnights(*days: str) -> list[str]:
    """Local midnights in Los Angeles, as UTC: 08:00 in winter."""
    return [f"{d}T08:00:00Z" for d in days]


# -- trends ----------------------------------------------------------------------------------

TRENDS_ANSWER = {
    "results": [
        {
            "label": "$pageview",
            "days": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "data": [3, 0, 2.0],
            "count": 5.0,
            "action": {"order": 0, "id": "$pageview", "name": "$pageview"},
        },
        {
            "label": "signup",
            "days": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "data": [1, 1, 0],
            "count": 2.0,
            "action": {"order": 1, "id": "signup", "name": "signup"},
        },
    ],
    "is_cached": False,
    "last_refresh": "2024-01-04T10:00:00Z",
    "cache_key": "cache_trends",
}


def test_trends_sends_a_trends_query_and_returns_one_row_per_series_and_day(mocked) -> None:
    mocked.register_uri("POST", QUERY, json=TRENDS_ANSWER)
    ph = connect(mocked)
    df = ph.trends(["$pageview", "signup"], math="dau", after="2024-01-01", before="2024-01-04")
    assert without_id(posted(mocked)[0]) == {
        "query": {
            "kind": "TrendsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview", "name": "$pageview", "math": "dau"},
                {"kind": "EventsNode", "event": "signup", "name": "signup", "math": "dau"},
            ],
            "interval": "day",
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-03"},
        }
    }
    days = la_midnights("2024-01-01", "2024-01-02", "2024-01-03")
    expected = frame(
        {
            "date": (days + days, "datetime64[ns, UTC]"),
            "series": (["$pageview"] * 3 + ["signup"] * 3, "string"),
            "value": ([3, 0, 2, 1, 1, 0], "Int64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)
    assert df.attrs["timezone"] == LA and df.attrs["cache_key"] == "cache_trends"
    assert df.attrs["last_refresh"] == "2024-01-04T10:00:00.000000Z"
    # The time zone came with the user: one GET (@me) and the query, nothing else.
    assert [r.method for r in mocked.request_history] == ["GET", "POST"]


def test_a_breakdown_keeps_series_order_and_turns_posthogs_null_label_into_na(mocked) -> None:
    def series(order: int, event: str, value: Any, data: list[int]) -> dict[str, Any]:
        return {
            "label": f"{event} - {value}",
            "days": ["2024-01-07", "2024-01-14"],
            "data": data,
            "breakdown_value": value,
            "action": {"order": order, "id": event},
        }

    answer = {
        "results": [
            series(1, "signup", "Chrome", [1, 0]),
            series(0, "$pageview", "$$_posthog_breakdown_null_$$", [2, 2]),
            series(0, "$pageview", "Safari", [0, 4]),
            series(0, "$pageview", "$$_posthog_breakdown_other_$$", [1, 1]),
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    ph = connect(mocked)
    df = ph.trends(
        ["$pageview", "signup"],
        interval="week",
        after="2024-01-10",
        before="2024-01-17",
        breakdown="$browser",
    )
    node = posted(mocked)[0]["query"]
    assert node["breakdownFilter"] == {"breakdown": "$browser", "breakdown_type": "event"}
    assert node["interval"] == "week"
    assert node["dateRange"] == {"date_from": "2024-01-10", "date_to": "2024-01-16"}
    weeks = la_midnights("2024-01-07", "2024-01-14")
    expected = frame(
        {
            "date": (weeks * 4, "datetime64[ns, UTC]"),
            "series": (["$pageview"] * 6 + ["signup"] * 2, "string"),
            "breakdown_value": (
                ["Other"] * 2 + ["Safari"] * 2 + [None] * 2 + ["Chrome"] * 2,
                "string",
            ),
            "value": ([1, 1, 0, 4, 2, 2, 1, 0], "Int64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_an_empty_answer_is_an_empty_frame_with_the_right_columns(mocked) -> None:
    mocked.register_uri("POST", QUERY, json={"results": []})
    df = connect(mocked).trends("$pageview", after="2024-01-01", before="2024-01-02")
    assert list(df.columns) == ["date", "series", "value"]
    assert df.dtypes.astype(str).tolist() == ["datetime64[ns, UTC]", "string", "Int64"]
    assert df.empty


def test_the_time_zone_of_another_project_is_read_from_the_project(mocked) -> None:
    mocked.register_uri(
        "GET", f"{HOST}/api/projects/9/", json={"id": 9, "timezone": "Asia/Kolkata"}
    )
    mocked.register_uri("POST", f"{HOST}/api/projects/9/query/", json=TRENDS_ANSWER)
    ph = connect(mocked, project_id=9)
    df = ph.trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04")
    # Kolkata is UTC+05:30: its day 2024-01-01 starts at 2023-12-31 18:30 UTC.
    assert df["date"].iloc[0] == pd.Timestamp("2023-12-31T18:30:00Z")
    ph.trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04")
    project_reads = [r for r in mocked.request_history if r.path == "/api/projects/9/"]
    assert len(project_reads) == 1  # once per connection


def test_the_time_zone_posthogs_answer_names_wins_and_costs_no_request(mocked) -> None:
    mocked.register_uri(
        "POST", f"{HOST}/api/projects/9/query/", json={**TRENDS_ANSWER, "timezone": "Asia/Kolkata"}
    )
    ph = connect(mocked, project_id=9)
    df = ph.trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04")
    assert df["date"].iloc[0] == pd.Timestamp("2023-12-31T18:30:00Z")
    assert df.attrs["timezone"] == "Asia/Kolkata"
    assert [r.path for r in mocked.request_history] == ["/api/users/@me/", "/api/projects/9/query/"]


def test_a_cached_answer_is_reused_and_refresh_asks_posthog_to_compute(mocked, tmp_path) -> None:
    mocked.register_uri("POST", QUERY, json=TRENDS_ANSWER)
    ph = connect(mocked, cache=True, cache_dir=tmp_path / "c")
    args: dict[str, Any] = {"after": "2024-01-01", "before": "2024-01-04"}
    first = ph.trends(["$pageview", "signup"], **args)
    again = ph.trends(["$pageview", "signup"], **args)
    pd.testing.assert_frame_equal(first, again)
    assert len(posted(mocked)) == 1
    ph.trends(["$pageview", "signup"], refresh=True, **args)
    bodies = posted(mocked)
    assert len(bodies) == 2 and bodies[1]["refresh"] == "force_blocking"


# -- funnel ----------------------------------------------------------------------------------


def step(order: int, name: str, count: int, **extra: Any) -> dict[str, Any]:
    return {"action_id": name, "name": name, "custom_name": None, "order": order, "people": [],
            "count": count, "type": "events", **extra}  # fmt: skip


def test_funnel_sends_a_funnels_query_and_returns_one_row_per_step(mocked) -> None:
    answer = {"results": [step(0, "signup", 10), step(1, "activate", 4), step(2, "pay", 0)]}
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).funnel(
        ["signup", "activate", "pay"], window_days=7, after="2024-01-01", before="2024-02-01"
    )
    assert without_id(posted(mocked)[0]) == {
        "query": {
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": e, "name": e} for e in ("signup", "activate", "pay")
            ],
            "funnelsFilter": {
                "funnelWindowInterval": 7,
                "funnelWindowIntervalUnit": "day",
                "funnelOrderType": "ordered",
                "funnelVizType": "steps",
            },
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-31"},
        }
    }
    expected = frame(
        {
            "step": ([1, 2, 3], "Int64"),
            "event": (["signup", "activate", "pay"], "string"),
            "count": ([10, 4, 0], "Int64"),
            "conversion_rate": ([1.0, 0.4, 0.0], "Float64"),
            "step_conversion_rate": ([1.0, 0.4, 0.0], "Float64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_a_funnel_breakdown_is_one_funnel_per_value(mocked) -> None:
    answer = {
        "results": [
            [
                step(0, "a", 4, breakdown_value=["Safari"]),
                step(1, "b", 1, breakdown_value=["Safari"]),
            ],
            [step(0, "a", 2, breakdown_value=[""]), step(1, "b", 2, breakdown_value=[""])],
            [step(0, "a", 5, breakdown_value="Chrome"), step(1, "b", 0, breakdown_value="Chrome")],
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).funnel(
        ["a", "b"], after="2024-01-01", before="2024-01-02", breakdown="$browser"
    )
    assert posted(mocked)[0]["query"]["breakdownFilter"] == {
        "breakdown": "$browser",
        "breakdown_type": "event",
    }
    expected = frame(
        {
            "step": ([1, 2, 1, 2, 1, 2], "Int64"),
            "event": (["a", "b"] * 3, "string"),
            "breakdown_value": (["Chrome", "Chrome", "Safari", "Safari", None, None], "string"),
            "count": ([5, 0, 4, 1, 2, 2], "Int64"),
            "conversion_rate": ([1.0, 0.0, 1.0, 0.25, 1.0, 1.0], "Float64"),
            "step_conversion_rate": ([1.0, 0.0, 1.0, 0.25, 1.0, 1.0], "Float64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_a_funnel_nobody_entered_is_zero_persons_per_step(mocked) -> None:
    mocked.register_uri("POST", QUERY, json={"results": []})
    df = connect(mocked).funnel(["a", "b"], after="2024-01-01", before="2024-01-02")
    assert df["count"].tolist() == [0, 0]
    assert df["conversion_rate"].isna().all()
    assert df["step_conversion_rate"].tolist()[0] == 1.0 and df["step_conversion_rate"].isna()[1]


# -- retention -------------------------------------------------------------------------------


def cohort(date: str, counts: list[int]) -> dict[str, Any]:
    return {
        "date": date,
        "label": "Week 0",
        "values": [{"count": c, "label": f"Week {i}"} for i, c in enumerate(counts)],
        "breakdown_value": None,
    }


def test_retention_sends_a_retention_query_and_drops_cells_past_the_last_cohort(mocked) -> None:
    answer = {
        "results": [
            cohort("2024-01-07T00:00:00-08:00", [10, 5, 2]),
            cohort("2024-01-14T00:00:00-08:00", [8, 4, 0.0]),
            cohort("2024-01-21T00:00:00-08:00", [3, 0.0, 0.0]),
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).retention(
        "signup",
        "$pageview",
        period="week",
        periods=3,
        after="2024-01-10",
        retention_type="recurring",
    )
    assert without_id(posted(mocked)[0]) == {
        "query": {
            "kind": "RetentionQuery",
            "retentionFilter": {
                "targetEntity": {"id": "signup", "type": "events"},
                "returningEntity": {"id": "$pageview", "type": "events"},
                "period": "Week",
                "totalIntervals": 3,
                "retentionType": "retention_recurring",
            },
            # The first cohort is the week (from Sunday) holding Jan 10: Jan 7-13; the last
            # cohort's last day is Jan 27.
            "dateRange": {"date_from": "2024-01-10", "date_to": "2024-01-27"},
        }
    }
    starts = la_midnights("2024-01-07", "2024-01-14", "2024-01-21")
    expected = frame(
        {
            "cohort": ([starts[0]] * 3 + [starts[1]] * 2 + [starts[2]], "datetime64[ns, UTC]"),
            "period": ([0, 1, 2, 0, 1, 0], "Int64"),
            "persons": ([10, 5, 2, 8, 4, 3], "Int64"),
            "cohort_size": ([10, 10, 10, 8, 8, 3], "Int64"),
            "rate": ([1.0, 0.5, 0.2, 1.0, 0.5, 1.0], "Float64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_daily_retention_defaults_to_the_start_event_and_first_time(mocked) -> None:
    mocked.register_uri("POST", QUERY, json={"results": [cohort("2024-01-01T00:00:00-08:00", [0])]})
    df = connect(mocked).retention("signup", periods=1, after="2024-01-01")
    retention = posted(mocked)[0]["query"]["retentionFilter"]
    assert retention["returningEntity"] == {"id": "signup", "type": "events"}
    assert retention["period"] == "Day" and retention["retentionType"] == "retention_first_time"
    assert posted(mocked)[0]["query"]["dateRange"] == {
        "date_from": "2024-01-01",
        "date_to": "2024-01-01",
    }
    assert df["persons"].tolist() == [0] and df["rate"].isna().all()


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ph: ph.trends("e", math="sum", after="2024-01-01", before="2024-01-02"), "math="),
        (
            lambda ph: ph.trends("e", interval="hour", after="2024-01-01", before="2024-01-02"),
            "interval=",
        ),
        (lambda ph: ph.trends("e", before="2024-01-02"), "after= is required"),
        (
            lambda ph: ph.trends(["e", "f", "e"], after="2024-01-01", before="2024-01-02"),
            "'e' more than once",
        ),
        (lambda ph: ph.funnel([], after="2024-01-01", before="2024-01-02"), "steps must be"),
        (
            lambda ph: ph.funnel(["a"], window_days=0, after="2024-01-01", before="2024-01-02"),
            "window_days=0",
        ),
        (lambda ph: ph.retention("e", period="month", after="2024-01-01"), "period="),
        (lambda ph: ph.retention("e", periods=0, after="2024-01-01"), "periods=0"),
        (lambda ph: ph.retention("e", retention_type="x", after="2024-01-01"), "retention_type="),
    ],
)
def test_bad_arguments_fail_before_any_query(mocked, call, message) -> None:
    ph = connect(mocked)
    with pytest.raises(ConfigurationError, match=message):
        call(ph)
    assert posted(mocked) == []


def test_a_misspelt_option_suggests_the_right_one(mocked) -> None:
    with pytest.raises(TypeError, match="Did you mean 'refresh'"):
        connect(mocked).trends("e", after="2024-01-01", before="2024-01-02", refrsh=True)


# -- asynchronous runs -----------------------------------------------------------------------


def running(query_id: str) -> dict[str, Any]:
    return {"query_status": {"id": query_id, "complete": False, "error": False}}


def test_run_async_asks_posthog_to_run_in_the_background_and_polls(mocked, tmp_path) -> None:
    def start(request: Any, context: Any) -> dict[str, Any]:
        context.status_code = 202
        return running(request.json()["client_query_id"])

    progress = {"rows_read": 50, "estimated_rows_total": 100}
    polls = [
        {
            "status_code": 202,
            "json": {"query_status": {"complete": False, "query_progress": progress}},
        },
        {"json": {"query_status": {"complete": True, "error": False, "results": TRENDS_ANSWER}}},
    ]
    mocked.register_uri("POST", QUERY, json=start)
    mocked.register_uri("GET", POLL, polls)
    ph = connect(mocked, cache=True, cache_dir=tmp_path / "c")
    args: dict[str, Any] = {"after": "2024-01-01", "before": "2024-01-04"}
    df = ph.trends(["$pageview", "signup"], run_async=True, **args)
    assert df["value"].tolist() == [3, 0, 2, 1, 1, 0]
    body = posted(mocked)[0]
    assert body["refresh"] == "async"
    gets = [r for r in mocked.request_history if r.method == "GET" and POLL.match(r.url)]
    assert len(gets) == 2
    assert gets[0].path == f"/api/projects/5/query/{body['client_query_id']}/"
    assert gets[0].qs == {"show_progress": ["true"]}
    # The answer polled to its end is kept: the same call again sends nothing.
    sent = len(mocked.request_history)
    again = ph.trends(["$pageview", "signup"], run_async=True, **args)
    pd.testing.assert_frame_equal(df, again)
    assert len(mocked.request_history) == sent


def test_a_query_stopped_by_posthogs_time_limit_runs_again_in_the_background(mocked) -> None:
    timeout = {
        "type": "server_error",
        "code": "error",
        "detail": "Query has hit the max execution time before completing. See our docs.",
        "attr": None,
    }

    def answer(request: Any, context: Any) -> dict[str, Any]:
        if "refresh" not in request.json():
            context.status_code = 504
            return timeout
        context.status_code = 202
        return running(request.json()["client_query_id"])

    mocked.register_uri("POST", QUERY, json=answer)
    done = {"query_status": {"complete": True, "error": False, "results": TRENDS_ANSWER}}
    mocked.register_uri("GET", POLL, json=done)
    df = connect(mocked).trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04")
    assert len(df) == 6
    bodies = posted(mocked)
    assert [b.get("refresh") for b in bodies] == [None, "async"]


def test_run_async_false_keeps_the_time_limit_error(mocked) -> None:
    timeout = {
        "type": "server_error",
        "code": "error",
        "detail": "Query has hit the max execution time",
        "attr": None,
    }
    mocked.register_uri("POST", QUERY, status_code=504, json=timeout)
    with pytest.raises(php.QueryTimeoutError):
        connect(mocked).trends("e", after="2024-01-01", before="2024-01-02", run_async=False)
    assert len(posted(mocked)) == 1


def test_ctrl_c_while_polling_cancels_the_query_on_posthog(mocked) -> None:
    def start(request: Any, context: Any) -> dict[str, Any]:
        context.status_code = 202
        return running(request.json()["client_query_id"])

    def interrupted(request: Any, context: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    mocked.register_uri("POST", QUERY, json=start)
    mocked.register_uri("GET", POLL, json=interrupted)
    mocked.register_uri("DELETE", POLL, json={"message": "Query task revoked"})
    with pytest.raises(KeyboardInterrupt):
        connect(mocked).trends("e", after="2024-01-01", before="2024-01-02", run_async=True)
    deletes = [r for r in mocked.request_history if r.method == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0].path == f"/api/projects/5/query/{posted(mocked)[0]['client_query_id']}/"
    assert deletes[0].headers["Authorization"] == f"Bearer {KEY}"


def test_ctrl_c_before_posthog_answers_cancels_by_the_client_query_id(mocked) -> None:
    def hang(request: Any, context: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    mocked.register_uri("POST", QUERY, json=hang)
    mocked.register_uri("DELETE", POLL, json={"message": "Query task revoked"})
    with pytest.raises(KeyboardInterrupt):
        connect(mocked).funnel(["a", "b"], after="2024-01-01", before="2024-01-02")
    (delete,) = [r for r in mocked.request_history if r.method == "DELETE"]
    assert delete.path == f"/api/projects/5/query/{posted(mocked)[0]['client_query_id']}/"


def test_a_query_failing_in_the_background_raises_posthogs_message(mocked) -> None:
    def start(request: Any, context: Any) -> dict[str, Any]:
        context.status_code = 202
        return running(request.json()["client_query_id"])

    failed = {"query_status": {"complete": False, "error": True, "error_message": "Bad filter"}}
    mocked.register_uri("POST", QUERY, json=start)
    mocked.register_uri("GET", POLL, status_code=200, json=failed)
    with pytest.raises(QueryError, match="Bad filter"):
        connect(mocked).trends("e", after="2024-01-01", before="2024-01-02", run_async=True)


# -- saved insights --------------------------------------------------------------------------


def saved(query: dict[str, Any], result: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "name": "Saved",
        "query": {"kind": "InsightVizNode", "source": query},
        "result": result,
    }


def test_a_saved_trends_insight_is_the_same_tidy_frame_as_ph_trends(mocked) -> None:
    node = {
        "kind": "TrendsQuery",
        "series": [
            {"kind": "EventsNode", "event": "$pageview"},
            {"kind": "EventsNode", "event": "signup"},
        ],
    }
    mocked.register_uri(
        "GET", f"{HOST}/api/projects/5/insights/7/", json=saved(node, TRENDS_ANSWER["results"])
    )
    mocked.register_uri("POST", QUERY, json=TRENDS_ANSWER)
    ph = connect(mocked)
    from_insight = ph.insight(7)
    from_query = ph.trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04")
    pd.testing.assert_frame_equal(from_insight, from_query, check_like=False)
    assert mocked.request_history[1].qs == {"refresh": ["blocking"]}


def test_saved_funnel_and_retention_insights_come_back_tidy(mocked) -> None:
    funnel = {
        "kind": "FunnelsQuery",
        "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}],
    }
    retention = {"kind": "RetentionQuery", "retentionFilter": {"totalIntervals": 2}}
    mocked.register_uri(
        "GET",
        f"{HOST}/api/projects/5/insights/1/",
        json=saved(funnel, [step(0, "a", 4), step(1, "b", 2)]),
    )
    cohorts = [
        cohort("2024-01-01T00:00:00-08:00", [4, 1]),
        cohort("2024-01-02T00:00:00-08:00", [2, 0]),
    ]
    mocked.register_uri("GET", f"{HOST}/api/projects/5/insights/2/", json=saved(retention, cohorts))
    ph = connect(mocked)
    assert ph.insight(1)[["step", "event", "count"]].to_dict("list") == {
        "step": [1, 2],
        "event": ["a", "b"],
        "count": [4, 2],
    }
    table = ph.insight(2)
    assert table["persons"].tolist() == [4, 1, 2]
    assert table["cohort"].iloc[-1] == pd.Timestamp("2024-01-02T08:00:00Z")


def test_request_bodies_are_json_the_query_api_accepts(mocked) -> None:
    """Only QueryRequest's own fields: query, client_query_id, refresh (extra fields are a 400)."""
    mocked.register_uri("POST", QUERY, json=TRENDS_ANSWER)
    ph = connect(mocked)
    ph.trends(["$pageview", "signup"], after="2024-01-01", before="2024-01-04", refresh=True)
    body = orjson.loads(mocked.request_history[-1].body)
    assert set(body) == {"query", "client_query_id", "refresh"}


# -- stickiness, lifecycle, paths ------------------------------------------------------------


def test_stickiness_is_one_row_per_series_and_interval_count(mocked) -> None:
    answer = {
        "results": [
            {"days": [1, 2, 3], "data": [5, 2, 0], "label": "b", "action": {"order": 1, "id": "b"}},
            {"days": [1, 2, 3], "data": [4, 0, 1], "label": "a", "action": {"order": 0, "id": "a"}},
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).stickiness(["a", "b"], after="2024-01-01", before="2024-01-04")
    assert without_id(posted(mocked)[0]) == {
        "query": {
            "kind": "StickinessQuery",
            "series": [
                {"kind": "EventsNode", "event": "a", "name": "a"},
                {"kind": "EventsNode", "event": "b", "name": "b"},
            ],
            "interval": "day",
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-03"},
        }
    }
    expected = frame(
        {
            "series": (["a"] * 3 + ["b"] * 3, "string"),
            "intervals": ([1, 2, 3, 1, 2, 3], "Int64"),
            "persons": ([4, 0, 1, 5, 2, 0], "Int64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_lifecycle_is_one_row_per_bucket_and_status(mocked) -> None:
    def status(name: str, data: list[float]) -> dict[str, Any]:
        days = ["2024-01-01", "2024-01-02"]
        return {"status": name, "days": days, "data": data, "label": f"e - {name}"}

    answer = {
        "results": [
            status("new", [3.0, 1.0]),
            status("returning", [0.0, 2.0]),
            status("resurrecting", [0.0, 0.0]),
            status("dormant", [0.0, -1.0]),
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).lifecycle("e", after="2024-01-01", before="2024-01-03")
    node = posted(mocked)[0]["query"]
    assert node["kind"] == "LifecycleQuery" and node["series"][0]["event"] == "e"
    day1, day2 = la_midnights("2024-01-01", "2024-01-02")
    statuses = ["new", "returning", "resurrecting", "dormant"]
    expected = frame(
        {
            "date": ([day1] * 4 + [day2] * 4, "datetime64[ns, UTC]"),
            "status": (statuses * 2, "string"),
            "value": ([3, 0, 0, 0, 1, 2, 0, -1], "Int64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_paths_split_posthogs_step_prefixes(mocked) -> None:
    answer = {
        "results": [
            {
                "source": "2_/pricing",
                "target": "3_/signup",
                "value": 2,
                "average_conversion_time": 1.0,
            },
            {"source": "1_/", "target": "2_/pricing", "value": 5, "average_conversion_time": 1.0},
            {"source": "1_/", "target": "2_/docs", "value": 3, "average_conversion_time": 1.0},
        ]
    }
    mocked.register_uri("POST", QUERY, json=answer)
    df = connect(mocked).paths(start_point="/", after="2024-01-01", before="2024-01-08")
    assert without_id(posted(mocked)[0]) == {
        "query": {
            "kind": "PathsQuery",
            "pathsFilter": {"includeEventTypes": ["$pageview"], "stepLimit": 5, "startPoint": "/"},
            "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-07"},
        }
    }
    expected = frame(
        {
            "step": ([1, 1, 2], "Int64"),
            "source": (["/", "/", "/pricing"], "string"),
            "target": (["/docs", "/pricing", "/signup"], "string"),
            "persons": ([3, 5, 2], "Int64"),
        }
    )
    pd.testing.assert_frame_equal(df, expected)


def test_the_columns_table_in_the_docs_is_the_contract() -> None:
    """docs/analytics.md lists every result's columns and dtypes as _spec.COLUMNS has them."""
    from pathlib import Path

    from posthog_pandas.analytics._spec import COLUMNS

    text = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text()
    rows = dict(re.findall(r"^\| (\w+) \| (`.+) \|$", text, re.M))
    documented = {}
    for kind in COLUMNS:
        items = re.split(r",\s*(?=`)", rows[kind])
        pairs = [re.fullmatch(r"`(\w+)` (.+?)(?: \(.*\))?", item) for item in items]
        documented[kind] = {m.group(1): m.group(2) for m in pairs if m}
    assert documented == {kind: dict(columns) for kind, columns in COLUMNS.items()}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Chrome", "Chrome"),
        (["Chrome"], "Chrome"),
        (True, "true"),
        (3, "3"),
        (2.5, "2.5"),
        ("", None),
        (None, None),
        ("$$_posthog_breakdown_null_$$", None),
        ("$$_posthog_breakdown_other_$$", "Other"),
    ],
)
def test_breakdown_values_read_as_posthogs_json_text(value: Any, text: str | None) -> None:
    from posthog_pandas.analytics.insights import breakdown_text

    assert breakdown_text(value) == text
