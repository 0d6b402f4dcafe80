"""The progress bar: what it prints, and that in a notebook it leaves one line and no widget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import IPython.display
import ipywidgets
import pytest
import tqdm.auto
import tqdm.notebook

from posthog_pandas._progress import counted, summary

PAGES = [list(range(1500)), list(range(1500)), list(range(700))]


def pages() -> Iterator[list[int]]:
    yield from PAGES


def test_nothing_when_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(counted(pages(), show=False, desc="persons", rows=len)) == PAGES
    assert capsys.readouterr() == ("", "")


def test_terminal_bar_with_a_total(capsys: pytest.CaptureFixture[str]) -> None:
    items = counted(pages(), show=True, desc="persons", rows=len, total=lambda _page: 3700)
    assert list(items) == PAGES
    first = capsys.readouterr().err.split("\r")[1]  # later refreshes depend on the clock
    assert first == "persons:   0%|          | 0/3,700 rows [00:00<?, ? rows/s]"


def test_terminal_bar_without_a_total_has_no_eta(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(counted(pages(), show=True, desc="events", rows=len)) == PAGES
    first = capsys.readouterr().err.split("\r")[1]
    assert first == "events: 0 rows [00:00, ? rows/s]"  # no "/?" total, no "<…" time left


def test_summary_line() -> None:
    assert summary("persons", 500, 0.23) == "persons: 500 rows in 0.2 s"
    assert summary("events", 200_000, 4.04) == "events: 200,000 rows in 4.0 s"
    stopped = summary("events", 1_000, 3.21, failed=True)
    assert stopped == "events: stopped after 1,000 rows in 3.2 s"


class Handle:
    """IPython's DisplayHandle, recording what replaced the displayed bar."""

    def __init__(self, shown: Any) -> None:
        self.shown = shown
        self.updates: list[tuple[Any, dict[str, Any]]] = []

    def update(self, obj: Any, **kwargs: Any) -> None:
        self.updates.append((obj, kwargs))


@pytest.fixture()
def notebook(monkeypatch: pytest.MonkeyPatch) -> list[Handle]:
    """tqdm.auto as in a Jupyter kernel (the widget bar), and display() recorded."""
    handles: list[Handle] = []

    def display(obj: Any, *, display_id: bool = False) -> Handle:
        assert display_id is True  # the output must be replaceable
        handles.append(Handle(obj))
        return handles[-1]

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setattr(IPython.display, "display", display)
    return handles


def widget_tree(widget: Any) -> list[Any]:
    parts = [widget, getattr(widget, "layout", None), getattr(widget, "style", None)]
    children = [w for child in getattr(widget, "children", ()) for w in widget_tree(child)]
    return [w for w in parts if w is not None] + children


def test_notebook_bar_becomes_one_line_and_closes_every_model(notebook: list[Handle]) -> None:
    items = counted(pages(), show=None, desc="persons", rows=len, total=lambda _page: 3700)
    assert next(items) == PAGES[0]
    [handle] = notebook
    bar = handle.shown
    assert isinstance(bar, ipywidgets.HBox) and bar.comm is not None  # shown while pulling
    assert bar.children[2].value.replace("\u2007", " ") == " 0/3,700 rows [00:00&lt;?, ? rows/s]"
    assert list(items) == PAGES[1:]
    [(line, kwargs)] = handle.updates
    assert kwargs == {"raw": True}
    assert re.fullmatch(r"persons: 3,700 rows in \d+\.\d s", line["text/plain"])
    assert [w for w in widget_tree(bar) if w.comm is not None] == []


def test_notebook_bar_without_a_total_shows_no_eta(notebook: list[Handle]) -> None:
    items = counted(pages(), show=None, desc="events", rows=len)
    next(items)
    text = notebook[0].shown.children[2].value.replace("\u2007", " ")
    assert text == "events: 0 rows [00:00, ? rows/s]"  # no "/?" total, no "<…" time left
    assert notebook[0].shown.children[1].layout.display == "none"  # no bar without a total
    items.close()  # stopped early by the consumer (a limit): a plain summary
    [(line, _)] = notebook[0].updates
    assert re.fullmatch(r"events: 1,500 rows in \d+\.\d s", line["text/plain"])


def test_notebook_bar_of_a_failed_pull_says_so_and_closes(notebook: list[Handle]) -> None:
    def failing() -> Iterator[list[int]]:
        yield PAGES[0]
        raise ConnectionError("network down")

    with pytest.raises(ConnectionError):
        list(counted(failing(), show=None, desc="events", rows=len, total=lambda _page: 3700))
    [handle] = notebook
    [(line, _)] = handle.updates
    assert re.fullmatch(r"events: stopped after 1,500 rows in \d+\.\d s", line["text/plain"])
    assert [w for w in widget_tree(handle.shown) if w.comm is not None] == []


def test_a_total_learnt_after_the_first_page_gives_the_bar_its_fraction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    known: list[int] = []  # an events pull counts its events after the first page

    def learning() -> Iterator[list[int]]:
        for page in PAGES:
            yield page
            known.append(3700)

    total = lambda _page: known[0] if known else None  # noqa: E731
    assert list(counted(learning(), show=True, desc="events", rows=len, total=total)) == PAGES
    shown = capsys.readouterr().err.split("\r")
    assert shown[1] == "events: 0 rows [00:00, ? rows/s]"
    assert any("/3,700 rows" in text for text in shown[2:])


def test_a_notebook_bar_shows_its_bar_once_the_total_is_known(notebook: list[Handle]) -> None:
    known: list[int] = []
    items = counted(
        pages(), show=None, desc="events", rows=len, total=lambda _p: known[0] if known else None
    )
    next(items)
    assert notebook[0].shown.children[1].layout.display == "none"
    known.append(3700)
    next(items)
    progress = notebook[0].shown.children[1]
    assert progress.layout.display is None and progress.max == 3700
    list(items)
