"""Every bad input of docs/bad-input.md raises the documented class with the exact message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import posthog_pandas as php
from posthog_pandas.cache import CacheStore
from tests.reliability.bad_input_cases import (
    CASES,
    Case,
    Env,
    cache_disk_full,
    environment,
    export_disk_full,
    observe,
)
from tests.reliability.helpers import cached_pages

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with environment(tmp_path_factory.mktemp("bad-input")) as env:
        yield env


@pytest.fixture()
def env(module_env: Env, tmp_path: Path) -> Iterator[Env]:
    """The module's servers with a fresh directory (and so a fresh cache) per case."""
    module_env.srv.set_faults(None)
    module_env.srv.clear_log()
    yield Env(module_env.srv, module_env.eu, tmp_path)
    module_env.srv.set_faults(None)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input(case: Case, env: Env) -> None:
    if case.error is None:  # no exception: what the user sees is logged
        logged = case.call(env)
        assert env.normalize(logged[0]) == case.message
        return
    with pytest.raises(case.error) as info:
        case.call(env)
    assert env.normalize(str(info.value)) == case.message
    if isinstance(info.value, php.PostHogError) or case.error is TypeError:
        return
    assert case.error in (OSError, UserWarning), "only OS errors and warnings are not ours"


def test_the_table_lists_every_case_once() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bad-input.md").read_text()
    for case in CASES:
        assert f"test_bad_input[{case.id}]" in doc, case.id


def test_disk_full_while_caching_still_returns_every_row(env: Env) -> None:
    logged = cache_disk_full(env)  # asserts the rows itself
    assert logged[0].startswith("WARNING: could not cache")
    assert any("not keeping the persons frame in the cache" in line for line in logged)
    assert cached_pages(env.tmp / "full-cache") == []
    frame = env.connect(cache_dir=env.tmp / "full-cache").persons()  # disk space again
    assert sorted(frame["id"]) == sorted(env.srv.dataset().persons["id"])
    # @me, the one persons page and the one page of person property definitions
    assert len(cached_pages(env.tmp / "full-cache")) == 3


def test_disk_full_during_export_leaves_no_partial_file_and_a_rerun_succeeds(env: Env) -> None:
    with pytest.raises(OSError, match="No space left on device"):
        export_disk_full(env)
    out = env.tmp / "full"
    assert list(out.iterdir()) == []  # no file under the final name, no staging, no temp
    summary = env.connect().export("persons", out / "persons.parquet")
    assert summary.rows == len(env.srv.dataset().persons)
    assert [p.name for p in out.iterdir()] == ["persons.parquet"]


def test_observe_reports_what_users_see(env: Env) -> None:
    """The docs generator runs the same cases and reports the class and message."""
    case = next(c for c in CASES if c.id == "project-id-zero")
    assert observe(case, env) == ("ConfigurationError", case.message)


def test_a_connection_made_right_after_another_sees_its_login_page(env: Env) -> None:
    real_put = CacheStore.put

    def slow_put(self: CacheStore, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)  # a slow disk: the write lands after connect() returned
        real_put(self, *args, **kwargs)

    with mock.patch.object(CacheStore, "put", slow_put):
        env.connect()
        offline = env.connect(offline=True)
    assert offline.me()["email"]
