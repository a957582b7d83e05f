"""The repository stands alone: no file reads or names a path outside it.

A user clones the repository and nothing else, so a test, benchmark, notebook
or document that points beside or above the checkout (our machines keep notes
and data next to it) fails for them at once. Data the project needs ships
inside it (``knowledge_sources/data/``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_sources import sudoku

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache",
                ".mypy_cache", ".ipynb_checkpoints", "build", "dist", "node_modules"}
# relative paths climbing out of a folder (dot dot slash, once or more), in any file
CLIMB = re.compile(r"(?<![\w.])((?:\.\.[/\\])+)([\w.-]*)")
# absolute paths of the machines the project is developed on
MACHINE = re.compile(r"(?<![\w.])/(?:work|root|home|tmp/bash_jobs)/[\w.-]")
# Path(__file__).resolve().parents[N] and .parent chains in Python code
PARENTS = re.compile(r"parents\[(\d+)\]")
# what the patterns look for is spelt in pieces below, so that this file does not name it itself
NEIGHBOUR = "shared" + "/data"  # the notes folder beside our checkouts
UP = ".." + "/"
ROOT_PARENT = "ROOT" + ".parent"


def repository_files() -> Iterator[Path]:
    """Every text file of the checkout (what a clone holds), skipping caches and environments."""
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            try:
                path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary: a picture, a database
            yield path


def outside_references(path: Path, root: Path = ROOT) -> list[str]:
    """The places in ``path`` that refer to a path outside the repository at ``root``."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in CLIMB.finditer(text):
        target = (path.parent / match.group(1) / match.group(2)).resolve()
        if not target.is_relative_to(root):
            found.append(match.group(0))
    found += [m.group(0) for m in MACHINE.finditer(text)]
    if NEIGHBOUR in text:
        found.append(NEIGHBOUR)
    if path.suffix == ".py":
        depth = len(path.relative_to(root).parts) - 1  # folders between the root and the file
        found += [m.group(0) for m in PARENTS.finditer(text) if int(m.group(1)) > depth]
        if re.search(rf"\b{re.escape(ROOT_PARENT)}\b", text):
            found.append(ROOT_PARENT)
    return found


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    """No file of the checkout names ../shared, a machine's absolute path, or climbs above the root."""
    offenders = {str(p.relative_to(ROOT)): refs for p in repository_files() if (refs := outside_references(p))}
    assert offenders == {}, f"files refer to paths outside the repository: {offenders}"


@pytest.mark.parametrize("text, outside", [
    (f"see {UP}{UP}notes.md", True),
    (f"read {UP}README.md", False),  # from tests/: the repository's own README
    ("open /" + "work/main/x", True),
    ("Path(__file__).resolve().parents[" + "3]", True),
    ("Path(__file__).resolve().parents[1]", False),
    (f"{ROOT_PARENT} / 'x'", True),
])
def test_the_check_finds_outside_references(tmp_path: Path, text: str, outside: bool) -> None:
    """The scan flags paths climbing out of the checkout and machine paths, not paths inside it."""
    root = tmp_path / "checkout"
    (root / "tests").mkdir(parents=True)
    (root / "README.md").write_text("# a checkout\n")
    probe = root / "tests" / "probe.py"
    probe.write_text(text + "\n", encoding="utf-8")
    assert bool(outside_references(probe, root.resolve())) is outside


def test_the_puzzle_sets_ship_with_the_package() -> None:
    """sudoku.puzzles("top95") reads the 95 puzzles shipped in knowledge_sources/data, each a valid puzzle."""
    top95 = sudoku.puzzles("top95")
    assert len(top95) == 95 and len(set(top95)) == 95
    assert all(len(sudoku.parse(p)) == 81 for p in top95)
    with pytest.raises(sudoku.SudokuError, match="no puzzle set named 'top96'.*top95"):
        sudoku.puzzles("top96")
