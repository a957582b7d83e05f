"""The blackboard store: writes, reads, SQL, files, validation, replay."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import as_format_1, live_state, sha256, state_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from strategies import (
    confidences,
    invalid_confidences,
    invalid_keys,
    invalid_values,
    json_values,
    keys,
    space_names,
)

from blackboard import (
    UNSET,
    Blackboard,
    BlackboardError,
    BlackboardFileError,
    ClosedBlackboardError,
    Entry,
    EntryNotFoundError,
    EntryRow,
    Event,
    EventRow,
    IncompatibleVersionError,
    NotABlackboardError,
    QueryError,
    RunRow,
    Space,
    Status,
    UnknownSpaceError,
    ValidationError,
    entry_facts,
)

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ======================================================================= post
def test_post_returns_the_stored_entry(any_bb: Blackboard) -> None:
    """post() returns an active Entry carrying what was given, and get() returns the same."""
    e = any_bb.post("hyp", {"word": "cat"}, key="w1", confidence=0.75, source="lexer")
    assert isinstance(e, Entry)
    assert (e.space, e.key, e.value, e.confidence, e.source) == ("hyp", "w1", {"word": "cat"}, 0.75, "lexer")
    assert e.status == Status.ACTIVE and e.active
    assert e.revises is None and e.supports == () and e.context == 0
    assert e.run == any_bb.run_id
    assert any_bb.get(e.id) == e
    assert any_bb.get(e) == e
    assert e.id in any_bb and len(any_bb) == 1


def test_post_ids_increase_from_one(bb: Blackboard) -> None:
    """Entry ids are handed out 1, 2, 3... within a run."""
    ids = [bb.post("s", i).id for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]


def test_post_logs_a_posted_event(bb: Blackboard) -> None:
    """Each post appends one 'posted' event naming the entry and its source."""
    e = bb.post("s", 1, source="me")
    (event,) = bb.events()
    assert isinstance(event, Event)
    assert (event.seq, event.kind, event.entry, event.source, event.run) == (1, "posted", e.id, "me", bb.run_id)


def test_value_is_the_json_round_trip(bb: Blackboard) -> None:
    """The stored value is the JSON round trip of what was given (tuples become lists)."""
    e = bb.post("s", {"t": (1, 2), "n": None})
    assert e.value == {"t": [1, 2], "n": None}
    assert bb.sql("SELECT value FROM entries").column("value").to_pylist() == ['{"t":[1,2],"n":null}']


def test_supports_accept_ids_and_entries(bb: Blackboard) -> None:
    """supports may name entries by id or by Entry; they are stored as ids."""
    a = bb.post("s", 1)
    b = bb.post("s", 2)
    c = bb.post("s", 3, supports=[a, b.id])
    assert c.supports == (a.id, b.id)
    assert bb.query("SELECT * FROM entries WHERE id = ?", [c.id])[0].supports == (a.id, b.id)


def test_int_confidence_is_stored_as_float(bb: Blackboard) -> None:
    """Integer confidences 0 and 1 are accepted and stored as floats."""
    assert bb.post("s", 1, confidence=1).confidence == 1.0
    zero = bb.post("s", 1, confidence=0)
    assert zero.confidence == 0.0 and type(zero.confidence) is float


# ======================================================================= find
def test_find_by_space_and_key(bb: Blackboard) -> None:
    """find() returns active entries of a space, or of one key, oldest first."""
    a = bb.post("cell", 1, key="r1")
    b = bb.post("cell", 2, key="r2")
    c = bb.post("cell", 3, key="r1")
    bb.post("other", 4, key="r1")
    assert bb.find("cell") == [a, b, c]
    assert bb.find("cell", "r1") == [a, c]
    assert bb.find("cell", "missing") == []
    assert bb.find("nowhere") == []


def test_find_filters_by_status(bb: Blackboard) -> None:
    """find() shows active entries by default, any status with status=None, or one status."""
    a = bb.post("s", 1, key="k")
    b = bb.post("s", 2, key="k")
    bb.retract(a)
    assert bb.find("s", "k") == [b]
    assert [e.id for e in bb.find("s", "k", status=None)] == [a.id, b.id]
    assert [e.id for e in bb.find("s", status=Status.RETRACTED)] == [a.id]


def test_entries_and_slot(bb: Blackboard) -> None:
    """entries() lists the run's entries (by space / status), slot() every version of a key."""
    a = bb.post("s", 1, key="k")
    b = bb.revise(a, value=2)
    c = bb.post("t", 3)
    assert bb.entries() == [b, c]
    assert bb.entries("s") == [b]
    assert [e.id for e in bb.entries(status=None)] == [a.id, b.id, c.id]
    assert [e.id for e in bb.slot("s", "k")] == [a.id, b.id]


def test_get_missing_raises_entry_not_found(bb: Blackboard) -> None:
    """get() of an unknown id raises EntryNotFoundError, which is also a KeyError."""
    with pytest.raises(EntryNotFoundError, match="42") as info:
        bb.get(42)
    assert isinstance(info.value, KeyError)
    assert info.value.entry_id == 42


def test_entry_facts_expose_value_fields_and_metadata(bb: Blackboard) -> None:
    """entry_facts() exposes the value's top-level keys, but metadata names always mean metadata."""
    e = bb.post("s", {"row": 3, "id": "shadowed", "value": "own"}, key="k", confidence=0.5)
    facts = entry_facts(e)
    assert facts["row"] == 3
    assert facts["id"] == e.id
    assert facts["value"] == "own"
    assert facts["confidence"] == 0.5 and facts["key"] == "k" and facts["space"] == "s"
    assert e.facts() == facts
    plain = bb.post("s", 7)
    assert entry_facts(plain)["value"] == 7


# ===================================================================== revise
def test_revise_supersedes_the_old_version_and_links_it(any_bb: Blackboard) -> None:
    """revise() keeps the old version, superseded, and the new one points to it via `revises`."""
    old = any_bb.post("hyp", {"n": 1}, key="k", confidence=0.5)
    new = any_bb.revise(old, value={"n": 2}, source="checker")
    assert new.revises == old.id and new.id != old.id
    assert (new.space, new.key, new.context) == ("hyp", "k", old.context)
    assert new.value == {"n": 2} and new.confidence == 0.5 and new.source == "checker"
    assert any_bb.get(old.id).status == Status.SUPERSEDED
    assert any_bb.get(new.id).status == Status.ACTIVE
    assert any_bb.revised_by(old.id) == new.id
    stored = {e.id: e for e in any_bb.query("SELECT * FROM entries")}
    assert stored[old.id].status == "superseded" and stored[new.id].revises == old.id


