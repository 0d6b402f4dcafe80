"""Metadata records of a local project (cohorts, flags, insights, ...) in PostHog's JSON shapes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from posthog_pandas.server.ids import stable_uuid, uuid_strings

if TYPE_CHECKING:
    from posthog_pandas.server.data import Dataset

__all__ = ["DEMO_USER", "build_catalog", "iso_z"]

DEMO_USER: dict[str, Any] = {
    "id": 1,
    "uuid": "0190c0de-0000-4000-8000-000000000001",
    "distinct_id": "demo-user-distinct-id",
    "first_name": "Demo",
    "last_name": "User",
    "email": "demo@posthog-pandas.local",
    "is_email_verified": True,
    "hedgehog_config": None,
    "role_at_organization": None,
}


def iso_z(value: datetime | pd.Timestamp) -> str:
    """DRF's datetime rendering: ISO 8601 with `Z` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _at(ds: Dataset, day: float) -> str:
    return iso_z(ds.start + timedelta(days=day))


def _cohorts(ds: Dataset, rng: np.random.Generator) -> None:
    p = ds.persons
    props = p["properties"]
    plan_pro = p["id"][props.map(lambda x: x.get("plan") == "pro")]
    berlin = p["id"][props.map(lambda x: x.get("address", {}).get("city") == "Berlin")]
    static = p["id"][rng.random(len(p)) < 0.05]
    buyers = ds.events.loc[ds.events["event"] == "purchase", "person_id"].drop_duplicates()
    members = [
        (1, "Pro plan users", "person_property", plan_pro, {"key": "plan", "value": "pro"}),
        (2, "Static beta testers", "static", static, None),
        (3, "Purchasers", "behavioral", buyers, {"key": "purchase", "event_type": "events"}),
        (4, "Berlin", "person_property", berlin, {"key": "address.city", "value": "Berlin"}),
    ]
    frames = []
    for cid, name, ctype, ids, flt in members:
        ids = ids.sort_values()
        frames.append(pd.DataFrame({"cohort_id": cid, "person_id": ids.to_numpy(dtype=object)}))
        ds.cohorts.append(
            {
                "id": cid,
                "name": name,
                "description": f"{name} (generated)",
                "groups": [],
                "deleted": False,
                "filters": (
                    {"properties": {"type": "OR", "values": [{"type": "AND", "values": [flt]}]}}
                    if flt
                    else None
                ),
                "query": None,
                "is_calculating": False,
                "created_by": DEMO_USER,
                "created_at": _at(ds, -10 + cid),
                "last_calculation": _at(ds, ds.days),
                "errors_calculating": 0,
                "count": len(ids),
                "is_static": ctype == "static",
                "cohort_type": ctype,
                "experiment_set": [],
            }
        )
    cp = pd.concat(frames, ignore_index=True)
    ds.cohort_people = pd.DataFrame(
        {
            "cohort_id": pd.array(cp["cohort_id"].to_numpy(), dtype="Int64"),
            "person_id": pd.array(cp["person_id"].to_numpy(dtype=object), dtype="string"),
        }
    )


def _flags(ds: Dataset, rng: np.random.Generator) -> None:
    for i in range(1, 31):
        rollout = int(rng.integers(0, 101))
        multivariate = (
            {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 50},
                ]
            }
            if i % 5 == 0
            else None
        )
        ds.feature_flags.append(
            {
                "id": i,
                "name": f"Flag number {i}",
                "key": f"flag-{i:02d}",
                "filters": {
                    "groups": [{"properties": [], "rollout_percentage": rollout}],
                    "multivariate": multivariate,
                    "payloads": {},
                },
                "deleted": False,
                "active": i % 4 != 0,
                "created_by": DEMO_USER,
                "created_at": _at(ds, -30 + i / 2),
                "updated_at": _at(ds, i / 2),
                "version": 1 + i % 3,
                "last_modified_by": DEMO_USER,
                "is_simple_flag": multivariate is None,
                "rollout_percentage": rollout if multivariate is None else None,
                "ensure_experience_continuity": False,
                "experiment_set": [1] if i == 5 else [],
                "surveys": [],
                "features": [],
                "rollback_conditions": None,
                "performed_rollback": None,
                "can_edit": True,
                "tags": ["generated"] if i % 3 == 0 else [],
                "evaluation_tags": [],
                "usage_dashboard": None,
                "analytics_dashboards": [],
                "has_enriched_analytics": False,
                "user_access_level": "editor",
                "creation_context": "feature_flags",
                "is_remote_configuration": False,
                "has_encrypted_payloads": False,
                "status": "ACTIVE",
                "evaluation_runtime": "all",
                "last_called_at": None,
            }
        )


