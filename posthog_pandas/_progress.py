"""The one progress bar: rows counted as items (pages, frames) pass through.

In a notebook the bar is a widget shown through a display handle; when the pull ends the widget
is closed and its output replaced by one line of text ("persons: 500 rows in 0.2 s"). A closed
widget left in the outputs would show "Error displaying widget: model not found" in a saved and
reopened notebook, since its model is gone. In a terminal the bar is text and is cleared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["counted", "summary"]

# Rows with thousands separators and the rate scaled (unit_scale: "53.1k rows/s"); tqdm's scaled
# counts would print 2 rows as "2.00". Without a total there is no fraction and no time left to
# show: the notebook bar's default format would print "200000/? [00:04<00:00, …]".
WITH_TOTAL_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:,}/{total:,}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
)
NO_TOTAL_FORMAT = "{desc}: {n:,}{unit} [{elapsed}, {rate_fmt}]"


def counted(
    items: Iterable[T],
    *,
    show: bool | None,
    desc: str,
    rows: Callable[[T], int],
    total: Callable[[T], int | None] | None = None,
) -> Iterator[T]:
    """`items`, unchanged, with a tqdm bar counting `rows(item)` for each (none when `show`
    is False). `total` reads the expected row count from an item, asked again for each item
    until it knows (an events pull learns it from its count after the first page).
    The bar closes when the stream ends, fails or is closed early."""
    if show is False:
        yield from items
        return
    started = time.perf_counter()
    bar: _Bar | None = None
    failed = False
    try:
        for item in items:
            if bar is None:
                bar = _Bar(desc, total(item) if total is not None else None, started)
            elif bar.total is None and total is not None:
                bar.set_total(total(item))
            bar.update(rows(item))
            yield item
    except GeneratorExit:  # the consumer stopped early (a limit): not a failure
        raise
    except BaseException:
        failed = True
        raise
    finally:
        if bar is not None:
            bar.end(failed=failed)


def summary(desc: str, rows: int, seconds: float, *, failed: bool = False) -> str:
    """The line that replaces a finished bar: "persons: 500 rows in 0.2 s"."""
    done = f"stopped after {rows:,} rows" if failed else f"{rows:,} rows"
    return f"{desc}: {done} in {seconds:.1f} s"


class _Bar:
    """A tqdm bar; in a notebook also the display handle its one-line summary replaces."""

    def __init__(self, desc: str, total: int | None, started: float) -> None:
        from tqdm.auto import tqdm

        self.desc, self.started, self.rows, self.total = desc, started, 0, total
        options: dict[str, Any] = {
            "total": total,
            "desc": desc,
            "unit": " rows",
            "unit_scale": True,
            "leave": False,
            "bar_format": NO_TOTAL_FORMAT if total is None else WITH_TOTAL_FORMAT,
        }
        self.handle: Any = None
        if _is_notebook_bar(tqdm):
            from IPython.display import display

            self.tqdm = tqdm(display=False, **options)
            if total is None:  # no fraction to draw: tqdm would show a lone full square
                self.tqdm.container.children[1].layout.display = "none"
            self.handle = display(self.tqdm.container, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self.tqdm = tqdm(**options)

    def set_total(self, total: int | None) -> None:
        """The expected rows, learnt after the bar started: it now shows a fraction."""
        if total is None:
            return
        self.total = total
        self.tqdm.total = total
        self.tqdm.bar_format = WITH_TOTAL_FORMAT
        if self.handle is not None:
            self.tqdm.container.children[1].max = total
            self.tqdm.container.children[1].layout.display = None
        self.tqdm.refresh()

    def update(self, rows: int) -> None:
        self.rows += rows
        self.tqdm.update(rows)

    def end(self, *, failed: bool) -> None:
        self.tqdm.close()
        if self.handle is None:
            return
        line = summary(self.desc, self.rows, time.perf_counter() - self.started, failed=failed)
        self.handle.update({"text/plain": line}, raw=True)
        _close_tree(self.tqdm.container)  # tqdm keeps a failed bar open; its view is gone now


def _close_tree(widget: Any) -> None:
    """Close a widget with its children, layout and style: no model outlives the bar."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if part is not None:
            part.close()
    widget.close()


def _is_notebook_bar(tqdm_class: type) -> bool:
    """True when tqdm.auto chose the widget bar (a Jupyter kernel with ipywidgets)."""
    from tqdm.notebook import tqdm as notebook_tqdm

    return issubclass(tqdm_class, notebook_tqdm)
