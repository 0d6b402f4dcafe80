"""The notebook experience in a real browser: JupyterLab + headless Chromium (Playwright).

A notebook starts LocalPostHog and calls connect() with no key in the kernel's environment, so
the login form appears; the test types the demo key into the password field and presses Enter,
runs the remaining cells (a persons table with its progress bar, a plot, and a second login form
from `%posthog login`), types the key into the second form without submitting it, moves on,
saves with widget-state saving on, and checks that the saved .ipynb contains the key nowhere
(metadata.widgets included) and no widget view whose model is gone. Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernels import write_python3_kernelspec

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEED, PERSONS, EVENTS = 42, 50, 500

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(
        shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None,
        reason="jupyterlab is not installed in this interpreter's environment",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

SETUP = f"""\
import os
assert "POSTHOG_PERSONAL_API_KEY" not in os.environ
import posthog_pandas as php
from posthog_pandas.server import LocalPostHog

server = LocalPostHog(persons={PERSONS}, events={EVENTS}, seed={SEED}).start()
ph = php.connect(host=server.url, cache=False)  # no key: shows the login form"""
PERSONS_CELL = """\
persons = ph.persons()
print(f"{len(persons)} persons")
persons[["id", "created_at"]].head(3)"""
PLOT_CELL = """\
import matplotlib.pyplot as plt

daily = ph.query(
    "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day LIMIT 100"
)
daily.set_index("day")["n"].plot(title="events per day")
plt.show()"""
SECOND_FORM_CELL = """\
%load_ext posthog_pandas
%posthog login"""


def _notebook(path: Path) -> None:
    cells = [SETUP, PERSONS_CELL, PLOT_CELL, SECOND_FORM_CELL]
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _expected() -> tuple[str, str]:
    """The demo key and the first person's uuid, from an identical server in this process."""
    import posthog_pandas as php
    from posthog_pandas.server import LocalPostHog

    with LocalPostHog(persons=PERSONS, events=EVENTS, seed=SEED) as srv:
        ph = php.connect(srv.api_key, host=srv.url, cache=False, progress=False)
        return srv.api_key, str(ph.persons()["id"].iloc[0])


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 with a token, a kernel running this interpreter, no POSTHOG_*."""
    work = tmp_path / "lab"
    work.mkdir()
    jupyter = tmp_path / "jupyter"
    write_python3_kernelspec(jupyter)
    # Save widget state into the .ipynb, so the test can check that the key is not in it.
    widget_settings = tmp_path / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    widget_settings.mkdir(parents=True)
    (widget_settings / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(
        JUPYTER_PATH=str(jupyter),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        POSTHOG_PANDAS_CACHE_DIR=str(tmp_path / "cache"),
    )
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={work}",
            "--allow-root",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base, token, proc, tmp_path / "lab.log")
        yield f"{base}/lab/tree/{{name}}?token={token}", work
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_for_server(base: str, token: str, proc: subprocess.Popen[Any], log: Path) -> None:
    import requests

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/api/status", params={"token": token}, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"jupyter lab did not start in 90 s:\n{log.read_text()[-3000:]}")


def test_login_form_then_table_and_plot(lab: tuple[str, Path]) -> None:
    url, work = lab
    key, first_uuid = _expected()
    notebook = work / "login.ipynb"
    _notebook(notebook)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _drive(page, url.format(name=notebook.name), key, first_uuid)
            _wait_saved(notebook)
            page.screenshot(path=str(ARTIFACTS / "login-success.png"), full_page=True)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "login-failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    saved = notebook.read_text()
    assert key not in saved  # neither the submitted key nor the unsent one
    assert first_uuid in saved and "image/png" in saved  # the outputs were saved
    nb = json.loads(saved)
    widget_state = nb["metadata"]["widgets"]  # saved: _wait_saved's check means it
    state_text = json.dumps(widget_state)
    assert key not in state_text
    assert "Connected as demo@posthog-pandas.local" in state_text
    assert "Key received (hidden)" in state_text  # the second form took the unsent key
    assert state_text.count('"PasswordModel"') == 2  # both fields saved, emptied
    assert orphan_widget_views(nb) == []
    assert re.search(rf"persons: {PERSONS} rows in \d+\.\d s", saved)  # the bar's summary


def orphan_widget_views(nb: dict[str, Any]) -> list[str]:
    """Model ids of widget views in the outputs that the saved widget state lacks (a reopened
    notebook shows each as "Error displaying widget: model not found")."""
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    views = [
        out["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    return [model_id for model_id in views if model_id not in state]


def _wait_saved(notebook: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = notebook.read_text()
        # The final state: an autosave from earlier (every 120 s) does not count.
        if "image/png" in text and "Key received (hidden)" in text:
            return
        time.sleep(0.2)
    pytest.fail("the notebook was not saved with its outputs within 30 s")


def _drive(page: Any, url: str, key: str, first_uuid: str) -> None:
    expect = sync_api.expect
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.get_by_text(re.compile(r"Python 3.*\| Idle"))).to_be_visible(timeout=90_000)

    # 1. Run the first cell only: connect() finds no key and shows the login form.
    page.locator(".jp-Cell").nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    password = page.locator("input[type=password]").first
    # Importing pandas and starting the server can take a minute on a loaded 2-core machine.
    expect(password).to_be_visible(timeout=180_000)

    # 2. Type the key and press Enter.
    expect(page.get_by_text("Create a personal API key at")).to_be_visible()
    password.fill(key)
    password.press("Enter")
    expect(page.get_by_text(re.compile(r"Connected as .* to project 1"))).to_be_visible()
    expect(password).to_have_value("")

    # 3. Run the remaining cells.
    page.locator(".jp-Cell").nth(1).locator(".jp-InputArea-editor").click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"Run Selected Cell and All Below")).click()

    table = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output table.dataframe")
    expect(table).to_be_visible()
    expect(table).to_contain_text(first_uuid)
    expect(page.get_by_text(f"{PERSONS} persons", exact=True)).to_be_visible()
    # The progress bar became one line of text when the pull ended.
    expect(page.get_by_text(re.compile(rf"^persons: {PERSONS} rows in \d+\.\d s$"))).to_be_visible()
    image = page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 100

    # 4. A second form (%posthog login): type the key, submit nothing, click elsewhere.
    second = page.locator(".jp-Cell").nth(3).locator("input[type=password]")
    expect(second).to_be_visible()
    second.fill(key)
    page.locator(".jp-Cell").nth(2).locator(".jp-InputArea-editor").click()
    expect(page.get_by_text("Key received (hidden): press Enter or Connect.")).to_be_visible()
    expect(second).to_have_value("")

    # 5. Save (the caller waits for the file on disk).
    page.keyboard.press("Control+s")