def test_revise_logs_superseded_then_revised(bb: Blackboard) -> None:
    """A revision logs 'superseded' for the old version (reason 'revised') and 'revised' for the new."""
    old = bb.post("s", 1)
    new = bb.revise(old, confidence=0.25)
    kinds = [(e.kind, e.entry) for e in bb.events()]
    assert kinds == [("posted", old.id), ("superseded", old.id), ("revised", new.id)]
    superseded = bb.events("superseded")[0]
    assert superseded.details == {"reason": "revised", "by": new.id}
    assert bb.events("revised")[0].details == {"revises": old.id}
    assert new.value == 1 and new.confidence == 0.25


def test_revise_with_unset_keeps_value_and_confidence(bb: Blackboard) -> None:
    """UNSET (the default) keeps the old value and confidence."""
    old = bb.post("s", [1, 2], confidence=0.3)
    new = bb.revise(old, value=UNSET, confidence=UNSET)
    assert (new.value, new.confidence) == ([1, 2], 0.3)


def test_revise_only_active_entries(bb: Blackboard, snapshot: Any) -> None:
    """Revising a superseded or retracted entry is refused and writes nothing."""
    old = bb.post("s", 1)
    bb.revise(old, value=2)
    gone = bb.post("s", 3)
    bb.retract(gone)
    before = snapshot(bb)
    for target in (old, gone):
        with pytest.raises(ValidationError) as info:
            bb.revise(target, value=9)
        assert info.value.field == "entry"
    assert snapshot(bb) == before


def test_revise_missing_entry(bb: Blackboard) -> None:
    """Revising an unknown id raises EntryNotFoundError."""
    with pytest.raises(EntryNotFoundError):
        bb.revise(99, value=1)


def test_revise_keeps_supports_unless_given(bb: Blackboard) -> None:
    """A revision keeps the old supports by default and takes new ones when given."""
    a = bb.post("s", 1)
    b = bb.post("s", 2)
    old = bb.post("s", 3, supports=[a])
    kept = bb.revise(old, value=4)
    assert kept.supports == (a.id,)
    changed = bb.revise(kept, value=5, supports=[b])
    assert changed.supports == (b.id,)


# ==================================================================== retract
def test_retract_keeps_the_entry_with_status_retracted(any_bb: Blackboard) -> None:
    """retract() keeps the entry, marks it retracted, and logs the reason."""
    e = any_bb.post("s", 1)
    done = any_bb.retract(e, reason="disproved", source="critic")
    assert done.status == Status.RETRACTED and done.id == e.id
    assert any_bb.get(e.id).status == Status.RETRACTED
    assert e.id in any_bb and len(any_bb) == 1
    (event,) = any_bb.events("retracted")
    assert (event.entry, event.source, event.details) == (e.id, "critic", {"reason": "disproved"})
    assert any_bb.sql("SELECT status FROM entries").column("status").to_pylist() == ["retracted"]


def test_retract_twice_is_harmless(bb: Blackboard) -> None:
    """Retracting a retracted entry changes nothing and logs nothing."""
    e = bb.post("s", 1)
    bb.retract(e)
    events = bb.events()
    assert bb.retract(e).status == Status.RETRACTED
    assert bb.events() == events


def test_retract_missing_entry(bb: Blackboard) -> None:
    """Retracting an unknown id raises EntryNotFoundError."""
    with pytest.raises(EntryNotFoundError):
        bb.retract(5)


def test_supersede_and_reinstate(bb: Blackboard) -> None:
    """supersede()/reinstate() flip the status and log the reason; a revised entry cannot be reinstated."""
    e = bb.post("s", 1, key="k")
    other = bb.post("s", 2, key="k")
    lost = bb.supersede(e, reason="lost", by=other.id, details={"score": 0.1})
    assert lost.status == Status.SUPERSEDED
    assert bb.events("superseded")[-1].details == {"reason": "lost", "by": other.id, "score": 0.1}
    back = bb.reinstate(e, reason="won")
    assert back.status == Status.ACTIVE
    assert bb.events("reinstated")[-1].details == {"reason": "won"}
    new = bb.revise(other, value=3)
    with pytest.raises(ValidationError):
        bb.reinstate(other, reason="no")
    assert bb.get(new.id).active


# ======================================================================== SQL
def test_sql_returns_arrow_over_this_run(any_bb: Blackboard) -> None:
    """sql() returns a pyarrow Table; pending writes are visible (flushed first)."""
    any_bb.post("s", 1, key="a")
    any_bb.post("s", 2, key="b")
    table = any_bb.sql("SELECT key, value FROM entries ORDER BY id")
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    events = any_bb.sql("SELECT kind FROM events ORDER BY seq")
    assert events.column("kind").to_pylist() == ["posted", "posted"]
    runs = any_bb.sql("SELECT id, name, state FROM bb_run")
    assert runs.to_pylist() == [{"id": any_bb.run_id, "name": f"run-{any_bb.run_id}", "state": "open"}]


def test_sql_with_parameters(bb: Blackboard) -> None:
    """sql() and query() accept positional and named parameters."""
    bb.post("s", 1, key="a")
    bb.post("s", 2, key="b")
    assert bb.sql("SELECT key FROM entries WHERE value = ?", ["2"]).column("key").to_pylist() == ["b"]
    assert [e.key for e in bb.query("SELECT * FROM entries WHERE key = $k", {"k": "a"})] == ["a"]


def test_query_returns_typed_entries(bb: Blackboard) -> None:
    """query() turns entry rows into Entry objects equal to the live ones."""
    a = bb.post("s", {"x": [1, 2]}, key="k", confidence=0.4)
    b = bb.post("s", "text", supports=[a])
    bb.retract(a)
    got = bb.query("SELECT * FROM entries ORDER BY id")
    assert got == [bb.get(a.id), b]
    assert all(isinstance(e, Entry) for e in got)


def test_query_requires_entry_columns(bb: Blackboard) -> None:
    """query() over a result without the entry columns raises QueryError."""
    bb.post("s", 1)
    with pytest.raises(QueryError, match="lacks entry columns"):
        bb.query("SELECT id, value FROM entries")


def test_bad_sql_raises_query_error(bb: Blackboard) -> None:
    """A failing statement raises QueryError carrying DuckDB's message and the query."""
    with pytest.raises(QueryError) as info:
        bb.sql("SELEC nonsense")
    assert "SELEC nonsense" in str(info.value)
    assert info.value.query == "SELEC nonsense"
    with pytest.raises(QueryError):
        bb.sql("SELECT * FROM no_such_table")


