"""%posthog trends|funnel|retention on a real IPython shell, against requests-mock: the flags
become the accessor's arguments (seen in the query sent), -o and --csv deliver the frame, and
typos get a "did you mean"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import requests_mock
from IPython.core.error import UsageError

import posthog_pandas as php
from posthog_pandas import magics

HOST = "https://ph.test"
KEY = "phx_insight_magics_key_abcdefghijklmnopqrstuvw"
ME = {"email": "a@b.c", "team": {"id": 5, "project_id": 5, "name": "Shop", "timezone": "UTC"}}
QUERY = f"{HOST}/api/projects/5/query/"
TRENDS = {
    "results": [{"days": ["2024-01-07"], "data": [4], "label": "$pageview", "action": {"order": 0}}]
}
FUNNEL = {"results": [{"order": 0, "name": "a", "count": 4}, {"order": 1, "name": "b", "count": 1}]}
RETENTION = {"results": [{"date": "2024-01-07T00:00:00Z", "values": [{"count": 3}]}]}


@pytest.fixture(autouse=True)
def _fresh_default() -> Iterator[None]:
    magics.reset()
    yield
    magics.reset()


@pytest.fixture()
def adapter(tmp_path: Path) -> requests_mock.Adapter:
    adapter = requests_mock.Adapter()
    adapter.register_uri("GET", f"{HOST}/api/users/@me/", json=ME)

    def answer(request: Any, context: Any) -> dict[str, Any]:
        kind = request.json()["query"]["kind"]
        return {"TrendsQuery": TRENDS, "FunnelsQuery": FUNNEL, "RetentionQuery": RETENTION}[kind]

    adapter.register_uri("POST", QUERY, json=answer)
    session = requests.Session()
    session.mount("https://", adapter)
    ph = php.connect(KEY, host=HOST, session=session, cache_dir=tmp_path / "c", progress=False)
    magics.set_connection(ph)
    return adapter


def sent(adapter: requests_mock.Adapter) -> dict[str, Any]:
    node: dict[str, Any] = adapter.request_history[-1].json()["query"]
    return node


def test_trends_magic_sends_the_flags_and_stores_the_frame(ip: Any, adapter) -> None:
    df = ip.run_line_magic(
        "posthog",
        "trends $pageview --math dau --interval week --after 2024-01-07 --before 2024-01-14 -o t",
    )
    node = sent(adapter)
    assert node["series"][0]["event"] == "$pageview" and node["series"][0]["math"] == "dau"
    assert node["interval"] == "week"
    assert node["dateRange"] == {"date_from": "2024-01-07", "date_to": "2024-01-13"}
    assert ip.user_ns["t"] is df
    assert df["value"].tolist() == [4] and str(df["date"].dtype) == "datetime64[ns, UTC]"


def test_funnel_magic_takes_its_steps_and_window_and_writes_csv(ip: Any, adapter, tmp_path) -> None:
    out = tmp_path / "funnel.csv"
    ip.run_line_magic(
        "posthog", f"funnel a b --window 7 --after 2024-01-01 --before 2024-01-08 --csv {out}"
    )
    node = sent(adapter)
    assert [s["event"] for s in node["series"]] == ["a", "b"]
    assert node["funnelsFilter"]["funnelWindowInterval"] == 7
    assert pd.read_csv(out)["count"].tolist() == [4, 1]


def test_retention_magic_defaults_to_cohorts_ending_this_period(ip: Any, adapter) -> None:
    ip.run_line_magic("posthog", "retention signup --period week --periods 3")
    node = sent(adapter)
    assert node["retentionFilter"]["period"] == "Week"
    assert node["retentionFilter"]["totalIntervals"] == 3
    today = datetime.now(UTC).date()
    assert node["dateRange"]["date_from"] == (today - timedelta(days=14)).isoformat()


def test_trends_magic_without_dates_reads_the_last_30_days(ip: Any, adapter) -> None:
    ip.run_line_magic("posthog", "trends $pageview")
    today = datetime.now(UTC).date()
    assert sent(adapter)["dateRange"] == {
        "date_from": (today - timedelta(days=29)).isoformat(),
        "date_to": today.isoformat(),
    }


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("trend $pageview", "Did you mean 'trends'?"),
        ("trends $pageview --intervall week", "Did you mean '--interval'?"),
        ("funnel a b --windw 3", "Did you mean '--window'?"),
        ("retention signup --perods 3", "Did you mean '--periods'?"),
    ],
)
def test_typos_get_a_did_you_mean(ip: Any, adapter, line: str, hint: str) -> None:
    with pytest.raises(UsageError, match=hint):
        ip.run_line_magic("posthog", line)


def test_a_bad_choice_and_a_bad_date_are_one_line_errors(ip: Any, adapter) -> None:
    with pytest.raises(UsageError, match="invalid choice: 'sum'"):
        ip.run_line_magic("posthog", "trends e --math sum")
    with pytest.raises(UsageError, match="before='soon' is not a day"):
        ip.run_line_magic("posthog", "trends e --before soon")


def test_help_lists_the_insight_magics(
    ip: Any, adapter, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("posthog", "help")
    text = capsys.readouterr().out
    assert "%posthog trends EVENT..." in text and "%posthog funnel STEP STEP..." in text
