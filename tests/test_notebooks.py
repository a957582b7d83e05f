"""The notebooks in notebooks/ run top to bottom from a clean kernel and show their pictures."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

import blackboard

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FOUND = sorted(NOTEBOOKS.glob("*.ipynb"))


def outputs(nb: Any) -> list[Any]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def images(nb: Any) -> int:
    return sum("image/png" in out.get("data", {}) for out in outputs(nb))


def test_every_notebook_is_collected() -> None:
    """notebooks/ holds at least the five notebooks the README promises, all valid nbformat 4."""
    assert len(FOUND) >= 5, [p.name for p in FOUND]
    for path in FOUND:
        nbformat.validate(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_committed_notebook_shows_its_pictures(path: Path) -> None:
    """A committed notebook is saved with its outputs (GitHub shows them): pictures and no errors."""
    nb = nbformat.read(path, as_version=4)
    assert images(nb) >= 1, f"{path.name} was saved without its pictures: execute it and save the outputs"
    assert not [out for out in outputs(nb) if out.output_type == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook runs from a clean kernel in notebooks/ without errors, draws, and writes nothing there."""
    # The kernel (ipykernel of this interpreter: kernel_name python3 resolves
    # to sys.executable) inherits os.environ. Put the code these tests import
    # first on its path, so a source checkout run with PYTHONPATH and an
    # installed project alike execute the code under test.
    here = str(Path(blackboard.__file__).resolve().parents[1])
    if Path(here).name not in ("site-packages", "dist-packages"):
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    nb = copy.deepcopy(nbformat.read(path, as_version=4))  # a fresh copy: the committed file stays as it is
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # a cell that raises fails the test with CellExecutionError and its traceback
    assert images(nb) >= 1, f"{path.name} drew no picture"
    stderr = "".join(out.text for out in outputs(nb) if out.output_type == "stream" and out.name == "stderr")
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before, "a notebook wrote files next to itself"
