"""A notebook that connects with the key from the environment, saved with its outputs, holds no
secret: not in reprs, tables, magics output, nor in error tracebacks, which show the user's
cells and our messages, without our frames or the exceptions chained under ours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from posthog_pandas.server import ApiKey, LocalPostHog
from tests.kernels import install_python3_kernel

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OUR_FRAME = re.compile(r"posthog_pandas/\w+\.py:\d+")
KEY = "phx_SECRETAUDIT_" + "n0tebookKey0123456789abcdefghi"
CELLS = [
    "import posthog_pandas as php\n"
    "ph = php.connect(progress=False, retry=php.RetrySettings(attempts=1, backoff_factor=0.01))\n"
    "ph",
    "persons = ph.persons()\npersons.head()",
    "print(ph)\nph.cache.info()",
    "%load_ext posthog_pandas",
    "%posthog whoami",
    "%%posthog\nselect event, count() as n from events group by event order by event",
    # Errors, with their tracebacks saved in the notebook:
    "ph.query('select nope_column from events limit 1')",
    "php.connect(host='http://127.0.0.1:9', progress=False, retry=php.RetrySettings(attempts=0))",
    "%posthog query 'select nope_column from events limit 1'",
    "import pickle\npickle.dumps(ph)",
    "ph.fetch('cohorts', token='phc_x')",
    "open('plain-file', 'w').close()\nphp.connect(cache_dir='plain-file/cache', progress=False)",
    # Verbose tracebacks show the arguments of every frame.
    "%xmode Verbose",
    "php.connect(host='http://127.0.0.1:9', progress=False, retry=php.RetrySettings(attempts=0))",
    "ph.query('select nope_column from events limit 1')",
]


@pytest.fixture()
def kernel_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A python3 kernelspec running this interpreter, with this checkout importable."""
    install_python3_kernel(tmp_path, monkeypatch)
    run = tmp_path / "run"
    run.mkdir()
    return run


@pytest.fixture()
def server() -> Iterator[LocalPostHog]:
    with LocalPostHog(persons=300, events=2000, seed=31, keys=[ApiKey(KEY)]) as srv:
        yield srv


def test_a_saved_notebook_holds_no_secret(
    server: LocalPostHog, kernel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", KEY)
    monkeypatch.setenv("POSTHOG_HOST", server.url)
    monkeypatch.setenv("POSTHOG_PANDAS_CACHE_DIR", str(tmp_path / "nb-cache"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(kernel_dir)}},
    )
    client.execute()
    saved = tmp_path / "audit.ipynb"
    nbformat.write(nb, saved)

    outputs = [out for cell in nb.cells for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    names = [out.ename for out in errors]
    assert names == [
        "QueryError",
        "TransportError",
        "TypeError",
        "PaginationError",
        "CacheError",
        "TransportError",
        "QueryError",
    ]
    text = saved.read_text()
    assert "PostHog connection" in text and "Unable to resolve field: nope_column" in text
    # the magic's one-line error: PostHog's words first
    assert re.search(r"UsageError: mismatched input .* \(PostHog answered 400 to POST ", text)
    # Our errors show the user's cell and the message: no frame of posthog-pandas (whose
    # arguments Verbose would print) and no chained exception under them.
    for error in errors:
        shown = ANSI.sub("", "\n".join(error.traceback))
        ours = error.ename != "TypeError"  # ph.fetch(token=...) is Python's own TypeError
        assert bool(OUR_FRAME.search(shown)) is not ours, shown
        assert ("The above exception" in shown) is False, shown
    assert len(server.requests) >= 3
    assert KEY not in text and "SECRETAUDIT" not in text
    cache_files = [p for p in (tmp_path / "nb-cache").rglob("*") if p.is_file()]
    assert cache_files and not [p for p in cache_files if b"SECRETAUDIT" in p.read_bytes()]
