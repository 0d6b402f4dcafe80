"""Every resource in the registry works through every front door, against the local server.

The doors: the accessor (`ph.<name>(...)`), `read_posthog(name, ...)`, `ph.export(name, ...)`
when the entry is exportable, and `%posthog <name>`. Each must give the same rows. A new
registry entry needs its row in ARGUMENTS (the first test fails until it has one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas import _session
from posthog_pandas._registry import NAMES, RESOURCES, Resource
from posthog_pandas.server import LocalPostHog
from tests.ipython_shell import RaisingShell

QUERY = "SELECT event, count() AS n FROM events GROUP BY event ORDER BY event"


def arguments(name: str, ph: php.PostHog, server: LocalPostHog) -> dict[str, Any]:
    """Real arguments for each resource: ids of objects the local server holds."""
    start, end = server.time_range()
    table: dict[str, Callable[[], dict[str, Any]]] = {
        "persons": dict,
        "events": lambda: {"after": start.isoformat(), "before": end.isoformat()},
        "cohorts": dict,
        "cohort_persons": lambda: {"cohort_id": int(ph.cohorts()["id"].iloc[0])},
        "feature_flags": dict,
        "insights": dict,
        "insight": lambda: {"insight_id": int(ph.insights()["id"].iloc[0])},
        "dashboards": dict,
        "annotations": dict,
        "actions": dict,
        "event_definitions": dict,
        "property_definitions": dict,
        "experiments": dict,
        "surveys": dict,
        "groups": lambda: {"group_type_index": 0},
        "session_recordings": dict,
        "projects": dict,
        "me": dict,
        "query": lambda: {"hogql": QUERY},
    }
    assert set(table) == set(NAMES), "every registry entry needs its row here"
    return table[name]()


def magic_line(entry: Resource, args: dict[str, Any]) -> str:
    if entry.kind == "query":
        return f"query {args['hogql']}"
    words = [entry.name]
    if entry.id_argument is not None:
        words.append(str(args[entry.id_argument]))
    flags = {argument: flag for flag, argument in entry.magic_flags.items()}
    for argument, value in args.items():
        if argument != entry.id_argument:
            words.append(f"--{flags[argument]} {value}")
    return " ".join(words)


def same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        assert a == b


def test_every_resource_has_a_row(
    connect: Callable[..., php.PostHog], server: LocalPostHog
) -> None:
    arguments("persons", connect(), server)  # asserts the table covers the registry


@pytest.mark.parametrize("entry", RESOURCES, ids=[r.name for r in RESOURCES])
def test_every_front_door_gives_the_same_rows(
    entry: Resource,
    connect: Callable[..., php.PostHog],
    server: LocalPostHog,
    ip: RaisingShell,
    tmp_path: Path,
) -> None:
    ph = connect()
    args = arguments(entry.name, ph, server)
    by_accessor = getattr(ph, entry.name)(**args)
    if entry.kind == "query":
        assert len(by_accessor) and list(by_accessor.columns) == ["event", "n"]
        same(php.read_hogql(args["hogql"], connection=ph), by_accessor)
    else:
        same(php.read_posthog(entry.name, connection=ph, **args), by_accessor)
    if entry.kind == "list":
        assert isinstance(by_accessor, pd.DataFrame)

    _session.set_connection(ph)
    same(ip.run_line_magic("posthog", magic_line(entry, args)), by_accessor)

    if not entry.exportable:
        with pytest.raises(php.ConfigurationError, match=f"Cannot export '{entry.name}'"):
            ph.export(entry.name, tmp_path / "x.parquet", **args)
        return
    summary = ph.export(entry.name, tmp_path / "x.parquet", **args)
    back = pd.read_parquet(tmp_path / "x.parquet")
    assert summary.rows == len(back) == len(by_accessor)
    if len(by_accessor):
        assert set(back.columns) == {str(c) for c in by_accessor.columns}
    for key in ("uuid", "id"):
        if key in back.columns and key in by_accessor.columns:
            assert back[key].astype(str).tolist() == by_accessor[key].astype(str).tolist()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_file_has_one_format_whichever_door_made_it(
    suffix: str, connect: Callable[..., php.PostHog], ip: RaisingShell, tmp_path: Path
) -> None:
    ph = connect()
    _session.set_connection(ph)
    exported = tmp_path / f"exported.{suffix}"
    ph.export("persons", exported)
    from_magic = tmp_path / f"magic.{suffix}"
    ip.run_line_magic("posthog", f"persons --{suffix} {from_magic}")
    if suffix == "csv":
        assert from_magic.read_text() == exported.read_text()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(from_magic), pd.read_parquet(exported))
