"""The public API is exactly what __all__ says (as httpx checks its own)."""

from __future__ import annotations

import posthog_pandas


def test_all_is_sorted_and_complete() -> None:
    exported = posthog_pandas.__all__
    assert exported == sorted(exported, key=str.lower) or exported == sorted(exported)
    public = {name for name in dir(posthog_pandas) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(posthog_pandas, name)).__name__ == "module"}
    assert public - modules - {"annotations", "Any"} == set(exported) - {"__version__"}


def test_every_exception_derives_from_posthog_error() -> None:
    for name in posthog_pandas.__all__:
        obj = getattr(posthog_pandas, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, posthog_pandas.PostHogError), name


def test_importing_the_package_stays_light() -> None:
    """The pytest plugin imports the package in every test run of a project that has it
    installed, so `import posthog_pandas` must not pull in pandas, requests or pyarrow."""
    import subprocess
    import sys

    code = (
        "import sys, posthog_pandas, posthog_pandas.testing; "
        "print(sorted(m for m in ('pandas', 'requests', 'pyarrow', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_connection_shows_the_users_api_and_no_plumbing() -> None:
    """PostHog's public members are what a user calls; transport, cache policy, paging and
    query plumbing live in the parts it composes (see posthog_pandas.client). A new public
    member is a deliberate change to this list."""
    from posthog_pandas.client import PostHog

    public = sorted(name for name in dir(PostHog) if not name.startswith("_"))
    assert public == [
        "actions",
        "annotations",
        "cache",
        "cache_stats",
        "cohort_persons",
        "cohorts",
        "dashboards",
        "event_definitions",
        "events",
        "experiments",
        "export",
        "export_query",
        "feature_flags",
        "fetch",
        "frame_options",
        "funnel",
        "groups",
        "insight",
        "insights",
        "iter_events",
        "legacy",
        "lifecycle",
        "login",
        "me",
        "paths",
        "persons",
        "progress",
        "project_id",
        "projects",
        "property_definitions",
        "query",
        "read",
        "request_stats",
        "retention",
        "session_recordings",
        "settings",
        "stickiness",
        "surveys",
        "trends",
    ]


def test_export_summary_is_exported() -> None:
    from posthog_pandas.export import ExportSummary

    assert posthog_pandas.ExportSummary is ExportSummary