def test_session_with_sqlmodel(bb: Blackboard) -> None:
    """session() gives a SQLModel Session where select(EntryRow) reads this file's rows."""
    a = bb.post("s", {"v": 1}, key="a", confidence=0.5)
    bb.post("s", 2, key="b")
    bb.retract(a)
    with bb.session() as session:
        rows = session.exec(select(EntryRow).where(EntryRow.run == bb.run_id).order_by(EntryRow.id)).all()
        assert [(r.id, r.key, r.status) for r in rows] == [(1, "a", "retracted"), (2, "b", "active")]
        assert json.loads(rows[0].value) == {"v": 1}
        events = session.exec(select(EventRow).where(EventRow.kind == "retracted")).all()
        assert [e.entry for e in events] == [a.id]
        (run,) = session.exec(select(RunRow).where(RunRow.id == bb.run_id)).all()
        assert run.state == "open"


def test_export_parquet_writes_readable_files(any_bb: Blackboard, tmp_path: Path) -> None:
    """export_parquet() writes entries, events, activations and run files pyarrow can read."""
    a = any_bb.post("s", {"x": 1}, key="a")
    any_bb.revise(a, value={"x": 2})
    any_bb.post("t", "hello")
    written = any_bb.export_parquet(tmp_path / "out" / "nested")
    assert set(written) == {"entries", "events", "activations", "run"}
    for path in written.values():
        assert Path(path).is_file()
    entries = pq.read_table(written["entries"])
    assert entries.num_rows == 3
    assert sorted(entries.column("id").to_pylist()) == [1, 2, 3]
    by_id = dict(zip(entries.column("id").to_pylist(), entries.column("value").to_pylist()))
    assert {i: json.loads(v) for i, v in by_id.items()} == {1: {"x": 1}, 2: {"x": 2}, 3: "hello"}
    assert dict(zip(entries.column("id").to_pylist(), entries.column("status").to_pylist()))[1] == "superseded"
    assert pq.read_table(written["events"]).num_rows == len(any_bb.events())
    assert pq.read_table(written["activations"]).num_rows == 0
    assert pq.read_table(written["run"]).column("id").to_pylist() == [any_bb.run_id]


# ===================================================================== files
def test_reopen_continues_the_run(bb_path: Path) -> None:
    """Reopening a file with run=<id> restores entries and events; new ids and seqs continue."""
    board = Blackboard(bb_path)
    a = board.post("s", {"n": 1}, key="k", confidence=0.5)
    b = board.revise(a, value={"n": 2})
    c = board.post("s", "x", supports=[b])
    board.retract(c, reason="wrong")
    run_id, entries, events = board.run_id, live_state(board), board.events()
    board.close()

    again = Blackboard(bb_path, run=run_id)
    try:
        assert again.run_id == run_id
        assert live_state(again) == entries
        assert again.events() == events
        assert again.revised_by(a.id) == b.id
        assert again.find("s", "k") == [entries[b.id]]
        d = again.post("s", 5)
        assert d.id == max(entries) + 1
        assert again.events()[-1].seq == events[-1].seq + 1
        assert again.replay() == live_state(again)
    finally:
        again.close()
    third = Blackboard(bb_path, run=run_id)
    try:
        assert len(third) == 4
        assert third.sql("SELECT count(DISTINCT id) AS n FROM entries").column("n").to_pylist() == [4]
    finally:
        third.close()


def test_reopen_by_run_name(bb_path: Path) -> None:
    """run='name' continues the newest run of that name, or starts one."""
    with Blackboard(bb_path, run="solve") as board:
        board.post("s", 1)
        first = board.run_id
    with Blackboard(bb_path, run="solve") as board:
        assert board.run_id == first and len(board) == 1
    with Blackboard(bb_path, run="other") as board:
        assert board.run_id != first and len(board) == 0 and board.run_name == "other"


def test_reopen_unknown_run_id_refused(bb_path: Path) -> None:
    """run=<id> of a run that does not exist raises ValidationError naming 'run'."""
    Blackboard(bb_path).close()
    with pytest.raises(ValidationError) as info:
        Blackboard(bb_path, run=77)
    assert info.value.field == "run"


def test_reopen_restores_declared_spaces(bb_path: Path) -> None:
    """The spaces declared for a run (with their fields) are restored when it is reopened."""
    with Blackboard(bb_path, spaces=["a", Space("b", fields={"row": int})]) as board:
        run_id = board.run_id
    with Blackboard(bb_path, run=run_id) as board:
        assert set(board.spaces) == {"a", "b"}
        assert board.spaces["b"].fields == {"row": int}
        with pytest.raises(UnknownSpaceError):
            board.post("c", 1)


def test_two_runs_in_one_file_stay_apart(bb_path: Path) -> None:
    """Two runs in one file number ids independently and each sees only its own rows."""
    with Blackboard(bb_path) as one:
        one.post("s", "first-run")
        one_id = one.run_id
    with Blackboard(bb_path) as two:
        e = two.post("s", "second-run")
        assert e.id == 1 and two.run_id != one_id
        assert [r["value"] for r in two.sql("SELECT value FROM entries").to_pylist()] == ['"second-run"']
        assert two.sql("SELECT count(*) AS n FROM bb_entry").column("n").to_pylist() == [2]
        assert sorted(two.sql("SELECT id FROM bb_run").column("id").to_pylist()) == sorted([one_id, two.run_id])
        two_id = two.run_id
    with Blackboard(bb_path, run=one_id) as one:
        assert [e.value for e in one.entries()] == ["first-run"]
    with Blackboard(bb_path, run=two_id) as two:
        assert [e.value for e in two.entries()] == ["second-run"]


def test_random_bytes_file_refused_untouched(tmp_path: Path) -> None:
    """A file of random bytes is refused with BlackboardFileError and left byte-for-byte unchanged."""
    path = tmp_path / "noise.duckdb"
    path.write_bytes(os.urandom(50_000))
    before = sha256(path)
    with pytest.raises(BlackboardFileError) as info:
        Blackboard(path)
    assert not isinstance(info.value, (NotABlackboardError, IncompatibleVersionError))
    assert str(path) in str(info.value)
    assert sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.duckdb"]


def _board_file(tmp_path: Path, n: int = 200) -> bytes:
    source = tmp_path / "source.duckdb"
    with Blackboard(source) as board:
        for i in range(n):
            board.post("s", {"i": i, "pad": "x" * 50})
    data = source.read_bytes()
    source.unlink()
    return data


