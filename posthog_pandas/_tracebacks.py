"""How IPython and Jupyter show posthog-pandas' errors: the user's frames and the message.

The frames inside posthog-pandas, and the exceptions chained under ours (urllib3's, sqlite3's),
say nothing the user can act on: the message already names the cause and the fix. IPython asks
an exception for `_render_traceback_()` before formatting it (InteractiveShell.showtraceback,
IPython 8 and 9, in terminals and kernels alike); `PostHogError` answers with
`user_traceback`, which formats a copy of the traceback cut at the first frame of this package,
with IPython's own formatter, so colours, `Cell In[3]` and every `%xmode` apply. `%xmode
Verbose` too shows only the user's frames: ours hold request headers, and their values would
be printed with the key in them. `%debug` still walks every frame (the original traceback is
left as it is), and plain Python never calls the hook: it prints the full traceback.
"""

from __future__ import annotations

import traceback
import types
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def user_traceback(error: BaseException) -> list[str]:
    """IPython's structured traceback of `error` without this package's frames or chain."""
    from IPython import get_ipython

    shell = get_ipython()
    formatter: Any = shell.InteractiveTB if shell is not None else None
    chain = (error.__cause__, error.__suppress_context__)
    error.__cause__, error.__suppress_context__ = None, True
    try:
        tb = outside_package(error.__traceback__)
        if formatter is None:  # a shell that is not the global one: the standard format
            return traceback.format_exception(type(error), error, tb)
        return list(formatter.structured_traceback(type(error), error, tb))
    finally:
        error.__cause__, error.__suppress_context__ = chain
        if formatter is not None:  # formatting kept our copy: %debug must walk the original
            formatter.tb = error.__traceback__


def outside_package(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A copy of `tb` that ends before its first frame inside posthog-pandas (the original,
    which `%debug` and `%tb` also read, is left as it is)."""
    kept: list[types.TracebackType] = []
    while tb is not None and not _in_package(tb.tb_frame.f_code.co_filename):
        kept.append(tb)
        tb = tb.tb_next
    copy = None
    for entry in reversed(kept):
        copy = types.TracebackType(copy, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return copy


def _in_package(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):  # "<string>", "<ipython-input-...>": not a file of ours
        return False
