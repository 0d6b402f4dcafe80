"""The docs site's notebook pages (docs/_hooks/notebooks.py): every notebook is found, staged
outside the checkout, listed in the navigation, and rendered without network scripts.

CI's `mkdocs build --strict` executes and renders them; these tests check the hook's parts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture()
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "notebooks_hook", ROOT / "docs/_hooks/notebooks.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_is_in_the_navigation(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", "phx_not_for_the_docs")
    config = SimpleNamespace(nav=["index.md", {"Notebooks": ["stale.ipynb"]}], watch=[])
    hook.on_config(config)
    order = ["quickstart", "analytics", "pushdown", "scale"]  # the quickstart, then by name
    assert sorted(order) == [p.stem for p in NOTEBOOKS]  # every notebook, once
    pages = [{hook.title(ROOT / f"notebooks/{n}.ipynb"): f"notebooks/{n}.ipynb"} for n in order]
    assert config.nav == ["index.md", {"Notebooks": pages}]
    assert {"posthog-pandas quickstart": "notebooks/quickstart.ipynb"} in pages
    title = "Past one machine: a Parquet dataset, and events as a Dask DataFrame"
    assert {title: "notebooks/scale.ipynb"} in pages
    assert {"Push the work down to PostHog": "notebooks/pushdown.ipynb"} in pages
    title = "Product analytics: active users, a funnel, retention"
    assert {title: "notebooks/analytics.ipynb"} in pages
    assert config.watch == [str(ROOT / "notebooks")]
    assert "POSTHOG_PERSONAL_API_KEY" not in os.environ  # the notebooks run the demo server


def test_notebooks_are_staged_outside_the_checkout(hook: ModuleType, tmp_path: Path) -> None:
    from mkdocs.structure.files import Files

    config = SimpleNamespace(site_dir=str(tmp_path / "site"), use_directory_urls=True)
    files = hook.on_files(Files([]), config)
    staged = {f.src_uri: Path(f.abs_src_path) for f in files}
    assert sorted(staged) == [f"notebooks/{p.name}" for p in NOTEBOOKS]
    for path in staged.values():
        assert ROOT not in path.parents  # a notebook's own files (a CSV) land there
        assert path.read_bytes() == (ROOT / "notebooks" / path.name).read_bytes()
    assert files.get_file_from_path("notebooks/quickstart.ipynb").edit_uri == (
        "../notebooks/quickstart.ipynb"
    )
    hook.on_post_build(config)
    assert not any(path.exists() for path in staged.values())


def test_notebook_pages_load_no_widget_renderer(hook: ModuleType) -> None:
    loader = (
        "<script>\n(function() {\n  function addWidgetsRenderer() {\n    var src = "
        "'https://unpkg.com/@jupyter-widgets/html-manager@*/dist/embed-amd.js';\n  }\n}());\n"
        "</script>"
    )
    state = '<script type="application/vnd.jupyter.widget-state+json">{"state": {}}</script>'
    page = f"<head>{loader}</head><body><pre>persons: 500 rows in 0.1 s</pre>{state}</body>"
    assert hook.without_widget_scripts(page) == (
        "<head></head><body><pre>persons: 500 rows in 0.1 s</pre></body>"
    )
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="unpkg.com"):
        hook.without_widget_scripts('<script src="https://unpkg.com/x.js"></script>')
