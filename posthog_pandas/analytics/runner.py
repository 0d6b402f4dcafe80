"""The insights part: `ph.trends()`, `ph.funnel()`, `ph.retention()` (and `ph.stickiness()`,
`ph.lifecycle()`, `ph.paths()`) check their arguments,
send PostHog the matching query kind through the query runner (our cache, `refresh`, errors,
asynchronous runs) and turn the answer into the tidy frame of `_spec.COLUMNS`.

PostHog counts the project's local days, so the frames' `date`/`cohort` columns need the
project's time zone: PostHog's answer names it (`timezone`); for an answer that does not, it is
read once per connection, from the user's current team when that is the project
(`/api/users/@me/`), else from the project itself (`/api/projects/{id}/`).
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, TypedDict

import pandas as pd

from posthog_pandas._core import Connection
from posthog_pandas.analytics._spec import (
    INTERVALS,
    MATHS,
    RETENTION_PERIODS,
    RETENTION_TYPES,
    choice,
    day_range,
    event_list,
)
from posthog_pandas.analytics.insights import BY_QUERY_KIND, KINDS, Answer
from posthog_pandas.exceptions import ConfigurationError, QueryTimeoutError, ResponseFormatError
from posthog_pandas.query import QueryPage, QueryRunner, cache_attrs
from posthog_pandas.resources import check_options

log = logging.getLogger("posthog_pandas")

_OPEN_END = date(9999, 12, 31)  # retention has no `before`: only `after` is checked
# PostHog's PathType values a path can follow: page URLs, screen names, or non-$ event names.
PATH_EVENT_TYPES = ("$pageview", "$screen", "custom_event")


class InsightOptions(TypedDict, total=False):
    """Options every insight accessor accepts.

    cache: keep and reuse the answer in posthog-pandas' disk cache (default True).
    refresh: skip our cache and make PostHog compute afresh (`force_blocking`).
    progress: show a progress bar while an asynchronous query runs.
    run_async: None (default): ask PostHog to answer at once, and only when its time limit
        stops the query, ask again in the background and poll; True: in the background from
        the start; False: never in the background.
    """

    cache: bool
    refresh: bool
    progress: bool | None
    run_async: bool | None


_OPTION_NAMES = tuple(InsightOptions.__annotations__)


class Insights:
    """The insights part, over the connection and the query runner."""

    def __init__(self, conn: Connection, queries: QueryRunner) -> None:
        self._conn = conn
        self._queries = queries
        self._timezone: str | None = None

    # -- accessors ----------------------------------------------------------------------------

    def trends(
        self,
        events: str | Sequence[str],
        *,
        math: str,
        interval: str,
        after: Any,
        before: Any,
        breakdown: str | None,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        arguments = {
            "events": _distinct(event_list(events)),
            "math": choice(math, "math", MATHS),
            "interval": choice(interval, "interval", INTERVALS),
            "days": day_range(after, before),
            "breakdown": _breakdown(breakdown),
        }
        return self.run("trends", arguments, options)

    def funnel(
        self,
        steps: str | Sequence[str],
        *,
        window_days: int,
        after: Any,
        before: Any,
        breakdown: str | None,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        arguments = {
            "steps": event_list(steps, "steps"),
            "window_days": _positive(window_days, "window_days"),
            "days": day_range(after, before),
            "breakdown": _breakdown(breakdown),
        }
        return self.run("funnel", arguments, options)

    def retention(
        self,
        start_event: str,
        return_event: str | None,
        *,
        period: str,
        periods: int,
        after: Any,
        retention_type: str,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        start = event_list(start_event, "start_event")
        back = start if return_event is None else event_list(return_event, "return_event")
        if len(start) != 1 or len(back) != 1:
            raise ConfigurationError("retention() takes one start_event and one return_event.")
        arguments = {
            "start_event": start[0],
            "return_event": back[0],
            "period": choice(period, "period", RETENTION_PERIODS),
            "periods": _positive(periods, "periods"),
            "after": day_range(after, _OPEN_END).after,
            "retention_type": choice(retention_type, "retention_type", RETENTION_TYPES),
        }
        return self.run("retention", arguments, options)

    def stickiness(
        self,
        events: str | Sequence[str],
        *,
        interval: str,
        after: Any,
        before: Any,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        arguments = {
            "events": _distinct(event_list(events)),
            "interval": choice(interval, "interval", INTERVALS),
            "days": day_range(after, before),
        }
        return self.run("stickiness", arguments, options)

    def lifecycle(
        self, event: str, *, interval: str, after: Any, before: Any, options: Mapping[str, Any]
    ) -> pd.DataFrame:
        names = event_list(event, "event")
        if len(names) != 1:
            raise ConfigurationError("lifecycle() takes one event name.")
        arguments = {
            "event": names[0],
            "interval": choice(interval, "interval", INTERVALS),
            "days": day_range(after, before),
        }
        return self.run("lifecycle", arguments, options)

    def paths(
        self,
        *,
        event_type: str,
        start_point: str | None,
        end_point: str | None,
        step_limit: int,
        after: Any,
        before: Any,
        options: Mapping[str, Any],
    ) -> pd.DataFrame:
        arguments = {
            "event_type": choice(event_type, "event_type", PATH_EVENT_TYPES),
            "start_point": start_point,
            "end_point": end_point,
            "step_limit": _positive(step_limit, "step_limit"),
            "days": day_range(after, before),
        }
        return self.run("paths", arguments, options)

    # -- the common path ------------------------------------------------------------------------

    def run(
        self, name: str, arguments: Mapping[str, Any], options: Mapping[str, Any]
    ) -> pd.DataFrame:
        """Send kind `name`'s query for `arguments` and return its tidy frame."""
        check_options(options, name, _OPTION_NAMES)
        kind = KINDS[name]
        node = kind.node(arguments)
        data = self._answer(node, options, desc=f"ph.{name}()")
        return self._frame(name, data, arguments)

    def _answer(self, node: Mapping[str, Any], options: Mapping[str, Any], *, desc: str) -> Any:
        """PostHog's complete answer to `node`, asynchronously when the options allow and the
        rule says so (see InsightOptions.run_async)."""
        run_async = options.get("run_async")
        progress = options.get("progress")
        kind = str(node.get("kind", "insight"))

        def send(in_background: bool) -> Any:
            return self._queries.run_node(
                node,
                validate=lambda data: results_of(data, kind),
                cache=options.get("cache", True),
                refresh=options.get("refresh", False),
                run_async=in_background,
                progress=self._conn.progress if progress is None else progress,
                desc=desc,
            )

        try:
            return send(run_async is True)
        except QueryTimeoutError:
            if run_async is not None:
                raise
            log.info("%s hit PostHog's time limit; running it again in the background", desc)
            return send(True)
        finally:
            self._conn.fetcher.flush()

    def _frame(self, name: str, data: Any, arguments: Mapping[str, Any]) -> pd.DataFrame:
        timezone = self.timezone(data)
        frame = KINDS[name].parse(results_of(data, name), Answer(arguments, timezone))
        frame.attrs.update(cache_attrs([QueryPage([], [], [], raw=data)]))
        frame.attrs["timezone"] = timezone
        return frame

    # -- saved insights ------------------------------------------------------------------------

    def saved(self, insight: Mapping[str, Any]) -> pd.DataFrame | None:
        """The tidy frame of a saved insight's `result`, when its `query` is one of the kinds
        above (an `InsightVizNode` wrapping it, as PostHog saves insights); else None."""
        query = insight.get("query")
        source = query.get("source") if isinstance(query, dict) and "source" in query else query
        if not isinstance(source, dict):
            return None
        kind = BY_QUERY_KIND.get(str(source.get("kind")))
        if kind is None:
            return None
        arguments = arguments_from_node(kind.name, source)
        if arguments is None:
            return None
        return kind.parse(insight.get("result"), Answer(arguments, self.timezone(insight)))

    # -- the project's time zone -----------------------------------------------------------------

    def timezone(self, answer: Any = None) -> str:
        """The project's IANA time zone (PostHog's Team.timezone): the one PostHog's answer
        names (every cached query response and insight has `timezone`), else read once."""
        named = answer.get("timezone") if isinstance(answer, dict) else None
        if isinstance(named, str) and named:
            return _checked_zone(named, "PostHog's answer")
        if self._timezone is None:
            self._timezone = project_timezone(self._conn)
        return self._timezone