def test_truncated_file_refused_untouched(tmp_path: Path) -> None:
    """A DuckDB file cut short after its header is refused with BlackboardFileError, unchanged."""
    data = _board_file(tmp_path)
    path = tmp_path / "cut.duckdb"
    path.write_bytes(data[: len(data) // 100])
    before = sha256(path)
    with pytest.raises(BlackboardFileError):
        Blackboard(path)
    assert sha256(path) == before


def test_file_truncated_in_the_middle_refused(tmp_path: Path) -> None:
    """A DuckDB blackboard truncated to half its size is refused with BlackboardFileError, unchanged."""
    data = _board_file(tmp_path)
    path = tmp_path / "half.duckdb"
    path.write_bytes(data[: len(data) // 2])
    before = sha256(path)
    try:
        with pytest.raises(BlackboardFileError):
            Blackboard(path)
    finally:
        assert sha256(path) == before


def test_file_of_another_program_refused_untouched(tmp_path: Path) -> None:
    """A DuckDB database with other tables is refused with NotABlackboardError and not modified."""
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    con.close()
    before = sha256(path)
    with pytest.raises(NotABlackboardError, match="customers"):
        Blackboard(path)
    assert sha256(path) == before
    con = duckdb.connect(str(path))
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert tables == {"customers"}


def _rewrite_meta(path: Path, name: str, value: str) -> None:
    with Blackboard(path) as board:
        board.post("s", 1)
    con = duckdb.connect(str(path))
    con.execute("UPDATE bb_meta SET value = ? WHERE name = ?", [value, name])
    con.close()


def test_incompatible_version_refused_untouched(tmp_path: Path) -> None:
    """A blackboard file whose bb_meta version is '999' raises IncompatibleVersionError, unchanged."""
    path = tmp_path / "future.duckdb"
    _rewrite_meta(path, "version", "999")
    before = sha256(path)
    with pytest.raises(IncompatibleVersionError, match="999"):
        Blackboard(path)
    assert sha256(path) == before


def test_foreign_format_name_refused_untouched(tmp_path: Path) -> None:
    """A bb_meta naming another format raises NotABlackboardError, unchanged."""
    path = tmp_path / "foreign.duckdb"
    _rewrite_meta(path, "format", "someone-else")
    before = sha256(path)
    with pytest.raises(NotABlackboardError):
        Blackboard(path)
    assert sha256(path) == before


def test_directory_path_refused(tmp_path: Path) -> None:
    """A directory is refused with BlackboardFileError (also an OSError)."""
    with pytest.raises(BlackboardFileError, match="directory") as info:
        Blackboard(tmp_path)
    assert isinstance(info.value, OSError)


def test_missing_folder_refused(tmp_path: Path) -> None:
    """A path in a folder that does not exist is refused and nothing is created."""
    target = tmp_path / "missing" / "board.duckdb"
    with pytest.raises(BlackboardFileError, match="does not exist"):
        Blackboard(target)
    assert not (tmp_path / "missing").exists()


def test_empty_duckdb_database_is_adopted(tmp_path: Path) -> None:
    """A valid DuckDB file without tables becomes a blackboard."""
    path = tmp_path / "blank.duckdb"
    duckdb.connect(str(path)).close()
    with Blackboard(path) as board:
        board.post("s", 1)
    with Blackboard(path, run=1) as board:
        assert len(board) == 1


def test_path_accepts_pathlike_and_memory_alias(tmp_path: Path) -> None:
    """Path objects and ':memory:' are accepted; path reports where the board lives."""
    with Blackboard(tmp_path / "p.duckdb") as board:
        assert board.path == str(tmp_path / "p.duckdb")
    with Blackboard(":memory:") as board:
        assert board.path == ":memory:"


# ================================================================ validation
def _invalid_posts() -> list[Any]:
    return [
        pytest.param({"value": {1, 2}}, "value", id="set-value"),
        pytest.param({"value": math.nan}, "value", id="nan-value"),
        pytest.param({"value": [1, math.inf]}, "value", id="inf-in-list"),
        pytest.param({"value": object()}, "value", id="object-value"),
        pytest.param({"value": b"bytes"}, "value", id="bytes-value"),
        pytest.param({"confidence": 1.5}, "confidence", id="confidence-high"),
        pytest.param({"confidence": -0.1}, "confidence", id="confidence-low"),
        pytest.param({"confidence": math.nan}, "confidence", id="confidence-nan"),
        pytest.param({"confidence": True}, "confidence", id="confidence-bool"),
        pytest.param({"confidence": "0.5"}, "confidence", id="confidence-str"),
        pytest.param({"confidence": None}, "confidence", id="confidence-none"),
        pytest.param({"key": 5}, "key", id="key-int"),
        pytest.param({"key": b"k"}, "key", id="key-bytes"),
        pytest.param({"supports": [99]}, "supports", id="supports-missing"),
        pytest.param({"supports": ["1"]}, "supports", id="supports-str-id"),
        pytest.param({"supports": 1}, "supports", id="supports-not-iterable"),
        pytest.param({"space": ""}, "space", id="space-empty"),
        pytest.param({"space": 3}, "space", id="space-int"),
        pytest.param({"source": ""}, "source", id="source-empty"),
        pytest.param({"context": "root"}, "context", id="context-str"),
    ]


@pytest.mark.parametrize(("change", "field"), _invalid_posts())
def test_invalid_post_names_the_field_and_writes_nothing(
    bb: Blackboard, snapshot: Any, change: dict[str, Any], field: str
) -> None:
    """An invalid post raises ValidationError naming the field; memory, log and tables are unchanged."""
    bb.post("s", 1)
    before = snapshot(bb)
    args: dict[str, Any] = {"space": "s", "value": 1} | change
    space, value = args.pop("space"), args.pop("value")
    with pytest.raises(ValidationError) as info:
        bb.post(space, value, **args)
    assert info.value.field == field
    assert field in str(info.value)
    assert snapshot(bb) == before


def test_invalid_posts_write_nothing_to_a_file(file_bb: Blackboard, bb_path: Path, snapshot: Any) -> None:
    """On a file blackboard, refused posts leave memory, log and the file's tables unchanged (also after reopening)."""
    file_bb.post("s", 1)
    before = snapshot(file_bb)
    for param in _invalid_posts():
        change, _field = param.values
        args: dict[str, Any] = {"space": "s", "value": 1} | change
        with pytest.raises(ValidationError):
            file_bb.post(args.pop("space"), args.pop("value"), **args)
    assert snapshot(file_bb) == before
    with Blackboard(bb_path, run=file_bb.run_id) as other:
        assert len(other) == 1 and len(other.events()) == 1


def test_unknown_space_refused_when_spaces_declared(snapshot: Any) -> None:
    """With declared spaces, posting elsewhere raises UnknownSpaceError (a ValidationError on 'space')."""
    with Blackboard(spaces=["hyp", Space("cell", fields={"row": int})]) as board:
        board.post("hyp", 1)
        board.post("cell", {"row": 1})
        before = snapshot(board)
        with pytest.raises(UnknownSpaceError, match="cell, hyp") as info:
            board.post("nope", 1)
        assert isinstance(info.value, ValidationError) and info.value.field == "space"
        assert snapshot(board) == before
        board.declare("nope")
        assert board.post("nope", 2).space == "nope"


def test_undeclared_blackboard_takes_any_space(bb: Blackboard) -> None:
    """Without declared spaces any non-empty space name is accepted."""
    assert bb.spaces == {}
    assert {bb.post(name, 1).space for name in ("a", "b c", "ü")} == {"a", "b c", "ü"}


def test_invalid_revise_writes_nothing(bb: Blackboard, snapshot: Any) -> None:
    """An invalid value or confidence in revise() raises ValidationError and writes nothing."""
    e = bb.post("s", 1)
    before = snapshot(bb)
    with pytest.raises(ValidationError, match="value"):
        bb.revise(e, value={1})
    with pytest.raises(ValidationError, match="confidence"):
        bb.revise(e, confidence=2.0)
    assert snapshot(bb) == before
    assert bb.get(e.id).active


def test_oversized_value_refused(bb: Blackboard, snapshot: Any) -> None:
    """A value whose JSON exceeds the size limit is refused."""
    before = snapshot(bb)
    with pytest.raises(ValidationError, match="limit"):
        bb.post("s", "x" * 1_100_000)
    assert snapshot(bb) == before


def test_too_deep_value_refused(bb: Blackboard) -> None:
    """A value nested too deeply for JSON is refused with ValidationError, not RecursionError."""
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(ValidationError):
        bb.post("s", value)
    assert len(bb) == 0


def test_huge_int_value_refused_with_validation_error(bb: Blackboard) -> None:
    """An int too large to convert to text is refused with ValidationError naming 'value', as inside a dict."""
    with pytest.raises(ValidationError, match="value"):
        bb.post("s", {"n": 10**5000})
    with pytest.raises(ValidationError, match="value"):
        bb.post("s", 10**5000)
    assert len(bb) == 0 and bb.events() == []


def test_bad_run_argument_refused() -> None:
    """run= must be an id, a name or None."""
    with pytest.raises(ValidationError):
        Blackboard(run=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Blackboard(run=True)


@pytest.mark.parametrize("where", ["value", "key", "space"])
def test_lone_surrogate_refused_at_post(where: str) -> None:
    """A string that cannot be encoded as UTF-8 is refused by post(), not left to break flush()."""
    board = Blackboard()
    bad = "bad \ud800 text"
    args: dict[str, Any] = {"space": "s", "value": 1, "key": None} | {where: bad}
    try:
        with pytest.raises(ValidationError):
            board.post(args.pop("space"), args.pop("value"), **args)
        board.flush()
        assert board.replay() == live_state(board)
    finally:
        try:
            board.close()
        except UnicodeError:
            pass


# ================================================================== transact
def test_transact_applies_all_ops(bb: Blackboard) -> None:
    """transact() applies post, revise and retract together and returns the entries written."""
    a = bb.post("s", 1, key="a")
    b = bb.post("s", 2, key="b")
    written = bb.transact(
        [
            ("post", "s", 3, "c", 0.5, None, None),
            ("revise", a.id, 10, UNSET, None),
            ("retract", b.id, "obsolete"),
        ],
        source="batch",
        default_supports=(b.id,),
    )
    assert [e.value for e in written] == [3, 10, 2]
    assert written[0].supports == (b.id,) and written[0].source == "batch"
    assert written[1].revises == a.id
    assert bb.get(b.id).status == Status.RETRACTED
    assert bb.get(a.id).status == Status.SUPERSEDED


@pytest.mark.parametrize(
    "bad_op",
    [
        ("post", "s", {1}, None, 1.0, None, None),
        ("post", "s", 1, None, 7.0, None, None),
        ("revise", 1, 1, 2.0, None),
        ("revise", 999, 1, UNSET, None),
        ("retract", 999, ""),
        ("revise", 1, 5, UNSET, None),
        ("explode", 1),
    ],
    ids=["bad-value", "bad-confidence", "revise-bad-confidence", "revise-missing", "retract-missing",
         "revise-twice", "unknown-op"],
)
def test_transact_is_all_or_nothing(bb: Blackboard, snapshot: Any, bad_op: tuple[Any, ...]) -> None:
    """If any op of a transaction is invalid, none is applied (blackboard, log and tables unchanged)."""
    a = bb.post("s", 1, key="a")
    bb.post("s", 2, key="b")
    before = snapshot(bb)
    ops = [
        ("post", "s", 3, "c", 0.5, None, None),
        ("revise", a.id, 10, UNSET, None),
        ("retract", 2, "gone"),
        bad_op,
    ]
    with pytest.raises((ValidationError, EntryNotFoundError)):
        bb.transact(ops, source="batch")
    assert snapshot(bb) == before
    assert bb.get(a.id).active and bb.get(2).active


# ==================================================================== import
def test_import_arrow_loads_many_rows(any_bb: Blackboard) -> None:
    """import_arrow() bulk-loads rows that can be counted, found, queried and replayed."""
    n = 20_000
    table = pa.table({
        "space": ["fact"] * n,
        "value": [json.dumps({"i": i}) for i in range(n)],
        "key": [f"k{i}" for i in range(n)],
        "confidence": [0.5] * n,
    })
    any_bb.post("hyp", 1)
    assert any_bb.import_arrow(table, source="loader") == n
    assert len(any_bb) == n + 1
    assert any_bb.sql("SELECT count(*) AS c FROM entries WHERE space = 'fact'").column("c").to_pylist() == [n]
    (found,) = any_bb.find("fact", "k123")
    assert found.value == {"i": 123} and found.source == "loader" and found.confidence == 0.5
    assert any_bb.get(found.id) == found
    assert any_bb.events("imported")[0].details == {"count": n, "first": 2, "last": n + 1}
    later = any_bb.post("hyp", 2)
    assert later.id == n + 2
    replayed = any_bb.replay()
    assert len(replayed) == n + 2
    assert replayed[found.id] == found


def test_import_accepts_a_dict_of_columns(bb: Blackboard) -> None:
    """A dict of columns is accepted; missing key/confidence default to None/1.0."""
    assert bb.import_arrow({"space": ["a", "a"], "value": ["1", '"two"']}) == 2
    got = bb.query("SELECT * FROM entries ORDER BY id")
    assert [(e.value, e.key, e.confidence) for e in got] == [(1, None, 1.0), ("two", None, 1.0)]


def test_import_of_zero_rows(bb: Blackboard) -> None:
    """An empty table imports nothing and logs nothing."""
    assert bb.import_arrow({"space": pa.array([], pa.string()), "value": pa.array([], pa.string())}) == 0
    assert len(bb) == 0 and bb.events() == []


def test_imported_entries_survive_reopen(bb_path: Path) -> None:
    """Imported entries are counted and found again after reopening the file."""
    with Blackboard(bb_path) as board:
        board.import_arrow({"space": ["a"] * 3, "value": ["1", "2", "3"], "key": ["x", "y", "z"]})
        board.post("b", 4)
        run_id = board.run_id
    with Blackboard(bb_path, run=run_id) as board:
        assert len(board) == 4
        assert [e.value for e in board.find("a", "y")] == [2]
        assert board.post("b", 5).id == 5


_BAD_IMPORTS = [
    pytest.param({"space": ["a", None], "value": ["1", "2"]}, "space", id="null-space"),
    pytest.param({"space": ["a", ""], "value": ["1", "2"]}, "space", id="empty-space"),
    pytest.param({"space": ["a", "a"], "value": ["1", "{oops"]}, "value", id="bad-json"),
    pytest.param({"space": ["a"], "value": ["1"], "confidence": [1.5]}, "confidence", id="confidence-high"),
    pytest.param({"space": ["a"], "value": ["1"], "confidence": [math.nan]}, "confidence", id="confidence-nan"),
    pytest.param({"space": ["zzz"], "value": ["1"]}, "space", id="undeclared-space"),
]
_BAD_TABLES = [
    pytest.param({"value": ["1"]}, "space", id="no-space-column"),
    pytest.param({"space": ["a"]}, "value", id="no-value-column"),
    pytest.param({"space": ["a"], "value": ["1"], "extra": [1]}, "table", id="extra-column"),
    pytest.param({"space": ["a", "b"], "value": ["1"]}, "table", id="ragged-columns"),
]


def _committed(path: Path, run_id: int) -> tuple[Any, ...]:
    """What the file holds for a run, read through a second handle."""
    with Blackboard(path, run=run_id) as other:
        counts = other.sql(
            "SELECT (SELECT count(*) FROM bb_entry), (SELECT count(*) FROM bb_event)"
        ).to_pylist()[0]
        return tuple(counts.values()), tuple(other.entries(status=None)), tuple(other.events())


@pytest.mark.parametrize(("columns", "field"), _BAD_IMPORTS + _BAD_TABLES)
def test_refused_import_writes_nothing(bb_path: Path, columns: dict[str, Any], field: str) -> None:
    """An import with any bad row (or bad columns) is refused and writes nothing, in memory or in the file."""
    with Blackboard(bb_path, spaces=["a", "b"]) as board:
        board.post("a", 0)
        board.flush()
        memory = (len(board), board.events(), board.entries(status=None))
        stored = _committed(bb_path, board.run_id)
        with pytest.raises(Exception):  # noqa: B017,PT011 - the type is checked in the next tests
            board.import_arrow(columns)
        assert (len(board), board.events(), board.entries(status=None)) == memory
        assert _committed(bb_path, board.run_id) == stored
        board.post("a", 1)
        assert board.replay() == live_state(board)


@pytest.mark.parametrize(("columns", "field"), _BAD_TABLES)
def test_bad_import_columns_raise_validation_error(columns: dict[str, Any], field: str) -> None:
    """Missing, unexpected or ragged columns raise ValidationError naming the problem."""
    with Blackboard(spaces=["a", "b"]) as board:
        with pytest.raises(ValidationError) as info:
            board.import_arrow(columns)
        assert info.value.field == field


@pytest.mark.parametrize(("columns", "field"), _BAD_IMPORTS)
def test_bad_import_rows_raise_validation_error(columns: dict[str, Any], field: str) -> None:
    """Rows with a bad space, value or confidence raise ValidationError naming the field."""
    with Blackboard(spaces=["a", "b"]) as board:
        with pytest.raises(ValidationError) as info:
            board.import_arrow(columns)
        assert info.value.field == field


@pytest.mark.parametrize(("columns", "field"), _BAD_IMPORTS + _BAD_TABLES)
def test_sql_works_right_after_a_refused_import(columns: dict[str, Any], field: str) -> None:
    """A refused import leaves the blackboard usable: SQL and queries work immediately afterwards."""
    with Blackboard(spaces=["a", "b"]) as board:
        board.post("a", 0)
        with pytest.raises(ValidationError):
            board.import_arrow(columns)
        assert board.sql("SELECT count(*) AS n FROM entries").column("n").to_pylist() == [1]
        assert [e.value for e in board.query("SELECT * FROM entries")] == [0]


def test_import_refuses_boolean_confidence(bb: Blackboard) -> None:
    """import_arrow applies post()'s rule that a boolean is not a confidence."""
    with pytest.raises(ValidationError):
        bb.import_arrow({"space": ["a"], "value": ["1"], "confidence": [True]})


def test_find_with_imported_entries_is_oldest_first(bb: Blackboard) -> None:
    """find() returns posted and imported entries together, oldest (lowest id) first."""
    bb.post("a", 1)
    bb.import_arrow({"space": ["a"], "value": ["2"]})
    bb.post("a", 3)
    assert [e.value for e in bb.find("a")] == [1, 2, 3]


def test_imported_entry_can_support_a_post(bb: Blackboard) -> None:
    """An imported entry can be named in supports, as any entry of the run."""
    bb.import_arrow({"space": ["a"], "value": ["1"]})
    assert bb.post("a", 2, supports=[1]).supports == (1,)


def test_imported_entry_can_be_retracted_and_revised(bb: Blackboard, snapshot: Any) -> None:
    """Imported entries can be retracted and revised like posted ones."""
    bb.import_arrow({"space": ["a", "a"], "value": ["1", "2"], "key": ["x", "y"]})
    assert bb.retract(1).status == Status.RETRACTED
    assert bb.revise(2, value=3).revises == 2
    replayed = bb.replay()
    assert (replayed[1].status, replayed[2].status) == ("retracted", "superseded")


# ==================================================================== closed
_CLOSED_CALLS = [
    pytest.param(lambda b: b.post("s", 1), id="post"),
    pytest.param(lambda b: b.revise(1, value=2), id="revise"),
    pytest.param(lambda b: b.retract(1), id="retract"),
    pytest.param(lambda b: b.transact([], source="x"), id="transact"),
    pytest.param(lambda b: b.find("s"), id="find"),
    pytest.param(lambda b: b.entries(), id="entries"),
    pytest.param(lambda b: b.sql("SELECT 1"), id="sql"),
    pytest.param(lambda b: b.query("SELECT * FROM entries"), id="query"),
    pytest.param(lambda b: b.flush(), id="flush"),
    pytest.param(lambda b: b.replay(), id="replay"),
    pytest.param(lambda b: b.log("note"), id="log"),
    pytest.param(lambda b: b.import_arrow({"space": ["s"], "value": ["1"]}), id="import"),
    pytest.param(lambda b: b.export_parquet("never-written"), id="export"),
    pytest.param(lambda b: b.session().__enter__(), id="session"),
]


@pytest.mark.parametrize("call", _CLOSED_CALLS)
def test_closed_blackboard_raises(call: Any, tmp_path: Path) -> None:
    """Using a closed blackboard raises ClosedBlackboardError (a RuntimeError)."""
    board = Blackboard(tmp_path / "c.duckdb")
    board.post("s", 0)
    board.close()
    with pytest.raises(ClosedBlackboardError) as info:
        call(board)
    assert isinstance(info.value, RuntimeError)


def test_close_twice_and_context_manager(tmp_path: Path) -> None:
    """close() flushes and may be called twice; `with` closes; repr says closed."""
    with Blackboard(tmp_path / "c.duckdb") as board:
        board.post("s", 1)
    board.close()
    assert "closed" in repr(board)
    with Blackboard(tmp_path / "c.duckdb", run=board.run_id) as again:
        assert len(again) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda b: b.get(1), id="get"),
        pytest.param(lambda b: b.events(), id="events"),
        pytest.param(lambda b: b.supersede(1, reason="x"), id="supersede"),
    ],
)
def test_closed_blackboard_refuses_every_call(call: Any) -> None:
    """Reads and status changes on a closed blackboard raise ClosedBlackboardError too."""
    board = Blackboard()
    board.post("s", 0)
    board.close()
    with pytest.raises(ClosedBlackboardError):
        call(board)


# ==================================================================== replay
def test_replay_equals_live_statuses(any_bb: Blackboard) -> None:
    """replay() rebuilds every entry with its current status from the event log alone."""
    a = any_bb.post("s", 1, key="k")
    b = any_bb.revise(a, value=2)
    c = any_bb.post("s", 3, key="k")
    any_bb.supersede(c, reason="lost")
    d = any_bb.post("t", 4)
    any_bb.retract(d)
    any_bb.reinstate(c, reason="won")
    replayed = any_bb.replay()
    assert replayed == live_state(any_bb)
    assert {e.id: e.status for e in replayed.values()} == {
        a.id: "superseded", b.id: "active", c.id: "active", d.id: "retracted",
    }


def test_replay_at_a_cycle(bb: Blackboard) -> None:
    """replay(cycle) shows the blackboard as it was at the end of that cycle."""
    a = bb.post("s", 1)
    at_zero = live_state(bb)
    bb.cycle = 1
    bb.revise(a, value=2)
    bb.post("s", 3)
    at_one = live_state(bb)
    bb.cycle = 2
    bb.retract(a.id + 1)
    assert bb.replay(0) == at_zero
    assert bb.replay(1) == at_one
    assert bb.replay(2) == bb.replay() == live_state(bb)


# ================================================================ properties
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("post"), space_names, json_values, keys, confidences),
        st.tuples(st.just("revise"), st.integers(0, 50), json_values, confidences | st.just(UNSET)),
        st.tuples(st.just("retract"), st.integers(0, 50)),
        st.tuples(st.just("cycle")),
        st.tuples(st.just("flush")),
    ),
    max_size=25,
)


