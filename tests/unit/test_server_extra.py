"""The local server is an extra: after a plain `pip install posthog-pandas` (no duckdb, sqlglot
or hogql-parser) everything but the server works, and each door to the server names the extra.

Each check runs in a fresh interpreter where those packages cannot be imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = {"duckdb", "sqlglot", "hogql-parser"}
# Run first in each interpreter: None in sys.modules makes `import duckdb` raise
# ModuleNotFoundError, as where the package is not installed.
WITHOUT_SERVER = (
    "import sys; sys.modules.update(dict.fromkeys(['duckdb', 'sqlglot', 'hogql_parser']))\n"
)
MESSAGE = (
    "The local PostHog server needs duckdb, which cannot be imported here. "
    'Install the server extra: pip install "posthog-pandas[server]"'
)
KEY = "phx_extra_unit_key_abcdefghijklmnopqrstuvwxyz01"


def run_without_server(
    code: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **(env or {})},
        timeout=120,
    )


def requirement_name(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower()


def test_a_plain_install_leaves_the_server_packages_to_the_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {requirement_name(s) for s in project["dependencies"]} & SERVER_PACKAGES == set()
    assert {requirement_name(s) for s in extras["server"]} == SERVER_PACKAGES
    assert "posthog-pandas[server]" in extras["dev"]  # the quick start's demo needs it


def test_everything_but_the_server_works_without_its_packages(tmp_path: Path) -> None:
    code = """
        import importlib, pkgutil
        import requests_mock
        from IPython.core.interactiveshell import InteractiveShell
        import posthog_pandas as php

        for module in pkgutil.iter_modules(php.__path__, "posthog_pandas."):
            if module.name != "posthog_pandas.server":
                importlib.import_module(module.name)

        HOST = "https://ph.test"
        me = {"email": "a@b.c", "team": {"id": 5, "project_id": 5, "name": "Shop"}}
        person = {"id": "a", "uuid": "a", "distinct_ids": ["a"], "properties": {"email": "a@x"}}
        with requests_mock.Mocker() as mock:
            mock.get(f"{HOST}/api/users/@me/", json=me)
            mock.get(f"{HOST}/api/projects/5/property_definitions/", json={"results": []})
            persons = mock.get(
                f"{HOST}/api/projects/5/persons/", json={"results": [person], "next": None}
            )
            ph = php.connect(host=HOST, cache_dir="cache", progress=False)
            print(ph.persons()["properties.email"].tolist())
            print(ph.export("persons", "persons.csv").rows)
            shell = InteractiveShell.instance()
            shell.run_line_magic("load_ext", "posthog_pandas")
            shell.run_line_magic("config", "PostHogMagics.progress = False")
            shell.run_line_magic("posthog", "connect")
            print(shell.run_line_magic("posthog", "persons --refresh")["id"].tolist())
            print(persons.call_count)
        print([name for name in ("duckdb", "sqlglot", "hogql_parser") if sys.modules[name]])
    """
    env = {"POSTHOG_PERSONAL_API_KEY": KEY, "POSTHOG_HOST": "https://ph.test"}
    result = run_without_server(code, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['a@x']", "1", "['a']", "2", "[]"]
    assert (tmp_path / "persons.csv").read_text().splitlines()[1] == '"a","[""a""]",,,,,"a@x"'


def test_importing_the_server_names_the_extra(tmp_path: Path) -> None:
    code = """
        import posthog_pandas.testing

        for load in (
            lambda: __import__("posthog_pandas.server"),
            lambda: __import__("posthog_pandas.server.hogql"),
            lambda: posthog_pandas.testing.LocalPostHog,
        ):
            try:
                load()
            except ImportError as exc:
                print(type(exc).__name__, exc.name, exc, sep=" | ")
    """
    result = run_without_server(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"MissingExtraError | duckdb | {MESSAGE}"] * 3


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_the_server_commands_say_which_extra_to_install(tmp_path: Path, command: str) -> None:
    code = f"""
        from posthog_pandas.cli import main
        sys.exit(main([{command!r}]))
    """
    result = run_without_server(code, tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"posthog-pandas {command}: {MESSAGE}\n"
    assert not (tmp_path / "posthog-demo").exists()


def test_pytest_runs_and_only_the_server_fixture_fails(tmp_path: Path) -> None:
    if not any(ep.value == "posthog_pandas.testing" for ep in entry_points(group="pytest11")):
        pytest.skip("posthog-pandas is not installed, so its pytest plugin is not registered")
    (tmp_path / "test_user.py").write_text(
        "def test_without_the_server():\n"
        "    pass\n\n\n"
        "def test_with_the_server(local_posthog):\n"
        "    pass\n"
    )
    code = """
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "test_user.py"]))
    """
    result = run_without_server(code, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout
    assert f"MissingExtraError: {MESSAGE}" in result.stdout
    assert "ERROR at setup of test_with_the_server" in result.stdout
