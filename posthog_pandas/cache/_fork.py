"""After fork(): objects holding threads, locks or SQLite connections reset them in the child.

A forked child inherits the parent's locks in whatever state they were (perhaps held by a
thread that does not exist in the child) and its SQLite connections, which SQLite forbids using
across fork. Objects registered here get ``_adopt_after_fork()`` called in the child.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _adopt_after_fork(self) -> None: ...


_REGISTERED: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def reset_after_fork(obj: ForkAware) -> None:
    """Call ``obj._adopt_after_fork()`` in every forked child while ``obj`` lives."""
    _REGISTERED.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_REGISTERED):
        obj._adopt_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
