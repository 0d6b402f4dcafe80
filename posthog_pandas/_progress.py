"""The one progress bar: rows counted as items (pages, frames) pass through."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["counted"]


def counted(
    items: Iterable[T],
    *,
    show: bool | None,
    desc: str,
    rows: Callable[[T], int],
    total: Callable[[T], int | None] | None = None,
) -> Iterator[T]:
    """`items`, unchanged, with a tqdm bar counting `rows(item)` for each (none when `show`
    is False). `total` reads the expected row count from the first item, when it has one.
    The bar closes when the stream ends, fails or is closed early."""
    if show is False:
        yield from items
        return
    from tqdm.auto import tqdm

    bar = None
    try:
        for item in items:
            if bar is None:
                expected = total(item) if total is not None else None
                bar = tqdm(total=expected, desc=desc, unit="rows", leave=False)
            bar.update(rows(item))
            yield item
    finally:
        if bar is not None:
            bar.close()
