"""MkDocs hook: every notebooks/*.ipynb becomes a page of the site, executed at build time.

mkdocs-jupyter renders the pages and runs them (mkdocs.yml: `execute: true`), so a reader sees
the tables and plots without installing anything. The committed notebooks carry no outputs
(tests/notebooks checks that), which is why they are executed here rather than rendered as stored.

Each notebook is copied into a temporary directory first, so the files a notebook writes (the
quickstart's CSV) land there and not in the checkout, and the notebooks need not live under
docs/. A new notebook needs no edit: it is found by the glob and listed under "Notebooks" in the
navigation. The rendered page loads nothing from the network: nbconvert's loader of the widget
renderer (a script from unpkg.com, added whenever a notebook has widget state) is removed, as
are the saved models, which are only the closed progress bars. POSTHOG_* variables are removed
from this build's environment, so the notebooks run against the embedded local server with demo
data, never an account whose key happens to be set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SECTION = "Notebooks"
_staging: list[Path] = []
WIDGET_SCRIPTS = re.compile(
    r"<script>\s*\(function\(\) \{\s*function addWidgetsRenderer\(\).*?</script>"
    r"|<script type=\"application/vnd\.jupyter\.widget-state\+json\">.*?</script>",
    re.DOTALL,
)


def notebook_paths() -> list[Path]:
    """The quickstart first, where a newcomer starts; the others by file name."""
    return sorted(
        NOTEBOOKS.glob("*.ipynb"), key=lambda path: (path.stem != "quickstart", path.name)
    )


def title(path: Path) -> str:
    """The notebook's first markdown heading, else its file name."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def on_config(config: Any) -> Any:
    for name in [name for name in os.environ if name.startswith("POSTHOG_")]:
        del os.environ[name]
    pages = [{title(path): f"notebooks/{path.name}"} for path in notebook_paths()]
    nav = [item for item in config.nav if not (isinstance(item, dict) and SECTION in item)]
    config.nav = [*nav, {SECTION: pages}]
    config.watch.append(str(NOTEBOOKS))
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files turns .ipynb files into pages
def on_files(files: Files, config: Any) -> Files:
    staging = Path(tempfile.mkdtemp(prefix="posthog-pandas-docs-")) / "notebooks"
    staging.mkdir()
    _staging.append(staging.parent)
    for path in notebook_paths():
        copy = staging / path.name
        shutil.copyfile(path, copy)
        page = File(
            f"notebooks/{path.name}",
            src_dir=str(staging.parent),
            dest_dir=config.site_dir,
            use_directory_urls=config.use_directory_urls,
        )
        page.edit_uri = f"../notebooks/{path.name}"  # relative to edit_uri (blob/main/docs/)
        files.append(page)
    return files


def on_post_build(config: Any) -> None:
    while _staging:
        shutil.rmtree(_staging.pop(), ignore_errors=True)


def without_widget_scripts(html: str) -> str:
    """The page without nbconvert's widget renderer loader and saved widget state."""
    html = WIDGET_SCRIPTS.sub("", html)
    if "unpkg.com" in html:
        raise PluginError("a notebook page still loads a script from unpkg.com")
    return html


def on_post_page(output: str, page: Any, config: Any) -> str:
    is_notebook = page.file.src_uri.startswith("notebooks/") and page.file.src_uri.endswith(
        ".ipynb"
    )
    return without_widget_scripts(output) if is_notebook else output
