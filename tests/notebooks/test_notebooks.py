"""Every notebook in notebooks/ runs top to bottom (no key: against the local server), the
executed file shows no widget whose model is gone, and the committed files carry no outputs and
no key."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from tests.kernels import install_python3_kernel

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT = 120


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.fixture()
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `python3` kernelspec that runs *this* interpreter, found first through JUPYTER_PATH.

    Without it the kernel could be whatever `python3` spec the machine has installed, with a
    different interpreter and without this checkout on its path.
    """
    install_python3_kernel(tmp_path, monkeypatch)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name in list(os.environ):  # conftest already does this; the kernel inherits os.environ
        if name.startswith("POSTHOG_") and name != "POSTHOG_PANDAS_CACHE_DIR":
            monkeypatch.delenv(name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return run_dir


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {
        "quickstart.ipynb",
        "pushdown.ipynb",
        "analytics.ipynb",
        "scale.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_clean(path: Path) -> None:
    from posthog_pandas.server.state import default_key

    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"] == {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "widgets" not in nb.metadata  # no saved widget state
    assert default_key(42) not in text and "phx_" not in text


class FrontendLikeClient(NotebookClient):  # type: ignore[misc]
    """Saves widget state as JupyterLab does: without the models the kernel closed.

    nbclient keeps every model it ever saw, so a view of a closed widget (the kind a reopened
    notebook shows as "Error displaying widget: model not found") would pass unnoticed.
    """

    def handle_comm_msg(self, outs: Any, msg: dict[str, Any], cell_index: int) -> None:
        super().handle_comm_msg(outs, msg, cell_index)
        if msg["msg_type"] == "comm_close":
            self.widget_state.pop(msg["content"]["comm_id"], None)


def orphan_widget_views(nb: Any) -> list[str]:
    """Model ids of widget views in the outputs that the saved widget state lacks."""
    saved = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = saved.get("state", {})
    views = [
        out["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    return [model_id for model_id in views if model_id not in models]


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path, kernel_env: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = FrontendLikeClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(kernel_env)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = json.dumps(outputs)
    assert orphan_widget_views(nb) == []
    if path.stem == "quickstart":
        assert any("image/png" in out.get("data", {}) for out in outputs), "no plot rendered"
        assert (kernel_env / "events_per_day.csv").is_file()
        assert "PostHog connection" in text  # PostHog._repr_html_ rendered
        # The pull's progress bar became one line of text when it ended.
        assert re.search(r"persons: 500 rows in \d+\.\d s", text), "no summary of the pull"
    if path.stem == "analytics":
        check_analytics(outputs, text, kernel_env)
    if path.stem == "scale":
        # The demo's 30 days: one folder and one partition a day. The group-by's assert against
        # pandas ran in its cell; the read_events probe (no rows) printed no pull summary.
        assert "30 day folders: ['day=2024-01-01', 'day=2024-01-02', 'day=2024-01-03']" in text
        assert "30 partitions" in text
        assert "events: 0 rows" not in text
        assert re.search(r"\$pageview\s+\d+", text), "no group-by result"
    if path.stem == "pushdown":
        assert "Same answer: True" in text
        assert re.search(r"events: [\d,]+ rows in \d+\.\d s", text), "no summary of the pull"


def check_analytics(outputs: list[Any], text: str, run_dir: Path) -> None:
    """Each question was answered by PostHog and by the twin, the assert_frame_equal cells ran
    (their sentence prints only after it), the two figures rendered, and the magic's frame and
    CSV are the accessor's."""
    pngs = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(pngs) == 2, "the DAU/WAU plot and the retention heatmap"
    for sentence in (
        "DAU and WAU: PostHog and the twin agree, cell for cell.",
        "Funnel by browser: PostHog and the twin agree, cell for cell.",
        "Weekly retention: PostHog and the twin agree, cell for cell.",
        "The magic's frame is ph.trends's: 5 weeks, also in weekly_active.csv.",
    ):
        assert sentence in text, sentence
    # The demo's 30 days (2024-01-01 to 2024-01-31) in a UTC project: 5 weeks from Sunday.
    assert "project time zone: UTC; 30 days, 5 weeks" in text
    weekly = pd.read_csv(run_dir / "weekly_active.csv")
    assert list(weekly.columns) == ["date", "series", "value"]
    assert weekly["date"].iloc[0].startswith("2023-12-31")  # the first week, from its Sunday
    assert len(weekly) == 5 and (weekly["series"] == "$pageview").all()
