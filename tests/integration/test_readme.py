"""The README and the documentation pages say what the code does.

Every Python snippet of each document runs, in order, against the local server (one namespace
per document, so each page stands alone), and every relative link of the README names a file,
and a heading, that exist (the site's own links are checked by `mkdocs build --strict`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posthog_pandas.server import LocalPostHog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = [README, *sorted(DOCS.rglob("*.md"))]

# Pages that teach by example: each must keep at least one runnable snippet.
PAGES_WITH_SNIPPETS = {
    "README.md", "index.md", "connecting.md", "reading.md", "hogql.md", "events.md",
    "cache.md", "export.md", "jupyter.md", "local-server.md", "errors.md", "analytics.md",
    "twins.md",
}  # fmt: skip
# Files a document's snippets write into the working directory.
WRITES = {"export.md": ["events.parquet", "events", "persons.csv.gz", "q.parquet"]}
README_MAX_BYTES = 6 * 1024


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_teaching_page_has_snippets() -> None:
    with_snippets = {path.name for path in DOCUMENTS if python_blocks(path)}
    assert sorted(PAGES_WITH_SNIPPETS - with_snippets) == []


def test_readme_is_a_front_page() -> None:
    assert len(README.read_bytes()) <= README_MAX_BYTES
    quick_start = 'pip install -e ".[dev]" && posthog-pandas demo\npython -m pytest\n'
    assert f"## Quick start\n\n```bash\n{quick_start}```" in README.read_text()


def slug(heading: str) -> str:
    """The anchor GitHub and MkDocs both give a heading (for the headings used here)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links to the documentation pages"
    for link in local:
        target, _, anchor = link.partition("#")
        path = (ROOT / target) if target else README
        assert path.exists(), f"README links to {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"README links to {link}: no heading"


@pytest.mark.parametrize(
    "document", [d for d in DOCUMENTS if python_blocks(d)], ids=lambda d: name(d)
)
def test_snippets_run(
    document: Path, server: LocalPostHog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", server.api_key)
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    namespace: dict[str, object] = {}
    for block in python_blocks(document):
        exec(compile(block, str(document), "exec"), namespace)  # noqa: S102 - our own docs
    for written in WRITES.get(document.name, []):
        assert Path(written).exists(), f"{name(document)} should have written {written}"