def _insights(ds: Dataset) -> None:
    """Twelve daily trends (the last an old insight with legacy `filters` only), then a saved
    funnel and a saved retention, each computed from its query on request."""
    events = ("$pageview", "signed_up", "purchase", "$autocapture", "$pageleave", "$identify")
    first, last = f"{ds.start:%Y-%m-%d}", f"{ds.start + timedelta(days=ds.days - 1):%Y-%m-%d}"
    span = {"date_from": first, "date_to": last}
    for i in range(1, 13):
        ev = events[i % len(events)]
        series = [{"kind": "EventsNode", "event": ev, "name": ev, "math": "total"}]
        trends = {"kind": "TrendsQuery", "series": series, "interval": "day", "dateRange": span}
        legacy = {"events": [{"id": ev, "type": "events"}], **span}
        name = f"Daily {ev}" if i % 4 else ""
        if i == 12:  # an old insight: legacy `filters`, no `query`
            ds.insights.append(_insight_row(ds, i, name, f"{ev} count", None, legacy))
        else:
            ds.insights.append(_insight_row(ds, i, name, f"{ev} count", trends, {}))
    steps = [{"kind": "EventsNode", "event": e, "name": e} for e in events[:3]]
    funnel = {
        "kind": "FunnelsQuery",
        "series": steps,
        "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"},
        "dateRange": span,
    }
    ds.insights.append(_insight_row(ds, 13, "Signup funnel", "Funnel", funnel, {}))
    week = f"{ds.start + timedelta(days=6):%Y-%m-%d}"
    retention = {
        "kind": "RetentionQuery",
        "retentionFilter": {
            "targetEntity": {"id": "signed_up", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
            "period": "Day",
            "totalIntervals": 7,
            "retentionType": "retention_first_time",
        },
        "dateRange": {"date_from": first, "date_to": week},
    }
    ds.insights.append(_insight_row(ds, 14, "Signup retention", "Retention", retention, {}))


def _insight_row(
    ds: Dataset,
    i: int,
    name: str,
    derived_name: str,
    source: dict[str, Any] | None,
    filters: dict[str, Any],
) -> dict[str, Any]:
    query = None if source is None else {"kind": "InsightVizNode", "source": source}
    return {
        "id": i,
        "short_id": f"ins{i:05d}",
        "name": name,
        "derived_name": derived_name,
        "query": query,
        "filters": filters,
        "order": None,
        "deleted": False,
        "dashboards": [1 + i % 5],
        "dashboard_tiles": [{"id": i, "dashboard_id": 1 + i % 5, "deleted": None}],
        # Never computed: no result until a request asks PostHog to compute it
        # (resources.insight_view fills these fields per request).
        "last_refresh": None,
        "cache_target_age": None,
        "next_allowed_client_refresh": None,
        "result": None,
        "columns": None,
        "created_at": _at(ds, -20 + i),
        "created_by": DEMO_USER,
        "description": "Generated insight" if i % 2 else None,
        "updated_at": _at(ds, i),
        "tags": [],
        "favorited": i == 1,
        "last_modified_at": _at(ds, i),
        "last_modified_by": DEMO_USER,
        "is_sample": False,
        "effective_restriction_level": 21,
        "effective_privilege_level": 37,
        "user_access_level": "editor",
        "timezone": ds.timezone,
        "is_cached": False,
        "query_status": None,
        "hogql": None,
        "types": None,
        "alerts": [],
        "last_viewed_at": None,
    }


def _dashboards(ds: Dataset) -> None:
    for i in range(1, 6):
        ds.dashboards.append(
            {
                "id": i,
                "name": f"Dashboard {i}" if i > 1 else "📈 Product KPIs",
                "description": "",
                "pinned": i == 1,
                "created_at": _at(ds, -15 + i),
                "created_by": DEMO_USER,
                "last_accessed_at": _at(ds, ds.days - 1),
                "is_shared": False,
                "deleted": False,
                "creation_mode": "default",
                "tags": [],
                "restriction_level": 21,
                "effective_restriction_level": 21,
                "effective_privilege_level": 37,
                "user_access_level": "editor",
                "access_control_version": "v2",
                "last_refresh": None,
                "team_id": ds.project_id,
            }
        )


def _annotations(ds: Dataset) -> None:
    for i in range(1, 26):
        ds.annotations.append(
            {
                "id": i,
                "content": f"Release {i}.0 — deployed" if i % 7 else "Outage 🔥",
                "date_marker": _at(ds, (i * 1.3) % ds.days),
                "creation_type": "USR",
                "dashboard_item": None,
                "dashboard_id": None,
                "dashboard_name": None,
                "insight_short_id": None,
                "insight_name": None,
                "insight_derived_name": None,
                "created_by": DEMO_USER,
                "created_at": _at(ds, -1),
                "updated_at": _at(ds, -1),
                "deleted": False,
                "scope": "project",
            }
        )


def _actions(ds: Dataset) -> None:
    urls = ("/pricing", "/signup", "/checkout", "/docs", "/blog", "/", "café", "?plan=pro")
    for i, url in enumerate(urls, start=1):
        ds.actions.append(
            {
                "id": i,
                "name": f"Viewed {url}",
                "description": "",
                "tags": [],
                "post_to_slack": False,
                "slack_message_format": "",
                "steps": [
                    {
                        "event": "$pageview",
                        "properties": None,
                        "selector": None,
                        "tag_name": None,
                        "text": None,
                        "text_matching": None,
                        "href": None,
                        "href_matching": None,
                        "url": url,
                        "url_matching": "contains",
                    }
                ],
                "created_at": _at(ds, -5),
                "created_by": DEMO_USER,
                "deleted": False,
                "is_calculating": False,
                "last_calculated_at": _at(ds, ds.days),
                "team_id": ds.project_id,
                "is_action": True,
                "bytecode_error": None,
                "pinned_at": None,
            }
        )


def _definitions(ds: Dataset) -> None:
    stats = ds.events.groupby("event", sort=True)["timestamp"].agg(["size", "max"])
    for name, row in stats.iterrows():
        ds.event_definitions.append(
            {
                "id": stable_uuid("event_definition", ds.project_id, name),
                "name": str(name),
                "owner": None,
                "description": None,
                "tags": [],
                "created_at": _at(ds, -30),
                "last_seen_at": iso_z(row["max"]),
                "last_updated_at": _at(ds, ds.days),
                "updated_by": None,
                "verified": False,
                "verified_at": None,
                "verified_by": None,
                "is_action": False,
                "post_to_slack": False,
                "volume_30_day": int(row["size"]),
                "query_usage_30_day": 0,
            }
        )
    specs: list[tuple[str, str, str | None, int | None]] = [
        ("event", "$current_url", "String", None),
        ("event", "$browser", "String", None),
        ("event", "$os", "String", None),
        ("event", "revenue", "Numeric", None),
        ("event", "tags", None, None),
        ("event", "late_prop", "String", None),
        ("event", "$set", None, None),
        ("person", "email", "String", None),
        ("person", "name", "String", None),
        ("person", "$browser", "String", None),
        ("person", "plan", "String", None),
        ("person", "address", None, None),
        ("person", "signup_count", "Numeric", None),
        ("person", "ab_score", "Numeric", None),
        ("person", "is_beta", "Boolean", None),
        ("person", "first_seen", "DateTime", None),
        ("group", "name", "String", 0),
        ("group", "industry", "String", 0),
        ("group", "employees", "Numeric", 0),
        ("group", "name", "String", 1),
        ("group", "domain", "String", 1),
        ("group", "seats", "Numeric", 1),
    ]
    for kind, name, ptype, gti in specs:
        ds.property_definitions.append(
            {
                "id": stable_uuid("property_definition", ds.project_id, kind, name, gti),
                "name": name,
                "is_numerical": ptype == "Numeric",
                "property_type": ptype,
                "tags": [],
                "is_seen_on_filtered_events": None,
                "type": kind,
                "group_type_index": gti,
            }
        )


def _experiments_surveys(ds: Dataset) -> None:
    for i in range(1, 4):
        ds.experiments.append(
            {
                "id": i,
                "name": f"Experiment {i}",
                "description": "Does the new checkout convert better?",
                "start_date": _at(ds, i),
                "end_date": _at(ds, i + 14) if i == 1 else None,
                "feature_flag_key": f"flag-{5 * i:02d}",
                "feature_flag": {"id": 5 * i, "key": f"flag-{5 * i:02d}", "active": True},
                "holdout": None,
                "exposure_cohort": None,
                "parameters": {"feature_flag_variants": [{"key": "control"}, {"key": "test"}]},
                "secondary_metrics": [],
                "saved_metrics": [],
                "filters": {},
                "archived": False,
                "deleted": False,
                "created_by": DEMO_USER,
                "created_at": _at(ds, i - 1),
                "updated_at": _at(ds, i),
                "type": "product",
                "metrics": [],
                "metrics_secondary": [],
                "conclusion": None,
                "conclusion_comment": None,
            }
        )
        ds.surveys.append(
            {
                "id": stable_uuid("survey", ds.project_id, i),
                "name": f"Survey {i}",
                "description": "",
                "type": "popover",
                "schedule": "once",
                "linked_flag": None,
                "targeting_flag": None,
                "questions": [
                    {"type": "rating", "question": "How likely are you to recommend us?"},
                    {"type": "open", "question": "Anything else? ✍️"},
                ],
                "conditions": None,
                "appearance": None,
                "created_at": _at(ds, i - 3),
                "created_by": DEMO_USER,
                "start_date": _at(ds, i),
                "end_date": None,
                "archived": False,
                "responses_limit": None,
                "iteration_count": None,
                "iteration_frequency_days": None,
                "enable_partial_responses": False,
            }
        )


def _recordings(ds: Dataset, rng: np.random.Generator) -> None:
    n = min(120, len(ds.persons))
    ids, _ = uuid_strings(rng, n)
    who = rng.choice(len(ds.persons), n, replace=False)
    starts = rng.integers(0, ds.days * 86400, n)
    durations = rng.integers(5, 3600, n)
    rows = []
    for i in range(n):
        person = ds.persons.iloc[int(who[i])]
        # no recording of a person before the person existed
        st = max(ds.start + timedelta(seconds=int(starts[i])), person["created_at"])
        dur = int(durations[i])
        rows.append(
            {
                "id": ids[i],
                "distinct_id": person["distinct_ids"][0],
                "viewed": bool(i % 3 == 0),
                "viewers": [],
                "recording_duration": dur,
                "active_seconds": dur // 2,
                "inactive_seconds": dur - dur // 2,
                "start_time": iso_z(st),
                "end_time": iso_z(st + timedelta(seconds=dur)),
                "click_count": int(rng.integers(0, 50)),
                "keypress_count": int(rng.integers(0, 200)),
                "mouse_activity_count": int(rng.integers(0, 500)),
                "console_log_count": 0,
                "console_warn_count": int(i % 4 == 0),
                "console_error_count": int(i % 9 == 0),
                "start_url": "https://example.com/",
                "person": {
                    "id": person["id"],
                    "uuid": person["id"],
                    "name": person["properties"].get("email", person["id"]),
                    "distinct_ids": person["distinct_ids"],
                    "properties": person["properties"],
                    "created_at": iso_z(person["created_at"]),
                },
                "storage": "object_storage",
                "retention_period_days": 30,
                "snapshot_source": "web",
                "ongoing": False,
                "activity_score": round(float(rng.random()) * 100, 2),
            }
        )
    rows.sort(key=lambda r: r["start_time"], reverse=True)
    ds.session_recordings.extend(rows)


def build_catalog(ds: Dataset, rng: np.random.Generator) -> None:
    """Fill the dataset's metadata lists (and cohort_people) deterministically from `rng`."""
    ds.group_types.extend(
        [
            {"group_type_index": 0, "group_type": "organization", "name_singular": None,
             "name_plural": "organizations", "detail_dashboard": None,
             "default_columns": None, "created_at": None},
            {"group_type_index": 1, "group_type": "company", "name_singular": None,
             "name_plural": None, "detail_dashboard": None, "default_columns": None,
             "created_at": None},
        ]
    )  # fmt: skip
    _cohorts(ds, rng)
    _flags(ds, rng)
    _insights(ds)
    _dashboards(ds)
    _annotations(ds)
    _actions(ds)
    _definitions(ds)
    _experiments_surveys(ds)
    _recordings(ds, rng)
