"""An IPython shell for tests of the magics: its run_cell re-raises, as jupysql's TestingShell
does, so a failing magic fails the test with its own exception."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from posthog_pandas import _session


class RaisingShell(InteractiveShell):
    def run_cell(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@contextmanager
def magics_shell() -> Iterator[RaisingShell]:
    """A shell with `%load_ext posthog_pandas` done and progress bars off; afterwards the
    session's default connection is forgotten and the shell cleared."""
    config = Config()
    config.HistoryManager.enabled = False
    shell = RaisingShell(config=config)
    shell.run_line_magic("load_ext", "posthog_pandas")
    shell.run_line_magic("config", "PostHogMagics.progress = False")
    try:
        yield shell
    finally:
        _session.reset()
        shell.configurables.clear()
        InteractiveShell.clear_instance()