@pytest.fixture(scope="module")
def runs_file(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A blackboard file kept open, so each example can start a new run in it cheaply."""
    path = tmp_path_factory.mktemp("runs") / "runs.duckdb"
    keeper = Blackboard(path)
    yield path
    keeper.close()


@PROPERTY
@given(ops=_OPS)
def test_replay_rebuilds_any_history(runs_file: Path, ops: list[tuple[Any, ...]]) -> None:
    """For any sequence of post/revise/retract, replay() (now and at each cycle) equals the live board."""
    board = Blackboard(runs_file)
    try:
        snapshots: dict[int, dict[int, Entry]] = {}
        for op in ops:
            kind = op[0]
            ids = sorted(live_state(board))
            if kind == "post":
                _, space, value, key, conf = op
                e = board.post(space, value, key=key, confidence=conf)
                assert board.get(e.id) == e
            elif kind == "revise" and ids:
                target = board.get(ids[op[1] % len(ids)])
                if target.active:
                    new = board.revise(target, value=op[2], confidence=op[3])
                    assert new.revises == target.id and board.get(target.id).status == "superseded"
                else:
                    with pytest.raises(ValidationError):
                        board.revise(target, value=op[2], confidence=op[3])
            elif kind == "retract" and ids:
                done = board.retract(ids[op[1] % len(ids)])
                assert done.status == "retracted"
            elif kind == "cycle":
                snapshots[board.cycle] = live_state(board)
                board.cycle += 1
            elif kind == "flush":
                board.flush()
        snapshots[board.cycle] = live_state(board)
        assert board.replay() == live_state(board)
        for cycle, expected in snapshots.items():
            assert board.replay(cycle) == expected
        stored = {e.id: e for e in board.query("SELECT * FROM entries")}
        assert stored == live_state(board)
        assert board.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [len(board.events())]
    finally:
        board.close()


@pytest.fixture(scope="module")
def shared_board() -> Any:
    """One blackboard shared by a property test whose examples must never write."""
    board = Blackboard()
    board.post("s", "seed", key="k")
    yield board
    board.close()


_INVALID_POSTS = st.one_of(
    st.fixed_dictionaries({"value": invalid_values}),
    st.fixed_dictionaries({"value": json_values, "confidence": invalid_confidences}),
    st.fixed_dictionaries({"value": json_values, "key": invalid_keys}),
    st.fixed_dictionaries({"value": json_values, "supports": st.lists(st.integers(10**7, 10**9), min_size=1, max_size=3)}),
)


@PROPERTY
@given(bad=_INVALID_POSTS, via=st.sampled_from(["post", "revise", "transact"]))
def test_invalid_values_never_reach_the_store(shared_board: Blackboard, bad: dict[str, Any], via: str) -> None:
    """Invalid values, confidences, keys or supports are refused by post/revise/transact and never stored."""
    board = shared_board
    before = state_of(board)
    args = dict(bad)
    value = args.pop("value")
    with pytest.raises(ValidationError):
        if via == "revise" and "key" not in args:
            board.revise(1, value=value, confidence=args.get("confidence", UNSET), supports=args.get("supports"))
        elif via == "transact":
            board.transact(
                [("post", "s", 1, None, 1.0, None, None),
                 ("revise", 1, 2, UNSET, None),
                 ("post", "s", value, args.get("key"), args.get("confidence", 1.0), args.get("supports", ()), None)],
                source="prop",
            )
        else:
            board.post("s", value, **args)
    assert state_of(board) == before
    assert board.get(1).active


@PROPERTY
@given(value=json_values, key=keys, conf=confidences)
def test_valid_values_round_trip_through_sql(shared_board: Blackboard, value: Any, key: Any, conf: float) -> None:
    """Any JSON value posted reads back equal from memory, from SQL and from replay."""
    board = shared_board
    e = board.post("s", value, key=key, confidence=conf)
    assert e.value == value
    (stored,) = board.query("SELECT * FROM entries WHERE id = ?", [e.id])
    assert stored == e
    board.retract(e)


def test_transact_touching_an_imported_entry_is_atomic(bb: Blackboard) -> None:
    """A transaction retracting an imported entry either applies fully or leaves the board unchanged."""
    bb.import_arrow({"space": ["a"], "value": ["1"]})
    before = (len(bb), bb.events(), bb.entries(status=None))
    try:
        bb.transact([("post", "a", 5, None, 1.0, None, None), ("retract", 1, "")], source="u")
    except BlackboardError:
        assert (len(bb), bb.events(), bb.entries(status=None)) == before
    else:
        assert bb.get(1).status == Status.RETRACTED
        assert [e.value for e in bb.entries("a")] == [5]


def test_len_counts_imported_entries_once(bb: Blackboard) -> None:
    """len() counts each entry once, also after imported entries were read or changed."""
    bb.import_arrow({"space": ["a", "a"], "value": ["1", "2"]})
    bb.post("a", 3)
    assert len(bb) == 3
    bb.get(1)
    bb.retract(2)
    assert len(bb) == 3
    assert bb.sql("SELECT count(*) AS n FROM entries").column("n").to_pylist() == [3]


# ================================================================== read-only
def _written(path: Path) -> int:
    with Blackboard(path, spaces=["s", "t"]) as board:
        first = board.post("s", {"n": 1}, key="k", confidence=0.4)
        board.revise(first, value={"n": 2}, confidence=0.6)
        board.post("t", "other")
        return board.run_id


def test_read_only_reads_everything_and_changes_nothing(tmp_path: Path) -> None:
    """read_only=True opens the newest run: reads, SQL, display and replay work; the file's bytes stay the same."""
    from blackboard import ReadOnlyError

    path = tmp_path / "ro.duckdb"
    run = _written(path)
    before = sha256(path)
    with Blackboard(path, read_only=True) as board:
        assert board.read_only and board.run_id == run
        assert [e.value for e in board.entries("s")] == [{"n": 2}]
        assert board.sql("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 3}]
        assert "space" in str(board) and board.space("s").best.value == {"n": 2}
        assert len(board.replay()) == 3
        for change in (lambda: board.post("s", 1), lambda: board.revise(1, value=3), lambda: board.retract(1),
                       lambda: board.declare("u"), lambda: board.open_context(), lambda: board.log("note"),
                       lambda: board.import_arrow({"space": ["s"], "value": ["1"]}),
                       lambda: board.flush(state="finished"), lambda: board.mark(state="x")):
            with pytest.raises(ReadOnlyError, match="read-only"):
                change()
        assert [e.value for e in board.entries("s")] == [{"n": 2}] and len(board.events()) == 4
        board.flush()  # nothing to write: harmless
    assert sha256(path) == before
    assert not Path(str(path) + ".wal").exists()


def test_read_only_refusals(tmp_path: Path) -> None:
    """read_only refuses memory, a missing file (creating none), an unknown run, and a controller."""
    from controller import ConfigurationError, Controller

    with pytest.raises(BlackboardFileError, match="in-memory"):
        Blackboard(read_only=True)
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(BlackboardFileError, match="no such file"):
        Blackboard(missing, read_only=True)
    assert not missing.exists()
    path = tmp_path / "ro.duckdb"
    _written(path)
    with pytest.raises(ValidationError, match="no run with id 9"):
        Blackboard(path, run=9, read_only=True)
    with pytest.raises(ValidationError, match="no run named"):
        Blackboard(path, run="nameless", read_only=True)
    with Blackboard(path, read_only=True) as board, pytest.raises(ConfigurationError, match="read-only"):
        Controller(board)
    with pytest.raises(ValidationError, match="read_only"):
        Blackboard(path, read_only="yes")  # type: ignore[arg-type]


def test_read_only_does_not_upgrade_an_older_file(tmp_path: Path) -> None:
    """A format-1 file opened read-only is read as it is and stays format 1."""
    path = tmp_path / "v1.duckdb"
    _written(path)
    as_format_1(path)
    with Blackboard(path, read_only=True) as board:
        assert board.get(1).value == {"n": 1}
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM bb_meta WHERE name = 'version'").fetchone() == ("1",)
    con.close()


def test_an_empty_duckdb_file_has_no_runs_and_stays_empty(tmp_path: Path) -> None:
    """A DuckDB file a killed process created but never initialised: read_runs() says no runs, read_only refuses, nothing is written."""
    from blackboard import read_runs

    path = tmp_path / "born-dead.duckdb"
    duckdb.connect(str(path)).close()
    before = sha256(path)
    assert read_runs(path) == []
    with pytest.raises(NotABlackboardError, match="never initialised"):
        Blackboard(path, read_only=True)
    assert sha256(path) == before


ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_schema_is_what_the_models_define() -> None:
    """blackboard/_schema.py (what the store creates and checks) is what the SQLModel classes generate."""
    from blackboard import _models

    shipped = (ROOT / "blackboard" / "_schema.py").read_text(encoding="utf-8")
    assert shipped == _models.schema_text(), "the models changed: run python -m blackboard._models"


def test_opening_a_blackboard_imports_no_sqlalchemy(tmp_path: Path) -> None:
    """Creating, filling and reopening a file needs neither SQLAlchemy nor SQLModel (a quarter second of imports)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from blackboard import Blackboard; "
            f"bb = Blackboard({str(tmp_path / 'f.duckdb')!r}); bb.post('x', 1); bb.close(); "
            f"Blackboard({str(tmp_path / 'f.duckdb')!r}, read_only=True).close(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
