"""In a real IPython shell, an error of ours shows the user's frames and the message, not the
frames inside posthog-pandas nor the urllib3 / requests chain under it; the exception itself
keeps its whole traceback and chain (for %debug, plain Python and `except` blocks)."""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator

import pytest
import requests
import requests_mock
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import posthog_pandas as php
from posthog_pandas import _tracebacks

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RULE = "-" * 75
NOT_CONNECTED = (
    "CredentialsError: Not connected yet: enter your personal API key in the login form shown "
    "by connect() (or run %posthog login), or call ph.login('phx_...')."
)


@pytest.fixture()
def shell() -> Iterator[InteractiveShell]:
    """The global IPython shell (what get_ipython() returns in a notebook), history off."""
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()


def shown(shell: InteractiveShell, cell: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What the user sees when `cell` fails, without colours."""
    capsys.readouterr()
    result = shell.run_cell(cell)
    assert result.error_in_exec is not None
    return ANSI.sub("", capsys.readouterr().out)


def test_an_accessor_before_connecting_shows_the_users_line_and_the_message(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("import posthog_pandas as php\nph = php.connect(login=False, cache=False)")
    assert shown(shell, "ph.persons()", capsys) == "\n".join(
        [
            RULE,
            "CredentialsError                          Traceback (most recent call last)",
            "Cell In[1], line 1",
            "----> 1 ph.persons()",
            "",
            NOT_CONNECTED,
            "",
        ]
    )
    # %debug walks the whole traceback, our frames included.
    files = [frame.filename for frame in traceback.extract_tb(shell.InteractiveTB.tb)]
    assert any(name.endswith("posthog_pandas/_core.py") for name in files)


def test_the_users_own_frames_stay(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("import posthog_pandas as php\nph = php.connect(login=False, cache=False)")
    text = shown(shell, "def load():\n    return ph.persons()\n\nload()", capsys)
    assert "----> 4 load()" in text and "----> 2     return ph.persons()" in text
    assert "posthog_pandas" not in text and text.endswith(NOT_CONNECTED + "\n")


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal"])
def test_every_xmode_leaves_out_our_frames_and_the_chain_under_our_error(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    session = requests.Session()
    adapter = requests_mock.Adapter()
    adapter.register_uri(
        requests_mock.ANY, requests_mock.ANY, exc=requests.exceptions.ConnectionError("reset")
    )
    session.mount("https://", adapter)
    shell.user_ns.update(session=session, php=php)
    shell.run_line_magic("xmode", mode)
    text = shown(
        shell,
        "php.connect('phx_' + 'k' * 40, session=session, cache=False, dotenv=False, "
        "retry=php.RetrySettings(attempts=0))",
        capsys,
    )
    message = (
        "TransportError: GET https://us.posthog.com/api/users/@me/ failed before PostHog "
        "answered: ConnectionError: reset. Check your network and POSTHOG_HOST."
    )
    assert text.rstrip().endswith(message)
    internals = ("client.py", "_core.py", "_http.py", "requests/", "requests_mock/", "urllib3")
    assert [name for name in internals if name in text] == []
    assert "The above exception" not in text and "During handling" not in text


def test_rendering_leaves_the_exception_as_it_was(shell: InteractiveShell) -> None:
    ph = php.connect(login=False, cache=False)
    with pytest.raises(php.CredentialsError) as info:
        ph.persons()
    error = info.value
    error.__cause__ = cause = ValueError("under it")
    before = (error.__traceback__, error.__context__)
    error.__suppress_context__ = False
    text = ANSI.sub("", "\n".join(error._render_traceback_()))
    assert text.endswith(NOT_CONNECTED)
    assert "posthog_pandas/_core.py" not in text and "ValueError: under it" not in text
    assert (error.__traceback__, error.__context__) == before and error.__cause__ is cause
    assert error.__suppress_context__ is False
    assert "_core.py" in "".join(traceback.format_exception(error))  # plain Python: all


def test_outside_package_cuts_at_the_first_frame_of_ours() -> None:
    ph = php.connect(login=False, cache=False)
    try:
        ph.persons()
    except php.CredentialsError as exc:
        tb = exc.__traceback__
    kept = traceback.extract_tb(_tracebacks.outside_package(tb))
    assert [frame.name for frame in kept] == [
        "test_outside_package_cuts_at_the_first_frame_of_ours"
    ]
    assert _tracebacks.outside_package(None) is None
