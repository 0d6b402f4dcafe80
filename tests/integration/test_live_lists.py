"""Persons lists read while persons are created, deleted and merged: PostHog pages them by
offset over created_at DESC, so every write shifts the later pages. No person that existed
for the whole pull may be lost or repeated (the local server's data is live, as PostHog's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import posthog_pandas as php
from posthog_pandas.server import LocalPostHog, LoggedRequest

pytestmark = pytest.mark.integration

PERSONS = 3_500  # pages of 1,000, 2,000 then 500: two page boundaries to shift


@pytest.fixture()
def srv() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=PERSONS, events=2_000, seed=21) as server:
        yield server


@pytest.fixture()
def ph(srv: LocalPostHog, tmp_path: Path) -> php.PostHog:
    return php.connect(
        srv.api_key, host=srv.url, cache_dir=tmp_path / "c", progress=False, dotenv=False
    )


def after_page(srv: LocalPostHog, path: str, page: int, change: Callable[[], None]) -> None:
    """Run `change` once, after the server has answered the `page`-th request to `path`
    (1-based) and before the client receives that answer."""
    answered = 0

    def hook(request: LoggedRequest) -> None:
        nonlocal answered
        if request.path.endswith(path) and request.status == 200:
            answered += 1
            if answered == page:
                change()

    srv.on_served(hook)


def ids_at_start(srv: LocalPostHog) -> set[str]:
    return set(srv.dataset().persons["id"].astype(str))


def assert_each_once(frame: pd.DataFrame, expected: set[str]) -> None:
    assert frame["id"].is_unique, frame["id"][frame["id"].duplicated()].tolist()
    assert not expected - set(frame["id"]), f"lost {len(expected - set(frame['id']))}"


def persons_requests(srv: LocalPostHog) -> list[tuple[int, int]]:
    pages = [r for r in srv.requests if r.path.endswith("/persons/")]
    return sorted((int(r.params.get("offset", 0)), int(r.params["limit"])) for r in pages)


def test_persons_created_during_the_pull_repeat_no_one(srv: LocalPostHog, ph: php.PostHog) -> None:
    before = ids_at_start(srv)
    created: list[str] = []
    after_page(srv, "/persons/", 1, lambda: created.extend(srv.create_persons(7)))
    frame = ph.persons()
    assert len(created) == 7
    assert_each_once(frame, before)
    assert set(frame["id"]) <= before | set(created)


def test_persons_deleted_during_the_pull_hide_no_one(srv: LocalPostHog, ph: php.PostHog) -> None:
    newest = srv.dataset().persons.sort_values("created_at", ascending=False)["id"]
    gone = newest.astype(str).tolist()[:40]  # on the first page: every later row moves up
    survivors = ids_at_start(srv) - set(gone)
    after_page(srv, "/persons/", 1, lambda: srv.delete_persons(gone))
    frame = ph.persons()
    assert_each_once(frame, survivors)


def test_persons_changing_at_every_page_lose_no_one(srv: LocalPostHog, ph: php.PostHog) -> None:
    oldest = srv.dataset().persons.sort_values("created_at")["id"].astype(str).tolist()
    merged = oldest[-30:]  # among the newest: before every page boundary
    stay = ids_at_start(srv) - set(merged)
    answered = 0

    def churn(request: LoggedRequest) -> None:
        nonlocal answered
        if request.path.endswith("/persons/") and request.status == 200:
            answered += 1
            srv.create_persons(3)
            srv.delete_persons(merged[(answered - 1) * 10 : answered * 10])

    srv.on_served(churn)
    frame = ph.persons()
    assert_each_once(frame, stay)


def test_a_pull_nobody_writes_to_costs_no_extra_request(srv: LocalPostHog, ph: php.PostHog) -> None:
    frame = ph.persons()
    assert len(frame) == PERSONS and frame["id"].is_unique
    assert frame["created_at"].is_monotonic_decreasing
    # as many requests as without overlap: growing pages, each one row early, and the
    # look-ahead request past the end
    assert persons_requests(srv) == [(0, 1000), (999, 2000), (2998, 4000), (6997, 5000)]


def test_cohort_persons_lose_no_member_when_members_go(srv: LocalPostHog, ph: php.PostHog) -> None:
    data = srv.dataset()
    sizes = data.cohort_people["cohort_id"].value_counts()
    cohort = int(sizes.idxmax())
    members = data.cohort_people.loc[data.cohort_people["cohort_id"] == cohort, "person_id"]
    ordered = data.persons[data.persons["id"].isin(members)].sort_values(
        ["created_at", "id"], ascending=False
    )
    assert len(ordered) > 1000, "the cohort must span pages"
    gone = ordered["id"].astype(str).tolist()[:25]
    after_page(srv, f"/cohorts/{cohort}/persons/", 1, lambda: srv.delete_persons(gone))
    frame = ph.cohort_persons(cohort)
    assert_each_once(frame, set(members.astype(str)) - set(gone))


def test_an_export_of_persons_repeats_no_one(
    srv: LocalPostHog, ph: php.PostHog, tmp_path: Path
) -> None:
    before = ids_at_start(srv)
    after_page(srv, "/persons/", 1, lambda: srv.create_persons(5))
    target = tmp_path / "persons.csv"
    ph.export("persons", target)
    assert_each_once(pd.read_csv(target, usecols=["id"]), before)


def test_a_limited_pull_while_persons_are_created_is_short_never_holed(
    srv: LocalPostHog, ph: php.PostHog
) -> None:
    order = srv.dataset().persons.sort_values(["created_at", "id"], ascending=False)
    first = order["id"].astype(str).tolist()
    after_page(srv, "/persons/", 1, lambda: srv.create_persons(7))
    frame = ph.persons(limit=1_200)
    # The 7 new persons push the second page 7 rows down; it still ends at row 1,200 of the
    # list as it is now, so the pull holds the first 1,193 persons of the list it started on.
    assert frame["id"].astype(str).tolist() == first[:1_193]
    assert persons_requests(srv) == [(0, 1000), (999, 201)]