def project_timezone(conn: Connection) -> str:
    """Team.timezone: from /api/users/@me/ when the user's current team is the project (no
    extra request), else from /api/projects/{id}/."""
    pid = conn.project_id
    team = (conn.user_if_read or {}).get("team") or {}
    if pid in (team.get("project_id"), team.get("id")) and team.get("timezone"):
        return _checked_zone(team["timezone"], "/api/users/@me/")
    project = conn.get(f"/api/projects/{pid}/", resource="projects")
    zone = project.get("timezone") if isinstance(project, dict) else None
    if not zone:
        raise ResponseFormatError(
            f"/api/projects/{pid}/ answered without the project's `timezone`, which insights "
            "need to turn PostHog's local days into UTC instants."
        )
    return _checked_zone(zone, f"/api/projects/{pid}/")


def _checked_zone(name: Any, where: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ResponseFormatError(f"{where} names the time zone {name!r}, unknown here.") from None
    return str(name)


def results_of(data: Any, kind: str) -> list[Any]:
    """The `results` list of a complete answer; anything else is a ResponseFormatError."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ResponseFormatError(f"PostHog answered the {kind} query without a `results` list.")
    results: list[Any] = data["results"]
    return results


def arguments_from_node(name: str, node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The accessor arguments a saved query node stands for, as far as parsing needs them."""
    raw = node.get("series")
    series: list[Any] = raw if isinstance(raw, list) else []
    events = [
        str(s.get("event") or s.get("name") or s.get("id")) for s in series if isinstance(s, dict)
    ]
    breakdown = (node.get("breakdownFilter") or {}).get("breakdown")
    if name == "trends":
        return {"events": events, "breakdown": breakdown}
    if name == "funnel":
        return {"steps": events, "breakdown": breakdown}
    if name == "stickiness":
        return {"events": events}
    if name in ("retention", "lifecycle", "paths"):
        return {}
    return None


def _distinct(events: list[str]) -> list[str]:
    """Series are named by their event, so each event may be listed once."""
    twice = sorted({e for e in events if events.count(e) > 1})
    if twice:
        raise ConfigurationError(
            f"events lists {', '.join(map(repr, twice))} more than once; each series is one "
            "event, named by it."
        )
    return events


def _breakdown(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(
            f"breakdown={value!r}: give an event property name such as '$browser'."
        )
    return value


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}={value!r}: give a whole number of at least 1.")
    return value
