"""Shared fixtures: the anyio backend and small blackboards (memory and file)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blackboard import Blackboard


def as_format_1(path: Path) -> None:
    """Rewrite a blackboard file as format version 1 wrote it (no activation start times)."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE bb_activation DROP COLUMN started")
    con.execute("UPDATE bb_meta SET value = '1' WHERE name = 'version'")
    con.close()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backend the controller's sync run() uses)."""
    return "asyncio"


@pytest.fixture
def bb() -> Iterator[Blackboard]:
    """A fresh in-memory blackboard, closed afterwards."""
    board = Blackboard()
    yield board
    board.close()


@pytest.fixture
def bb_path(tmp_path: Path) -> Path:
    """Where a file blackboard of this test lives (not created yet)."""
    return tmp_path / "board.duckdb"


@pytest.fixture
def file_bb(bb_path: Path) -> Iterator[Blackboard]:
    """A fresh blackboard in a DuckDB file under tmp_path, closed afterwards."""
    board = Blackboard(bb_path)
    yield board
    board.close()


@pytest.fixture(params=["memory", "file"])
def any_bb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blackboard]:
    """The same test on a memory blackboard and on a file blackboard."""
    board = Blackboard() if request.param == "memory" else Blackboard(tmp_path / "any.duckdb")
    yield board
    board.close()


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def file_hash() -> Callable[[str | Path], str]:
    """A function hashing a file's bytes (to prove a refused file was not touched)."""
    return sha256


def state_of(board: Blackboard) -> tuple[Any, ...]:
    """Everything an invalid write must leave unchanged: memory and database."""
    counts = board.sql(
        "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM events),"
        " (SELECT count(*) FROM bb_entry), (SELECT count(*) FROM bb_event)"
    ).to_pylist()[0]
    return (
        len(board),
        tuple(board.events()),
        tuple(board.entries(status=None)),
        tuple(counts.values()),
    )


@pytest.fixture
def snapshot() -> Callable[[Blackboard], tuple[Any, ...]]:
    """A function capturing len(bb), the events, the entries and the SQL row counts."""
    return state_of


def live_state(board: Blackboard) -> dict[int, Any]:
    """The live entries of a blackboard keyed by id, as replay() returns them."""
    return {e.id: e for e in board.entries(status=None)}


@pytest.fixture
def live() -> Callable[[Blackboard], dict[int, Any]]:
    """A function returning the live entries by id (to compare with replay())."""
    return live_state


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray with 2 CPUs, started once by the test session and shut down at its end."""
    ray = pytest.importorskip("ray")
    # Ray workers import what tasks name by reference: the project, and the
    # test modules (pytest puts tests/ on this process's path, not theirs).
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here.parent), str(here)])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()
