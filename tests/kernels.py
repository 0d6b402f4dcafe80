"""A `python3` kernelspec running this interpreter, for tests that execute notebooks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def write_python3_kernelspec(jupyter_dir: Path) -> None:
    """A `python3` kernelspec under `jupyter_dir` (a JUPYTER_PATH entry) running this
    interpreter; otherwise the machine's own spec could pick another Python."""
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def install_python3_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `python3` (found first through JUPYTER_PATH) run *this* interpreter with this
    checkout importable."""
    write_python3_kernelspec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
