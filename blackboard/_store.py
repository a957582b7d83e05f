"""The blackboard store: a DuckDB file (or memory) with a write-behind working set.

Why a working set in memory: every DuckDB statement from Python costs about
a millisecond, whatever its size, while a controller must apply a
contribution in microseconds. So the store keeps the current run's entries,
slot index and event log in Python, and writes them to DuckDB in batches
(one Arrow table per table) when :meth:`Blackboard.flush` is called: by the
controller according to its durability setting, before any SQL query, and on
close. A flush is one transaction, so the file always holds a consistent
prefix of the run.

The alternative, DuckDB as the only copy with a statement per write, was
measured at 0.6 to 1 ms per contribution: a hundred times too slow.

Each handle works on one *run*: entries, events and activations carry the
run's id, and one file can hold many runs (a batch). Ids are per run, so runs
never clash, and the store hands them out itself as the single writer.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import _lookup as lookup
from ._chain import VerifyReport, entry_content, link, verify_connection
from ._display import escape
from ._entry import ROOT, ROOT_CONTEXT, Context, Entry, Event, Space, Status
from ._errors import (
    BlackboardError,
    BlackboardFileError,
    ClosedBlackboardError,
    EntryNotFoundError,
    IncompatibleVersionError,
    NotABlackboardError,
    QueryError,
    ReadOnlyError,
    StaleEntryError,
    UnknownSpaceError,
    ValidationError,
)
from ._lookup import check_find, newest, with_status
from ._schema import COLUMNS, DDL, FORMAT_NAME, FORMAT_VERSION
from ._render import SpaceView, blackboard_html, blackboard_text
from ._review import DECISIONS, REQUESTED, Review, reviews_from
from ._sandbox import Sandbox
from ._values import (
    MAX_VALUE_BYTES,
    check_activation,
    check_confidence,
    check_key,
    check_name,
    check_source,
    check_supports,
    check_text,
    encode_value,
)

log = logging.getLogger("blackboard")

# "keep the current value"; pickles by name, so it is still UNSET in another process
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__slots__": (),
                                "__reduce__": lambda self: "UNSET"})()
_UNSET = UNSET
_new_entry = tuple.__new__
ACTIVE = Status.ACTIVE.value
PENDING_REVIEW = Status.PENDING_REVIEW.value
REJECTED = Status.REJECTED.value
SUPERSEDED = Status.SUPERSEDED.value
RETRACTED = Status.RETRACTED.value
_ENTRY_COLUMNS = COLUMNS["bb_entry"]
_EVENT_COLUMNS = COLUMNS["bb_event"]
_ACTIVATION_COLUMNS = COLUMNS["bb_activation"]

_ENTRY_SCHEMA = pa.schema(
    [
        ("run", pa.int32()),
        ("id", pa.int64()),
        ("space", pa.string()),
        ("key", pa.string()),
        ("value", pa.string()),
        ("confidence", pa.float64()),
        ("status", pa.string()),
        ("source", pa.string()),
        ("cycle", pa.int32()),
        ("context", pa.int32()),
        ("supports", pa.string()),
        ("revises", pa.int64()),
    ]
)
_EVENT_SCHEMA = pa.schema(
    [
        ("run", pa.int32()),
        ("seq", pa.int64()),
        ("cycle", pa.int32()),
        ("kind", pa.string()),
        ("entry", pa.int64()),
        ("source", pa.string()),
        ("activation", pa.int64()),
        ("details", pa.string()),
        ("hash", pa.string()),
    ]
)
_ACTIVATION_SCHEMA = pa.schema(
    [
        ("run", pa.int32()),
        ("id", pa.int64()),
        ("source", pa.string()),
        ("triggers", pa.string()),
        ("rating", pa.float64()),
        ("state", pa.string()),
        ("attempts", pa.int32()),
        ("error", pa.string()),
        ("queued_cycle", pa.int32()),
        ("cycle", pa.int32()),
        ("seconds", pa.float64()),
        ("produced", pa.string()),
        ("started", pa.float64()),
    ]
)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _connect(path: str | None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open ``path`` (None: memory), refusing files that are not our blackboards."""
    if path is not None and (not isinstance(path, str) or "\x00" in path or not path.isprintable()
                             or not _encodable(path)):
        raise BlackboardFileError(repr(path), "not a usable file name")
    if path is None:
        if read_only:
            raise BlackboardFileError(":memory:", "an in-memory blackboard cannot be opened read-only: give a file")
        con = duckdb.connect(":memory:")
        _initialise(con)
        return con
    p = Path(path)
    if p.exists() and not p.is_file():
        raise BlackboardFileError(path, "it is a directory, not a database file")
    if read_only and not p.exists():
        raise BlackboardFileError(path, "no such file")
    if read_only and p.stat().st_size == 0:
        raise NotABlackboardError(path, "it is empty, not a blackboard")
    if not p.exists():
        if not p.parent.exists():
            raise BlackboardFileError(path, f"the folder {p.parent} does not exist")
        con = _duckdb_connect(_creating(path))
        _initialise(con, commit=False)  # committed with the first run's row: see _publish
        return con
    _check_magic(p)
    size, had_wal = p.stat().st_size, Path(path + ".wal").exists()
    con = _duckdb_connect(path, read_only)
    try:
        if not had_wal:
            _check_size(con, path, size)
        _check_format(con, path, upgrade=not read_only)
    except BaseException:
        con.close()
        raise
    return con


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_magic(p: Path) -> None:
    """A non-empty file must start like a DuckDB database (b'DUCK' at offset 8);
    DuckDB itself would open a .json or .csv file as an empty in-memory database."""
    try:
        with p.open("rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise BlackboardFileError(str(p), f"cannot read it ({exc.strerror or exc})") from None
    if head and head[8:12] != b"DUCK":
        raise BlackboardFileError(str(p), "not a DuckDB database (its header is not DuckDB's); it was not modified")


def _duckdb_connect(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.Error as exc:
        if read_only and "different configuration" in str(exc):
            # this process has the file open for writing: DuckDB allows one
            # configuration per file and process, so read through that one
            # (nothing here writes: read-only blackboards refuse every change)
            return _duckdb_connect(path)
        if not read_only and "different configuration" in str(exc):
            raise BlackboardFileError(
                path, "this process has it open read-only (Blackboard(..., read_only=True) or a read-only "
                      "duckdb connection): close that first to open it for writing") from None
        message = str(exc).splitlines()[0]
        if "lock" in message.lower() or "different configuration" in message.lower():
            raise BlackboardFileError(
                path, f"it is open in another process ({message})"
            ) from None
        raise BlackboardFileError(
            path, f"not a readable DuckDB database, or corrupted ({message})"
        ) from None


class _NeverInitialised(NotABlackboardError):
    """An empty DuckDB file, as a process killed while creating a blackboard leaves it."""


_HEADER_BYTES = 3 * 4096  # DuckDB's main header and its two database headers


def _check_size(con: duckdb.DuckDBPyConnection, path: str, size: int) -> None:
    """A file must have room for every block in use (without a pending WAL,
    which can make a sound file look short): a file cut in its last blocks
    opens in DuckDB, and fails only when those blocks are read.

    A sound file is its headers and whole blocks, at least as many as are in
    use (``used_blocks``, not ``total_blocks``: after a checkpoint DuckDB may
    trim free blocks off the end of the file while still counting them)."""
    try:
        row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    except duckdb.Error as exc:
        raise BlackboardFileError(path, f"cannot read its size ({str(exc).splitlines()[0]})") from None
    if row is None:
        return
    block, used = int(row[0]), int(row[1])
    expected = _HEADER_BYTES + block * used
    if size < expected or (size - _HEADER_BYTES) % block:  # DuckDB grows and trims files by whole blocks
        raise BlackboardFileError(
            path, f"it is cut short ({size:,} bytes: not whole {block:,}-byte blocks, or fewer than the "
                  f"{used} in use); it was not modified")


def _check_format(con: duckdb.DuckDBPyConnection, path: str, *, upgrade: bool = True) -> None:
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    except duckdb.Error as exc:
        raise BlackboardFileError(path, f"cannot read the catalogue ({exc})") from None
    if "bb_meta" not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:5])
            raise NotABlackboardError(
                path, f"it is a DuckDB database of another program (tables: {shown})"
            )
        others = _user_objects(con)
        if others:
            raise NotABlackboardError(path, f"it is a DuckDB database of another program (it holds {others})")
        if not upgrade:  # a process that died as it created the file leaves such a one
            raise _NeverInitialised(path, "it is an empty DuckDB database: a blackboard never initialised")
        _initialise(con)
        return
    try:
        meta = dict(con.execute("SELECT name, value FROM bb_meta").fetchall())
    except duckdb.Error as exc:
        raise BlackboardFileError(path, f"cannot read its format marker, it may be corrupted ({str(exc).splitlines()[0]})") from None
    if meta.get("format") != FORMAT_NAME:
        raise NotABlackboardError(path, f"its bb_meta names format {meta.get('format')!r}")
    version = meta.get("version")
    if version in _MIGRATIONS:
        if upgrade:
            _migrate(con, path, version)
        version = str(FORMAT_VERSION)  # read as it is: the reads need no upgrade
    if version != str(FORMAT_VERSION):
        raise IncompatibleVersionError(
            path,
            f"it was written in blackboard format version {version}, "
            f"this program reads version {FORMAT_VERSION}",
        )
    missing = set(COLUMNS) - tables
    if missing:
        raise BlackboardFileError(path, f"tables missing: {', '.join(sorted(missing))}")



# Each older format this program can bring up to date, and the statements
# that do it (run in one transaction, so a failure leaves the file as it was).
_MIGRATIONS: dict[str, tuple[str, ...]] = {
    "1": ("ALTER TABLE bb_activation ADD COLUMN started DOUBLE",),
}


def _migrate(con: duckdb.DuckDBPyConnection, path: str, version: str) -> None:
    """Upgrade a file written in an older format, in place and atomically."""
    try:
        con.begin()
        for statement in _MIGRATIONS[version]:
            con.execute(statement)
        con.execute("UPDATE bb_meta SET value = ? WHERE name = 'version'", [str(FORMAT_VERSION)])
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        raise BlackboardFileError(
            path, f"cannot upgrade it from format version {version} ({str(exc).splitlines()[0]}); it was not modified"
        ) from None
    log.info("upgraded %s from blackboard format version %s to %s", path, version, FORMAT_VERSION)


def _user_objects(con: duckdb.DuckDBPyConnection) -> str:
    """Views, sequences, macros, schemas or types someone else put in the file."""
    checks = (
        ("views", "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND NOT temporary"),
        ("sequences", "SELECT count(*) FROM duckdb_sequences() WHERE NOT temporary"),
        ("macros", "SELECT count(*) FROM duckdb_functions() WHERE NOT internal AND function_type LIKE '%macro%' AND database_name <> 'temp'"),
        ("schemas", "SELECT count(*) FROM duckdb_schemas() WHERE NOT internal AND schema_name <> 'main'"),
        ("types", "SELECT count(*) FROM duckdb_types() WHERE NOT internal AND database_name <> 'temp'"),
    )
    found = []
    for what, query in checks:
        try:
            (n,) = con.execute(query).fetchall()[0]
        except duckdb.Error:
            continue
        if n:
            found.append(f"{n} {what}")
    return ", ".join(found)


def _initialise(con: duckdb.DuckDBPyConnection, *, commit: bool = True) -> None:
    """Create the tables; ``commit=False`` leaves the transaction open for the first run's row."""
    con.begin()
    con.execute(";\n".join(DDL))  # one statement: written from the models (see _schema)
    con.executemany(
        "INSERT INTO bb_meta VALUES (?, ?)",
        [["format", FORMAT_NAME], ["version", str(FORMAT_VERSION)]],
    )
    if commit:
        con.commit()


def _creating(path: str) -> str:
    """Where a new blackboard file is built before it appears under its name (same folder)."""
    p = Path(path)
    return str(p.with_name(f".{p.name}.{os.getpid()}.creating"))


def _publish(con: duckdb.DuckDBPyConnection, path: str) -> duckdb.DuckDBPyConnection:
    """Give a new file its name once its schema and first run are committed.

    A new blackboard is built under a temporary name in the same folder, its
    tables, format marker and first run (with the problem) committed in one
    transaction, then linked to its name: a process killed at any moment
    leaves either no file or a file holding a run that ``resume`` can finish,
    never a file with no tables or no run. Linking (not renaming) refuses to
    replace a file another process created meanwhile.
    """
    building = _creating(path)
    con.commit()
    con.close()
    try:
        if Path(building + ".wal").exists():  # a clean close checkpoints: kept for safety
            os.replace(building + ".wal", path + ".wal")
        try:
            os.link(building, path)
        except FileExistsError:
            raise BlackboardFileError(path, "another process created it at the same moment; "
                                            "open it again to add a run to it") from None
        except OSError:  # a file system without hard links: a rename, atomic too
            os.rename(building, path)
    finally:
        Path(building).unlink(missing_ok=True)
    return _duckdb_connect(path)


def _row_to_entry(row: Mapping[str, Any]) -> Entry:
    return Entry(
        row["id"],
        row["space"],
        row["key"],
        json.loads(row["value"]),
        row["confidence"],
        row["status"],
        row["source"],
        row["cycle"],
        row["context"],
        tuple(json.loads(row["supports"] or "[]")),
        row["revises"],
        row["run"],
    )


class Blackboard:
    """A shared blackboard on DuckDB: entries in named spaces, and their history.

    ``Blackboard()`` lives in memory; ``Blackboard("run.duckdb")`` lives in a
    file, which is created, or reopened and continued. ``spaces`` declares the
    spaces (names or :class:`Space`); once declared, posting elsewhere is an
    error. ``run`` picks the run to work on: ``None`` starts a new one, an
    ``int`` continues that run, a ``str`` continues the newest run of that
    name or starts one.

    ``read_only=True`` opens an existing file to look at one of its runs
    (the newest when ``run`` is None) without ever writing to it: reads,
    SQL, displays, replay and explanations work; every change raises
    :class:`ReadOnlyError`. It can share the file with other readers.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        spaces: Iterable[str | Space] | None = None,
        run: int | str | None = None,
        problem: Any = None,
        read_only: bool = False,
    ) -> None:
        if not isinstance(read_only, bool):
            raise ValidationError("read_only", f"must be True or False, not {read_only!r}", read_only)
        self._read_only = read_only
        self._path = None if path in (None, ":memory:") else os.fspath(path)  # type: ignore[arg-type]
        creating = isinstance(self._path, str) and not read_only and not os.path.exists(self._path)
        self._con: duckdb.DuckDBPyConnection | None = _connect(self._path, read_only)
        self._engine: Any = None
        self._entries: dict[int, Entry] = {}
        self._json: dict[int, str] = {}
        self._slots: dict[tuple[int, str, str], list[int]] = {}
        self._by_space: dict[str, list[int]] = {}
        self._revised_by: dict[int, int] = {}
        self._events: list[Event] = []
        self._new_ids: list[int] = []
        self._dirty: set[int] = set()
        self._flushed_events = 0
        self._activation_rows: dict[int, Any] = {}
        self._flushed_activations: set[int] = set()
        self._flushed_counts = (0, 0, 0)
        self._pending_run: dict[str, Any] = {}
        self._head = ""  # the newest link of this run's hash chain
        self._contexts: dict[int, Context] = {ROOT_CONTEXT: ROOT}
        self._children: dict[int, list[int]] = {}
        self._chains: dict[int, tuple[int, ...]] = {ROOT_CONTEXT: (ROOT_CONTEXT,)}
        self._by_context: dict[int, list[int]] = {}
        self._dirty_contexts: set[int] = set()
        self._generation = 0  # bumped whenever the file's rows may change: the sandboxes re-read them
        self._sandboxes: dict[str, Sandbox] = {}

        self._imported = 0
        self._import_ranges: list[tuple[int, int]] = []
        self._materialized = 0  # imported entries also held in memory (after a get)
        self._imported_spaces: set[str] | None = set()  # None: unknown (a reopened run)
        self._next_id = 1
        self.cycle = 0
        self.cycles = 0
        self.activations = 0
        self.matched = 0  # events the controllers have matched so far
        self._spaces: dict[str, Space] = {}
        try:
            self._attach(run, problem, spaces)
            if creating:  # a new file: it appears under its name only now (see _publish)
                self._con = _publish(self._con, self._path)
            self._create_views()
        except BlackboardError:
            self._abandon(creating)
            raise
        except (duckdb.Error, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            self._abandon(creating)
            raise BlackboardFileError(self.path, f"its run could not be read; the file may be damaged "
                                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        except BaseException:
            self._abandon(creating)
            raise

    def _abandon(self, creating: bool) -> None:
        """Close after a failed open; a file being created is removed (it never got its name)."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if creating and self._path is not None:
            Path(_creating(self._path)).unlink(missing_ok=True)

    # ------------------------------------------------------------------ runs
    def _attach(self, run: int | str | None, problem: Any, spaces: Any) -> None:
        con = self._live()
        row = None
        if isinstance(run, bool) or not isinstance(run, (int, str, type(None))):
            raise ValidationError("run", f"must be an id, a name or None, not {run!r}", run)
        if run is None and self._read_only:  # look at the newest run; never start one
            (newest,) = _one(con.execute("SELECT max(id) FROM bb_run"))  # type: ignore[misc]
            if newest is None:
                raise ValidationError("run", f"{self.path} holds no run to look at", run)
            run = int(newest)
        if isinstance(run, int):
            row = _one(con.execute(
                "SELECT id, name, config, state, cycles, activations, matched, head, problem, result FROM bb_run WHERE id = ?",
                [run],
            ))
            if row is None:
                raise ValidationError("run", f"no run with id {run} in {self.path}", run)
        elif isinstance(run, str):
            row = _one(con.execute(
                "SELECT id, name, config, state, cycles, activations, matched, head, problem, result FROM bb_run "
                "WHERE name = ? ORDER BY id DESC LIMIT 1",
                [run],
            ))
        if spaces is not None and (isinstance(spaces, (str, bytes)) or not isinstance(spaces, Iterable)):
            raise ValidationError("spaces", f"must be space names or Space objects, not {spaces!r}", spaces)
        declared = [s if isinstance(s, Space) else Space(s) for s in (spaces or ())]
        if isinstance(run, str):
            check_name("run", run)
        if row is None and self._read_only:
            raise ValidationError("run", f"no run named {run!r} in {self.path}", run)
        if row is None:
            self._spaces = {s.name: s for s in declared}
            (run_id,) = _one(con.execute("SELECT nextval('bb_run_id')"))  # type: ignore[misc]
            self.run_id = int(run_id)
            self.run_name = run if isinstance(run, str) else f"run-{self.run_id}"
            self._run_state, self._run_result = "open", None
            self.problem = json.loads(encode_value(problem))
            con.execute(
                "INSERT INTO bb_run (id, name, problem, config, state, cycles, activations,"
                " matched, head, created_at) VALUES (?, ?, ?, ?, 'open', 0, 0, 0, '', ?)",
                [
                    self.run_id,
                    self.run_name,
                    encode_value(problem),
                    json.dumps({"spaces": [s.to_json() for s in declared]}),
                    _now(),
                ],
            )
        else:
            self.run_id, self.run_name = int(row[0]), row[1]
            stored = json.loads(row[2] or "{}").get("spaces", [])
            self._spaces = {d["name"]: Space.from_json(d) for d in stored}
            for s in declared:
                self._spaces[s.name] = s
            self.cycles, self.activations, self.matched = int(row[4]), int(row[5]), int(row[6])
            self._head = row[7] or ""
            self.problem = json.loads(row[8]) if row[8] else None
            self._run_state, self._run_result = row[3], json.loads(row[9]) if row[9] else None
            self._load_run()
        self._next_seq = len(self._events) + 1

    def _create_views(self) -> None:
        """The run's own views of the tables (temporary: they belong to this connection)."""
        con = self._live()
        con.execute(_VISIBLE_MACRO.format(run=self.run_id))
        for view, table in (("entries", "bb_entry"), ("events", "bb_event"), ("activations", "bb_activation"), ("contexts", "bb_context")):
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {table} WHERE run = {self.run_id}"
            )

    def _load_run(self) -> None:
        con = self._live()
        for r in con.execute(
            "SELECT * FROM bb_event WHERE run = ? ORDER BY seq", [self.run_id]
        ).fetchall():
            d = dict(zip(_EVENT_COLUMNS, r))
            details = json.loads(d["details"]) if d["details"] else None
            self._events.append(
                Event(d["seq"], d["run"], d["cycle"], d["kind"], d["entry"], d["source"],
                      d["activation"], details)
            )
            if d["kind"] == "imported" and details:
                self._import_ranges.append((details["first"], details["last"]))
                self._imported += details["count"]
                self._imported_spaces = None
        self._flushed_events = len(self._events)
        for r in con.execute(
            "SELECT id, parent, label, status, depth, alternatives, confidence, cycle FROM bb_context "
            "WHERE run = ? ORDER BY id", [self.run_id]
        ).fetchall():
            self._add_context(Context(*r))
        rows = con.execute(
            f"SELECT * FROM bb_entry WHERE run = ? AND NOT ({self._imported_clause()}) ORDER BY id",
            [self.run_id],
        ).fetchall()
        for r in rows:
            self._index(_row_to_entry(dict(zip(_ENTRY_COLUMNS, r))))
        for e in self._entries.values():
            if e.revises is not None:
                self._revised_by[e.revises] = e.id
        (top,) = _one(con.execute(
            "SELECT coalesce(max(id), 0) FROM bb_entry WHERE run = ?", [self.run_id]
        ))  # type: ignore[misc]
        self._next_id = int(top) + 1
        self.cycle = self.cycles
        self._flushed_counts = (self.cycles, self.activations, self.matched)
        self._flushed_activations = {
            int(r[0]) for r in con.execute("SELECT id FROM bb_activation WHERE run = ?", [self.run_id]).fetchall()
        }

    def _imported_clause(self) -> str:
        if not self._import_ranges:
            return "false"
        return " OR ".join(f"id BETWEEN {a} AND {b}" for a, b in self._import_ranges)

    # ------------------------------------------------------------ properties
    @property
    def path(self) -> str:
        """Where the blackboard lives: a file path, or ``":memory:"``."""
        return self._path or ":memory:"

    @property
    def spaces(self) -> Mapping[str, Space]:
        """The declared spaces (empty: any space may be used)."""
        return dict(self._spaces)

    def declare(self, *spaces: str | Space) -> None:
        """Declare more spaces (and their fields) for this run."""
        if self._read_only:
            self._refuse_write()
        for s in spaces:
            space = s if isinstance(s, Space) else Space(s)
            self._spaces[space.name] = space
        self._live().execute(
            "UPDATE bb_run SET config = ? WHERE id = ?",
            [json.dumps({"spaces": [s.to_json() for s in self._spaces.values()]}), self.run_id],
        )

    def __len__(self) -> int:
        return len(self._entries) + self._imported - self._materialized

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def __repr__(self) -> str:
        state = "closed" if self._con is None else f"{len(self)} entries"
        return f"<Blackboard {self.path} run={getattr(self, 'run_id', '?')} {state}>"

    @property
    def read_only(self) -> bool:
        """True when opened with ``read_only=True``: nothing can be changed."""
        return self._read_only

    def _refuse_write(self) -> None:
        raise ReadOnlyError(self.path)

    # ------------------------------------------------------------ display
    def space(self, name: str) -> SpaceView:
        """One space's entries (all versions), best first; displays as a table."""
        self._live()
        declared = self._spaces.get(name)
        if declared is None and (self._spaces or name not in self._by_space):
            raise UnknownSpaceError(name, frozenset(self._spaces))
        description = declared.description if declared is not None else ""
        return SpaceView(name, description, [self._entries[i] for i in self._by_space.get(name, ())])

    def space_names(self) -> list[str]:
        """The declared spaces in order, or (none declared) the spaces used, in order of first use."""
        return list(self._spaces) if self._spaces else list(self._by_space)

    def __str__(self) -> str:
        if self._con is None:
            return repr(self)
        return blackboard_text(self)

    def _repr_html_(self) -> str:
        if self._con is None:
            return escape(repr(self))
        return blackboard_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    # ---------------------------------------------------------------- writes
    def post(
        self,
        space: str,
        value: Any,
        *,
        key: str | None = None,
        confidence: float = 1.0,
        source: str = "user",
        supports: Iterable[int | Entry] = (),
        context: int = ROOT_CONTEXT,
        activation: int | None = None,
    ) -> Entry:
        """Post a new entry and log a ``posted`` event; returns the entry."""
        if self._read_only:
            self._refuse_write()
        self._live()
        if activation is not None:
            check_activation(activation)
        entry, text = self._make(space, value, key, confidence, source, supports, context, None)
        self._add(entry, text, "posted", activation, None)
        return entry

    def revise(
        self,
        entry: int | Entry,
        *,
        value: Any = _UNSET,
        confidence: float = _UNSET,
        source: str = "user",
        supports: Iterable[int | Entry] | None = None,
        activation: int | None = None,
    ) -> Entry:
        """Post a new version of an active entry; the old one is kept, superseded.

        The new version has the same space, key and context, links to the old
        one through ``revises``, and is logged as a ``revised`` event.
        """
        if self._read_only:
            self._refuse_write()
        (new,) = self.transact(
            [("revise", entry.id if isinstance(entry, Entry) else entry, value, confidence, supports)],
            source=source, activation=activation,
        )
        return new

    def retract(
        self,
        entry: int | Entry,
        *,
        reason: str = "",
        source: str = "user",
        activation: int | None = None,
    ) -> Entry:
        """Withdraw an entry: it stays on the blackboard with status ``retracted``."""
        if self._read_only:
            self._refuse_write()
        old = self.get(entry)
        if old.status == Status.RETRACTED:
            return old
        (done,) = self.transact([("retract", old.id, reason)], source=source, activation=activation)
        return done

    def supersede(
        self, entry: int | Entry, *, reason: str, by: int | None = None, source: str = "controller",
        details: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Mark an entry superseded (it lost a conflict); used by controllers."""
        if self._read_only:
            self._refuse_write()
        self._live()
        old = self.get(entry)
        info: dict[str, Any] = {"reason": reason}
        if by is not None:
            info["by"] = by
        if details:
            info.update(details)
        return self._set_status(old.id, SUPERSEDED, "superseded", source, None, info)

    def reinstate(self, entry: int | Entry, *, reason: str, source: str = "controller",
                  details: Mapping[str, Any] | None = None) -> Entry:
        """Make a superseded entry active again (new evidence made it win)."""
        if self._read_only:
            self._refuse_write()
        self._live()
        old = self.get(entry)
        if old.id in self._revised_by:
            raise ValidationError("entry", f"entry {old.id} was revised; reinstate its latest version instead", old.id)
        info: dict[str, Any] = {"reason": reason}
        if details:
            info.update(details)
        return self._set_status(old.id, ACTIVE, "reinstated", source, None, info)

    def transact(
        self, ops: Sequence[tuple[Any, ...]], *, source: str, activation: int | None = None,
        default_supports: tuple[int, ...] = (), default_context: int = ROOT_CONTEXT,
    ) -> list[Entry]:
        """Apply several writes atomically: all are checked first, then all applied.

        Each op is ``("post", space, value, key, confidence, supports, context)``,
        ``("revise", entry_id, value, confidence, supports)`` (``UNSET`` keeps the
        old value or confidence) or ``("retract", entry_id, reason)``; a None
        ``supports`` or ``context`` takes the defaults. A :class:`ValidationError`
        from any op leaves the blackboard unchanged. Returns the entries written.
        """
        if self._read_only:
            self._refuse_write()
        self._live()
        check_source(source)
        check_activation(activation)
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
            raise ValidationError("operation", f"ops must be a list of operations, not {ops!r}", ops)
        for op in ops:
            if not isinstance(op, tuple) or not op or len(op) != _OP_SIZES.get(op[0], -1):
                raise ValidationError("operation", f"{op!r} is not an operation: use ('post', space, value, key, "
                                      "confidence, supports, context), ('revise', id, value, confidence, supports) "
                                      "or ('retract', id, reason)", op)
        return self._transact(ops, source, activation, default_supports, default_context)

    def _transact(self, ops: Sequence[tuple[Any, ...]], source: str, activation: int | None,
                  default_supports: tuple[int, ...], default_context: int) -> list[Entry]:
        """:meth:`transact` for callers that built well-formed ops themselves (the controller)."""
        if len(ops) == 1 and ops[0][0] == "post":
            _, space, value, key, confidence, supports, context = ops[0]
            entry, text = self._make(
                space, value, key, confidence, source,
                default_supports if supports is None else supports,
                default_context if context is None else context, None, None,
                supports is None,
            )
            self._add(entry, text, "posted", activation, None)
            return [entry]
        prepared: list[tuple[str, Any, Any]] = []
        eid = self._next_id
        touched: set[int] = set()
        for op in ops:
            kind = op[0]
            if kind == "post":
                _, space, value, key, confidence, supports, context = op
                entry, text = self._make(
                    space, value, key, confidence, source,
                    default_supports if supports is None else supports,
                    default_context if context is None else context, None, eid,
                    supports is None,
                )
                eid += 1
                prepared.append(("post", entry, text))
            elif kind == "revise":
                _, target, value, confidence, supports = op
                old = self.get(target)
                if old.status != ACTIVE and old.id in self._revised_by:
                    raise StaleEntryError(old.id, newest(self._revised_by, old.id))
                shadow = default_context != old.context
                if shadow:
                    # revising an ancestor's entry from a child context: a new
                    # version in the child shadows it there; the ancestor keeps it
                    if default_context not in self._chains or old.context not in self._chains[default_context]:
                        raise ValidationError("entry", f"entry {old.id} is not visible in context {default_context}", old.id)
                    if old.key is not None:
                        current = self.find(old.space, old.key, context=default_context, status=None)
                        if current and current[-1].id != old.id:
                            raise StaleEntryError(old.id, current[-1].id)
                if old.status != Status.ACTIVE or old.id in touched:
                    raise ValidationError("entry", f"entry {old.id} is {old.status} or already changed in this batch; only an active entry can be revised", old.id)
                touched.add(old.id)
                entry, text = self._make(
                    old.space, old.value if value is UNSET else value, old.key,
                    old.confidence if confidence is UNSET else confidence, source,
                    (default_supports or old.supports) if supports is None else supports,
                    default_context if shadow else old.context, old.id, eid,
                )
                eid += 1
                prepared.append(("shadow" if shadow else "revise", entry, text))
            elif kind == "retract":
                _, target, reason = op
                old = self.get(target)
                if old.context != default_context and default_context != ROOT_CONTEXT:
                    raise ValidationError("entry", f"entry {old.id} belongs to context {old.context}; a child context cannot retract it (fail the context instead)", old.id)
                if old.id in touched:
                    raise ValidationError("entry", f"entry {old.id} is already changed in this batch", old.id)
                touched.add(old.id)
                prepared.append(("retract", old, reason))
            else:
                raise ValidationError("operation", f"unknown operation {kind!r}", kind)
        written = []
        for kind, entry, extra in prepared:
            if kind == "post":
                self._add(entry, extra, "posted", activation, None)
                written.append(entry)
            elif kind == "revise":
                old_id = entry.revises
                self._set_status(old_id, SUPERSEDED, "superseded", source, activation, {"reason": "revised", "by": entry.id})
                self._revised_by[old_id] = entry.id
                self._add(entry, extra, "revised", activation, {"revises": old_id})
                written.append(entry)
            elif kind == "shadow":
                self._add(entry, extra, "revised", activation, {"revises": entry.revises, "context": entry.context})
                written.append(entry)
            elif entry.status != Status.RETRACTED:
                written.append(self._set_status(entry.id, RETRACTED, "retracted", source, activation, {"reason": extra} if extra else None))
        return written

    # --------------------------------------------------------------- reviews
    def hold(self, *, kind: str, rule: str, reason: str, entry: int | None = None,
             activation: int | None = None, details: Mapping[str, Any] | None = None) -> Review:
        """Put an item in the review queue (controllers do this); a held entry
        gets the status ``pending_review``. Returns the review."""
        if self._read_only:
            self._refuse_write()
        self._live()
        if entry is not None:
            self._set_status(self.get(entry).id, PENDING_REVIEW, "held", "controller", activation, {"rule": rule})
        info = {"kind": kind, "rule": rule, "reason": reason, **dict(details or {})}
        event = self.log(REQUESTED, entry=entry, source="controller", activation=activation, details=info)
        return reviews_from([event])[event.seq]

    def reviews(self, *, pending: bool | None = True) -> list[Review]:
        """The review queue: pending items (default), decided ones (False) or all (None)."""
        self._live()
        found = reviews_from(self._events).values()
        return [r for r in found if pending is None or r.pending == pending]

    def review(self, review_id: int) -> Review:
        found = reviews_from(self._events).get(review_id)
        if found is None:
            raise ValidationError("review", f"no review with id {review_id} in this run", review_id)
        return found

    def approve(self, review_id: int, *, by: str, reason: str = "") -> Review:
        """Accept a held item: the entry becomes active (and triggers sources),
        a failed activation is run again."""
        if self._read_only:
            self._refuse_write()
        review = self._pending(review_id, by)
        if review.entry is not None:
            self._set_status(review.entry, ACTIVE, "approved", f"review:{by}", None, {"review": review.id})
        self.log(DECISIONS["approve"], entry=review.entry, source=f"review:{by}", activation=review.activation,
                 details={"review": review.id, "by": by, "why": reason, "kind": review.kind})
        return self.review(review.id)

    def reject(self, review_id: int, *, by: str, reason: str = "") -> Review:
        """Refuse a held item: the entry is rejected; a failed activation stays failed."""
        if self._read_only:
            self._refuse_write()
        review = self._pending(review_id, by)
        if review.entry is not None:
            self._set_status(review.entry, REJECTED, "rejected", f"review:{by}", None, {"review": review.id, "reason": reason})
        self.log(DECISIONS["reject"], entry=review.entry, source=f"review:{by}", activation=review.activation,
                 details={"review": review.id, "by": by, "why": reason, "kind": review.kind})
        return self.review(review.id)

    def edit(self, review_id: int, *, value: Any = _UNSET, confidence: Any = _UNSET, by: str,
             reason: str = "", space: str | None = None, key: str | None = None) -> Entry:
        """Decide a held item with a person's own value: the held entry is
        rejected and the person's entry posted in its place (it triggers
        sources like any post). For a failed activation give ``space`` (and
        ``key``) of the entry to post. Returns the new entry."""
        if self._read_only:
            self._refuse_write()
        review = self._pending(review_id, by)
        held = self.get(review.entry) if review.entry is not None else None
        if held is None and space is None:
            raise ValidationError("space", "editing a failed activation's review needs the space of the entry to post")
        if value is _UNSET:
            if held is None:
                raise ValidationError("value", "editing a failed activation's review needs a value")
            value = held.value
        new, text = self._make(
            space or held.space, value, key if held is None else held.key,  # type: ignore[union-attr]
            1.0 if confidence is _UNSET else confidence, f"review:{by}",
            (held.id,) if held is not None else (), held.context if held is not None else ROOT_CONTEXT, None,
        )
        if held is not None:
            self._set_status(held.id, REJECTED, "rejected", f"review:{by}", None, {"review": review.id, "reason": "edited"})
        self._add(new, text, "posted", None, {"review": review.id})
        self.log(DECISIONS["edit"], entry=new.id, source=f"review:{by}", activation=review.activation,
                 details={"review": review.id, "by": by, "why": reason, "kind": review.kind,
                          "replaces": held.id if held is not None else None})
        return new

    def _pending(self, review_id: int, by: str) -> Review:
        self._live()
        if not isinstance(by, str) or not by.strip():
            raise ValidationError("by", "a decision needs the name of who made it")
        review = self.review(review_id)
        if not review.pending:
            raise ValidationError("review", f"review {review_id} was already decided ({review.decision} by {review.by})", review_id)
        return review

    def log(self, kind: str, *, entry: int | None = None, source: str | None = None,
            activation: int | None = None, details: Mapping[str, Any] | None = None) -> Event:
        """Append an event of any kind to the log (it is never changed afterwards)."""
        if self._read_only:
            self._refuse_write()
        self._live()
        check_name("kind", kind)
        check_activation(activation)
        if source is not None:
            check_source(source)
        event = Event(self._next_seq, self.run_id, self.cycle, kind, entry, source, activation, details)
        self._next_seq += 1
        self._events.append(event)
        return event

    def _make(
        self, space: Any, value: Any, key: Any, confidence: Any, source: Any,
        supports: Any, context: Any, revises: int | None, eid: int | None = None,
        trusted_supports: bool = False,
    ) -> tuple[Entry, str]:
        if type(space) is not str or not space:
            raise ValidationError("space", f"must be a non-empty string, not {space!r}", space)
        if self._spaces:
            if space not in self._spaces:
                raise UnknownSpaceError(space, frozenset(self._spaces))
        else:
            check_text("space", space)
        tp = type(value)
        if tp is int and -_BIG < value < _BIG:
            text = str(value)
        else:
            text = encode_value(value)
            if tp is dict and _flat(value):
                value = dict(value)  # a copy: later changes to the original are not seen
            elif tp is not str:
                value = json.loads(text)
        if key is not None and (type(key) is not str or not key.isascii()):
            check_key(key)
        if type(confidence) is not float or not 0.0 <= confidence <= 1.0:
            confidence = check_confidence(confidence)
        if type(source) is not str or not source or not source.isascii():
            check_source(source)
        if type(context) is not int or context not in self._chains:
            _bad_context(context)
        if not trusted_supports:
            supports = check_supports(supports, self._known_ids)
        entry = _new_entry(Entry, (
            self._next_id if eid is None else eid, space, key, value, confidence,
            ACTIVE, source, self.cycle, context, supports, revises, self.run_id,
        ))
        return entry, text

    def _add(self, entry: Entry, text: str, kind: str, activation: int | None,
             details: Mapping[str, Any] | None) -> None:
        self._next_id = entry.id + 1
        self._json[entry.id] = text
        self._new_ids.append(entry.id)
        self._index(entry)
        event = _new_entry(Event, (self._next_seq, self.run_id, self.cycle, kind, entry.id, entry.source, activation, details))
        self._next_seq += 1
        self._events.append(event)

    def _index(self, entry: Entry) -> None:
        eid = entry.id
        self._entries[eid] = entry
        if entry.context:
            self._by_context.setdefault(entry.context, []).append(eid)
        ids = self._by_space.get(entry.space)
        if ids is None:
            self._by_space[entry.space] = [eid]
        else:
            ids.append(eid)
        if entry.key is not None:
            slot = (entry.context, entry.space, entry.key)
            ids = self._slots.get(slot)
            if ids is None:
                self._slots[slot] = [eid]
            else:
                ids.append(eid)

    def _set_status(self, eid: int, status: str, kind: str, source: str | None,
                    activation: int | None, details: Mapping[str, Any] | None) -> Entry:
        entry = self._entries[eid]._replace(status=status)
        self._entries[eid] = entry
        if eid not in self._json:
            self._dirty.add(eid)
        event = Event(self._next_seq, self.run_id, self.cycle, kind, eid, source, activation, details)
        self._next_seq += 1
        self._events.append(event)
        return entry

    # ----------------------------------------------------------------- reads
    def get(self, entry: int | Entry) -> Entry:
        """The current state of an entry, by id (or by an older snapshot of it)."""
        if self._con is None:
            raise ClosedBlackboardError()
        eid = entry.id if isinstance(entry, Entry) else entry
        if type(eid) is not int:
            raise EntryNotFoundError(eid)
        found = self._entries.get(eid)
        if found is not None:
            return found
        self._live()
        if self._imported and isinstance(eid, int) and not isinstance(eid, bool) and self._is_imported(eid):
            rows = self._select_entries("id = ?", [eid])
            if rows:
                # From now on this imported entry lives in the working set, so
                # it can change status like any other (flushed as an UPDATE).
                self._entries[eid] = rows[0]
                self._materialized += 1
                return rows[0]
        raise EntryNotFoundError(eid)

    @property
    def _known_ids(self) -> Any:
        """What ``in`` tests for entry ids: held in memory, or imported."""
        if not self._import_ranges:
            return self._entries
        return _KnownIds(self._entries, self._import_ranges)

    def _is_imported(self, eid: int) -> bool:
        return any(first <= eid <= last for first, last in self._import_ranges)

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        """Entries of ``space`` (with ``key``, if given) in ``context``, oldest first.

        ``status`` filters (default: active only); ``None`` returns every version.
        """
        self._live()
        check_find(space, key, context)
        found = with_status(lookup.find(self._entries, self._by_space, self._slots, self._chains, space, key, context),
                            status)
        if self._imported and (self._imported_spaces is None or space in self._imported_spaces):
            where = f"space = ? AND context = ? AND ({self._imported_clause()})"
            params: list[Any] = [space, context]
            if key is not None:
                where += " AND key = ?"
                params.append(key)
            imported = [self._entries.get(e.id, e) for e in self._select_entries(where, params)]
            known = {e.id for e in found}
            found = sorted(found + [e for e in imported if e.id not in known and (status is None or e.status == status)],
                           key=lambda e: e.id)
        return found

    # -------------------------------------------------------------- contexts
    def open_context(self, parent: int = ROOT_CONTEXT, label: str = "", *, alternatives: int = 1,
                     confidence: float = 1.0, source: str = "user", activation: int | None = None) -> Context:
        """Open a hypothetical world under ``parent``: it sees every entry of its
        ancestors and adds its own. Costs the same whatever the parent holds:
        nothing is copied."""
        if self._read_only:
            self._refuse_write()
        self._live()
        up = self.context(parent)
        if up.status != "open":
            raise ValidationError("context", f"context {parent} is {up.status}; open children only under an open context", parent)
        if not isinstance(label, str):
            raise ValidationError("label", f"must be a string, not {label!r}", label)
        ctx = Context(len(self._contexts), up.id, check_text("label", label), "open", up.depth + 1,
                      int(alternatives), check_confidence(confidence), self.cycle)
        self._add_context(ctx)
        self._dirty_contexts.add(ctx.id)
        self.log("context_opened", source=source, activation=activation,
                 details={"context": ctx.id, "parent": up.id, "label": label})
        return ctx

    def fail_context(self, context: int, *, reason: str, source: str = "user",
                     activation: int | None = None) -> list[int]:
        """A contradiction in ``context``: it and its descendants fail, and everything
        posted in them is retracted. A parent whose alternatives have all failed
        fails too. Returns the failed contexts."""
        if self._read_only:
            self._refuse_write()
        self._live()
        if context == ROOT_CONTEXT:
            raise ValidationError("context", "the root context cannot fail; post a contradiction instead", context)
        failed: list[int] = []
        todo = [context]
        while todo:
            ctx = self.context(todo.pop())
            if ctx.status == "failed":
                continue
            self._contexts[ctx.id] = ctx._replace(status="failed")
            self._dirty_contexts.add(ctx.id)
            failed.append(ctx.id)
            for eid in self._by_context.get(ctx.id, ()):
                if self._entries[eid].status in (ACTIVE, PENDING_REVIEW):
                    self._set_status(eid, RETRACTED, "retracted", source, activation,
                                     {"reason": f"context {ctx.id} failed"})
            self.log("context_failed", source=source, activation=activation,
                     details={"context": ctx.id, "reason": reason if ctx.id == context else f"inside failed context {context}"})
            todo.extend(self._children.get(ctx.id, ()))
        parent = self._contexts[context].parent
        siblings = self._children.get(parent, ())
        if all(self._contexts[c].status == "failed" for c in siblings):
            if parent == ROOT_CONTEXT:
                self.log("context_exhausted", source=source, activation=activation,
                         details={"context": ROOT_CONTEXT, "reason": "every alternative of the root failed"})
            elif self._contexts[parent].status == "open":
                failed += self.fail_context(parent, reason="all its alternatives failed", source=source,
                                            activation=activation)
        return failed

    def promote_context(self, context: int, *, source: str = "user", activation: int | None = None) -> Context:
        """Mark a context as the answer: its visible entries are the solution."""
        if self._read_only:
            self._refuse_write()
        ctx = self.context(context)
        if ctx.status != "open":
            raise ValidationError("context", f"context {context} is {ctx.status}; only an open context can be promoted", context)
        ctx = ctx._replace(status="promoted")
        self._contexts[context] = ctx
        self._dirty_contexts.add(context)
        self.log("context_promoted", source=source, activation=activation, details={"context": context})
        return ctx

    def context(self, context: int) -> Context:
        found = self._contexts.get(context)  # type: ignore[arg-type]
        if found is None:
            raise ValidationError("context", f"no context {context!r} in this run", context)
        return found

    def contexts(self, status: str | None = None) -> list[Context]:
        return [c for c in self._contexts.values() if status is None or c.status == status]

    def exhausted(self) -> bool:
        """True when the root branched and every alternative failed."""
        kids = self._children.get(ROOT_CONTEXT, ())
        return bool(kids) and all(self._contexts[c].status == "failed" for c in kids)

    def _add_context(self, ctx: Context) -> None:
        self._contexts[ctx.id] = ctx
        self._children.setdefault(ctx.parent, []).append(ctx.id)
        self._chains[ctx.id] = (ctx.id, *self._chains[ctx.parent])

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        """Every entry of this run held in memory (imported ones via :meth:`query`)."""
        self._live()
        if space is not None:
            return with_status((self._entries[i] for i in self._by_space.get(space, ())), status)
        return with_status(self._entries.values(), status)

    def events(self, kind: str | None = None, *, entry: int | None = None) -> list[Event]:
        """The event log of this run, oldest first, optionally filtered."""
        self._live()
        return [
            e for e in self._events
            if (kind is None or e.kind == kind) and (entry is None or e.entry == entry)
        ]

    def slots(self) -> Iterator[tuple[tuple[int, str, str], list[Entry]]]:
        """Every (context, space, key) slot with its entries (all versions)."""
        for slot, ids in self._slots.items():
            yield slot, [self._entries[i] for i in ids]

    def slot(self, space: str, key: str, context: int = ROOT_CONTEXT) -> list[Entry]:
        """Every version of every entry claiming ``key`` in ``space``."""
        return [self._entries[i] for i in self._slots.get((context, space, key), ())]

    def latest(self, entry: int | Entry) -> Entry:
        """The newest version of an entry (following revisions)."""
        eid = entry.id if isinstance(entry, Entry) else entry
        if type(eid) is not int:
            raise EntryNotFoundError(eid)
        return self.get(newest(self._revised_by, eid))  # type: ignore[arg-type]

    def revised_by(self, entry_id: int) -> int | None:
        """The id of the entry that revised ``entry_id``, if any."""
        return self._revised_by.get(entry_id)

    # ------------------------------------------------------------------- SQL
    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL over the file and return an Arrow table.

        The views ``entries``, ``events`` and ``activations`` hold this run's
        rows; the tables ``bb_entry``, ``bb_event``, ``bb_activation`` and
        ``bb_run`` hold every run in the file. Pending writes are flushed first.

        On a writable blackboard this is the owner's own SQL: trusted, run on
        the file's connection as it is. On a read-only one it runs in the SQL
        sandbox (see ``_sandbox``): one SELECT over this run's views and the
        file's ``bb_*`` tables, no files, URLs, extensions or settings.
        """
        self.flush()
        if not isinstance(query, str):
            raise QueryError(repr(query), "a query must be a string")
        if self._read_only:
            self._check_select(query)  # the early, friendly refusal; the sandbox is the boundary
            return self._sandbox("file").run(query, params, generation=self._file_generation(),
                                             refuse=self._refuse_statement)
        self._generation += 1  # the owner's SQL may change rows
        try:
            relation = self._live().sql(query, params=params)
        except duckdb.Error as exc:
            raise QueryError(query, str(exc).splitlines()[0]) from None
        except (TypeError, ValueError, RuntimeError) as exc:
            raise QueryError(query, f"bad parameters: {exc}") from None
        if relation is None:
            return pa.table({})
        try:
            return relation.to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(query, str(exc).splitlines()[0]) from None

    def export_run(self) -> dict[str, pa.Table]:
        """This run's rows of every table, as Arrow tables (to move a run to another file)."""
        self.flush()
        con = self._live()
        tables = {name: con.sql(f"SELECT * FROM {name} WHERE run = {self.run_id}").to_arrow_table()
                  for name in ("bb_entry", "bb_event", "bb_activation", "bb_context")}
        tables["bb_run"] = con.sql(f"SELECT * FROM bb_run WHERE id = {self.run_id}").to_arrow_table()
        return tables

    def sandboxed_sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None, *,
                      deadline: float | None = None) -> pa.Table:
        """One SELECT over this run's ``entries``, ``events`` and ``activations``, in the SQL sandbox.

        What a knowledge source's ``view.sql`` runs: a separate, locked-down
        DuckDB that holds only this run's rows (see ``_sandbox``).
        ``deadline`` (a ``time.monotonic()`` instant) interrupts the query.
        """
        self.flush()
        generation = self._file_generation() if self._read_only else self._generation
        return self._sandbox("run").run(query, params, generation=generation, deadline=deadline)

    def _sandbox(self, scope: str) -> Sandbox:
        box = self._sandboxes.get(scope)
        if box is None:
            self._live()
            box = self._sandboxes[scope] = _make_sandbox(self, scope)
        return box

    def _file_generation(self) -> int:
        """A read-only handle's rows change only when this process also writes the file: count them."""
        row = _one(self._live().execute(
            "SELECT (SELECT count(*) FROM bb_event), (SELECT count(*) FROM bb_entry), "
            "(SELECT count(*) FROM bb_activation), (SELECT count(*) FROM bb_run)"))
        return hash(tuple(row)) if row else 0

    def _refuse_statement(self, query: str, reason: str) -> BlackboardError:
        return ReadOnlyError(self.path, f"{reason}: {query[:80]!r}")

    def _check_select(self, query: str) -> None:
        """A read-only blackboard runs one SELECT at a time (DuckDB's own parse says which)."""
        tree = json.loads(self.parse_sql(query))
        if tree.get("error") or len(tree.get("statements", ())) != 1:
            raise ReadOnlyError(self.path, f"only one SELECT statement at a time may be run on it: {query[:80]!r}")
        if "nextval" in json.dumps(tree).lower():  # the one SELECT that changes the file: a sequence
            raise ReadOnlyError(self.path, "nextval() advances a sequence")

    def parse_sql(self, query: str) -> str:
        """DuckDB's parse of ``query`` as JSON (``json_serialize_sql``); SELECTs only."""
        try:
            row = _one(self._live().execute("SELECT json_serialize_sql(?)", [query]))
        except duckdb.Error as exc:
            raise QueryError(query, str(exc).splitlines()[0]) from None
        return str(row[0]) if row else '{"error": true}'

    def query(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[Entry]:
        """Run SQL that selects entry rows (``SELECT * FROM entries ...``); typed entries."""
        table = self.sql(query, params)
        missing = set(_ENTRY_COLUMNS) - set(table.column_names)
        if missing:
            raise QueryError(query, f"the result lacks entry columns: {', '.join(sorted(missing))}")
        return [_row_to_entry(r) for r in table.to_pylist()]

    def _select_entries(self, where: str, params: list[Any]) -> list[Entry]:
        self.flush()
        rows = self._live().execute(
            f"SELECT * FROM bb_entry WHERE run = {self.run_id} AND {where} ORDER BY id", params
        ).fetchall()
        return [_row_to_entry(dict(zip(_ENTRY_COLUMNS, r))) for r in rows]

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A SQLModel ``Session`` on this file, for typed queries of the models."""
        from duckdb_engine import ConnectionWrapper
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool
        from sqlmodel import Session

        if self._read_only:  # a Session can write through the ORM
            self._refuse_write()
        self.flush()
        self._generation += 1  # a session can write through the ORM
        if self._engine is None:
            con = self._live()
            self._engine = create_engine(
                "duckdb://", creator=lambda: ConnectionWrapper(con.cursor()), poolclass=StaticPool
            )
        with Session(self._engine) as session:
            yield session

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write this run (entries, events, activations, run) as Parquet files."""
        self.flush()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, table, column in (
            ("entries", "bb_entry", "run"), ("events", "bb_event", "run"),
            ("activations", "bb_activation", "run"), ("run", "bb_run", "id"),
        ):
            target = out / f"{name}.parquet"
            self._live().execute(
                f"COPY (SELECT * FROM {table} WHERE {column} = {self.run_id}) TO "
                f"'{_sql_path(target)}' (FORMAT parquet)"
            )
            written[name] = target
        return written

    # ---------------------------------------------------------------- import
    def import_arrow(self, table: pa.Table | Mapping[str, Sequence[Any]], *, source: str = "import") -> int:
        """Load many entries at once from an Arrow table (or a dict of columns).

        Columns: ``space`` and ``value`` (JSON text, or any Arrow type, which
        is turned into JSON) are required; ``key`` and ``confidence`` are
        optional. The rows are checked in bulk (Arrow compute for spaces and
        confidences, DuckDB's ``json_valid`` inside the one INSERT), and
        nothing is written if any row is invalid. Imported entries are
        background knowledge: they can be read and queried but, unlike posted
        entries, do not trigger knowledge sources. Returns the number imported.
        """
        if self._read_only:
            self._refuse_write()
        con = self._live()
        self._generation += 1
        check_source(source)
        table = _import_table(table, self._spaces)
        n = table.num_rows
        if n == 0:
            return 0
        self.flush()
        first = self._next_id
        ids = pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), first - 1)
        _bb_import = table.append_column("_id", ids)
        cols = set(table.column_names)
        key = "CAST(key AS VARCHAR)" if "key" in cols else "NULL"
        conf = "CAST(confidence AS DOUBLE)" if "confidence" in cols else "1.0"
        if pa.types.is_string(table.schema.field("value").type) or pa.types.is_large_string(table.schema.field("value").type):
            value = "CAST(value AS VARCHAR)"
            _strict_texts(con, table)
        else:
            value = "CAST(to_json(value) AS VARCHAR)"
        try:
            con.begin()
            con.execute(
                f"INSERT INTO bb_entry SELECT {self.run_id}, _id, space, {key},"
                f" CASE WHEN NOT json_valid({value}) THEN error('{_BAD_JSON}')"
                f" WHEN strlen({value}) > {MAX_VALUE_BYTES} THEN error('{_BIG_VALUE}') ELSE {value} END,"
                f" {conf}, 'active', ?, {self.cycle}, 0, '[]', NULL FROM _bb_import",
                [source],
            )
            con.commit()
        except duckdb.Error as exc:
            try:
                con.rollback()
            except duckdb.Error:
                pass
            if _BAD_JSON in str(exc):
                (bad,) = _one(con.execute(
                    f"SELECT count(*) FROM _bb_import WHERE value IS NULL OR NOT json_valid({value})"
                ))  # type: ignore[misc]
                raise ValidationError("value", f"{bad} of {n} imported rows are not valid JSON; nothing was imported") from None
            if _BIG_VALUE in str(exc):
                (big,) = _one(con.execute(
                    f"SELECT count(*) FROM _bb_import WHERE strlen({value}) > {MAX_VALUE_BYTES}"
                ))  # type: ignore[misc]
                raise ValidationError(
                    "value", f"{big} of {n} imported rows are over the {MAX_VALUE_BYTES:,}-byte limit of a value"
                    " (as post() enforces); nothing was imported") from None
            raise ValidationError("table", f"cannot be imported, nothing was: {str(exc).splitlines()[0]}") from None
        self._next_id += n
        self._imported += n
        self._import_ranges.append((first, first + n - 1))
        if self._imported_spaces is not None:
            self._imported_spaces.update(pc.unique(table.column("space")).to_pylist())
        self.log("imported", source=source, details={"count": n, "first": first, "last": first + n - 1})
        return n

    # ----------------------------------------------------------------- flush
    def decided_activations(self) -> set[tuple[str, tuple[int, ...]]]:
        """(source, trigger ids) of every activation that ran or was dropped in this run.

        A new controller on a run with history skips these, and re-queues the
        rest: how a run resumes without running an action twice.
        """
        keys: set[tuple[str, tuple[int, ...]]] = set()
        rows = self._live().execute(
            "SELECT source, triggers FROM bb_activation WHERE run = ? AND state <> 'pending'",
            [self.run_id],
        ).fetchall()
        for source, triggers in rows:
            keys.add((source, tuple(json.loads(triggers))))
        for a in self._activation_rows.values():
            key = (a.source.name, tuple(t.id for t in a.triggers))
            if a.state != "pending":
                keys.add(key)
            else:
                keys.discard(key)
        return keys

    def activation(self, activation_id: int) -> dict[str, Any] | None:
        """The record of one activation of this run (source, triggers, state...), or None."""
        pending = self._activation_rows.get(activation_id)
        if pending is not None:
            table = _activation_table(self.run_id, [pending])
        else:
            table = self._live().sql(
                f"SELECT * FROM bb_activation WHERE run = {self.run_id} AND id = {int(activation_id)}"
            ).to_arrow_table()
        rows = table.to_pylist()
        if not rows:
            return None
        row = rows[0]
        row["triggers"] = json.loads(row["triggers"])
        row["produced"] = json.loads(row["produced"]) if row["produced"] else []
        return row

    def last_activation_id(self) -> int:
        """The largest activation id recorded in this run (0 if none)."""
        (top,) = _one(self._live().execute(
            "SELECT coalesce(max(id), 0) FROM bb_activation WHERE run = ?", [self.run_id]))
        return max([int(top), *self._activation_rows])

    def record_activation(self, activation: Any) -> None:
        """Queue an activation for the next flush (latest state wins).

        The row is read off the object at flush time, off the hot path: it
        has the attributes ``id``, ``source`` (with ``name``), ``triggers``
        (entries), ``rating``, ``state``, ``attempts``, ``error``,
        ``queued_cycle``, ``cycle``, ``seconds`` and ``produced`` (ids), as
        :class:`controller.Activation` does.
        """
        if self._read_only:
            self._refuse_write()
        self._activation_rows[activation.id] = activation

    @property
    def in_memory(self) -> bool:
        return self._path is None

    def mark(self, *, state: str | None = None, outcome: str | None = None,
             result: Any = _UNSET) -> None:
        """Record the run's state, outcome or result; written by the next flush."""
        if self._read_only:
            self._refuse_write()
        if state is not None:
            self._pending_run["state"] = self._run_state = state
            if state in ("finished", "cancelled", "failed"):
                self._pending_run["finished_at"] = _now()
        if outcome is not None:
            self._pending_run["outcome"] = outcome
        if result is not _UNSET:
            self._pending_run["result"] = json.dumps(result, default=str)
            self._run_result = json.loads(self._pending_run["result"])

    @property
    def run_state(self) -> str:
        """The run's state: ``open``, ``running``, ``waiting``, ``finished``, ``cancelled`` or ``failed``."""
        return self._run_state

    @property
    def run_result(self) -> dict[str, Any] | None:
        """What the controller recorded as the run ended (``RunResult.to_dict()``, goal
        entries as ids), or None while no run of a controller has ended."""
        return self._run_result

    def flush(self, *, state: str | None = None, outcome: str | None = None,
              result: Any = _UNSET) -> None:
        """Write pending entries, status changes, events and activations in one transaction.

        If the write fails, nothing of it is committed, the rows stay pending
        in memory (so nothing is lost) and a :class:`BlackboardFileError` says why.
        """
        self._live()
        if self._read_only:  # nothing can be pending: every change was refused
            if state is not None or outcome is not None or result is not _UNSET:
                self._refuse_write()
            return
        self.mark(state=state, outcome=outcome, result=result)
        batch = self._take()
        if batch is not None:
            self._write(batch, self._live())

    def _take(self) -> _Batch | None:
        """Everything pending, as Arrow tables; the pending buffers start afresh."""
        new_ids, dirty = self._new_ids, self._dirty
        events = self._events[self._flushed_events:]
        acts = list(self._activation_rows.values())
        counts = (self.cycles, self.activations, self.matched)
        run_updates = dict(self._pending_run)
        if counts != self._flushed_counts:
            run_updates.update(zip(("cycles", "activations", "matched"), counts))
        ctx_ids = sorted(self._dirty_contexts)
        if not (new_ids or dirty or events or acts or run_updates or ctx_ids):
            return None
        ids = sorted(dirty)
        entry_table, digests = self._entry_table(new_ids) if new_ids else (None, {})
        event_table, head = _event_table(events, self._head, digests) if events else (None, self._head)
        if head != self._head:
            run_updates["head"] = head
        batch = _Batch(
            entries=entry_table,
            statuses=pa.table({
                "id": pa.array(ids, pa.int64()),
                "status": pa.array([self._entries[i].status for i in ids], pa.string()),
            }) if ids else None,
            events=event_table,
            activations=_activation_table(self.run_id, acts) if acts else None,
            rewritten=[a.id for a in acts if a.id in self._flushed_activations],
            run_updates=run_updates,
            new_ids=new_ids, dirty=dirty, event_start=self._flushed_events,
            activation_objects=acts, texts={i: self._json.pop(i) for i in new_ids},
            counts=(self._flushed_counts, counts), pending_run=self._pending_run,
            head=self._head,
            contexts=_context_table(self.run_id, [self._contexts[c] for c in ctx_ids]) if ctx_ids else None,
            context_ids=ctx_ids,
        )
        self._head = head
        self._dirty_contexts = set()
        self._new_ids = []
        self._dirty = set()
        self._flushed_events += len(events)
        # only a pending activation can be written again (when it finishes)
        self._flushed_activations.update(a.id for a in acts if a.state == "pending")
        self._activation_rows = {}
        self._flushed_counts = counts
        self._pending_run = {}
        return batch

    def _restore(self, batch: _Batch) -> None:
        """Make a batch that could not be written pending again."""
        self._new_ids = batch.new_ids + self._new_ids
        self._dirty |= batch.dirty
        self._flushed_events = min(self._flushed_events, batch.event_start)
        for activation in batch.activation_objects:
            self._activation_rows.setdefault(activation.id, activation)
        self._json.update(batch.texts)
        self._flushed_counts = batch.counts[0]
        self._pending_run = {**batch.pending_run, **self._pending_run}
        self._head = batch.head
        self._dirty_contexts |= set(batch.context_ids)

    def _write(self, batch: _Batch, con: duckdb.DuckDBPyConnection) -> None:
        """One transaction: insert and update every table of the batch."""
        run = self.run_id
        self._generation += 1
        try:
            con.begin()
            # DuckDB reads each local _bb_rows table by a replacement scan,
            # about 1 ms cheaper per table than register().
            if batch.entries is not None:
                _bb_rows = batch.entries
                con.execute("INSERT INTO bb_entry SELECT * FROM _bb_rows")
            if batch.statuses is not None:
                _bb_rows = batch.statuses
                con.execute(
                    "UPDATE bb_entry SET status = u.status FROM _bb_rows u "
                    f"WHERE bb_entry.run = {run} AND bb_entry.id = u.id"
                )
            if batch.events is not None:
                _bb_rows = batch.events
                con.execute("INSERT INTO bb_event SELECT * FROM _bb_rows")
            if batch.activations is not None:
                if batch.rewritten:
                    con.execute(
                        f"DELETE FROM bb_activation WHERE run = {run} AND id IN ({','.join(map(str, batch.rewritten))})"
                    )
                _bb_rows = batch.activations
                con.execute("INSERT INTO bb_activation SELECT * FROM _bb_rows")
            if batch.contexts is not None:
                con.execute(f"DELETE FROM bb_context WHERE run = {run} AND id IN ({','.join(map(str, batch.context_ids))})")
                _bb_rows = batch.contexts
                con.execute("INSERT INTO bb_context SELECT * FROM _bb_rows")
            if batch.run_updates:
                sets = ", ".join(f"{column} = ?" for column in batch.run_updates)
                con.execute(f"UPDATE bb_run SET {sets} WHERE id = {run}", list(batch.run_updates.values()))
            con.commit()
        except duckdb.Error as exc:
            try:
                con.rollback()
            except duckdb.Error:
                pass
            self._restore(batch)
            raise BlackboardFileError(self.path, f"writing to the database failed: {exc}") from None

    def _entry_table(self, new_ids: list[int]) -> tuple[pa.Table, dict[int, str]]:
        """The new entries as Arrow columns, and each one's digest for the hash chain."""
        entries = self._entries
        (ids, space, key, _, confidence, status, source, cycle, context, supports, revises, run) = zip(
            *[entries[i] for i in new_ids]
        )
        js = self._json
        texts = [js[i] for i in new_ids]
        support_texts = [f"[{s[0]}]" if len(s) == 1 else _id_list(s) for s in supports]
        digests = {
            i: entry_content(sp, k, t, c, so, cy, co, st, r)
            for i, sp, k, t, c, so, cy, co, st, r in zip(
                ids, space, key, texts, confidence, source, cycle, context, support_texts, revises)
        }
        return pa.Table.from_arrays([
            pa.array(run, pa.int32()), pa.array(ids, pa.int64()), pa.array(space, pa.string()),
            pa.array(key, pa.string()), pa.array(texts, pa.string()),
            pa.array(confidence, pa.float64()), pa.array(status, pa.string()),
            pa.array(source, pa.string()), pa.array(cycle, pa.int32()), pa.array(context, pa.int32()),
            pa.array(support_texts, pa.string()), pa.array(revises, pa.int64()),
        ], schema=_ENTRY_SCHEMA), digests

    def close(self) -> None:
        """Flush (a file) and close. Closing twice is harmless.

        An in-memory blackboard is not flushed: its database goes away with it.
        """
        if self._con is None:
            return
        try:
            if self._path is not None and not self._read_only:
                self.flush()
        finally:
            for box in self._sandboxes.values():
                box.close()
            self._sandboxes.clear()
            if self._engine is not None:
                self._engine.dispose()
            self._con.close()
            self._con = None

    def __enter__(self) -> Blackboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            try:
                self.close()
            except Exception:
                pass

    def _live(self) -> duckdb.DuckDBPyConnection:
        con = self._con
        if con is None:
            raise ClosedBlackboardError()
        return con

    # ---------------------------------------------------------------- replay
    def replay(self, cycle: int | None = None) -> dict[int, Entry]:
        """The blackboard as it was at the end of ``cycle`` (default: now), from the log.

        Entry contents come from the entry table (they never change once
        posted); which entries existed and their status come from the event
        log alone. Comparing ``replay()`` with the live entries checks that
        the log tells the whole story.
        """
        self.flush()
        con = self._live()
        content = {
            e.id: e for e in (
                _row_to_entry(dict(zip(_ENTRY_COLUMNS, r)))
                for r in con.execute("SELECT * FROM bb_entry WHERE run = ?", [self.run_id]).fetchall()
            )
        }
        state: dict[int, Entry] = {}
        for seq, ev_cycle, kind, eid, details in con.execute(
            "SELECT seq, cycle, kind, entry, details FROM bb_event WHERE run = ? ORDER BY seq",
            [self.run_id],
        ).fetchall():
            if cycle is not None and ev_cycle > cycle:
                break
            if kind in ("posted", "revised"):
                state[eid] = content[eid]._replace(status=ACTIVE)
            elif kind == "superseded":
                state[eid] = state[eid]._replace(status=SUPERSEDED)
            elif kind == "reinstated":
                state[eid] = state[eid]._replace(status=ACTIVE)
            elif kind == "retracted":
                state[eid] = state[eid]._replace(status=RETRACTED)
            elif kind == "held":
                state[eid] = state[eid]._replace(status=PENDING_REVIEW)
            elif kind == "approved":
                state[eid] = state[eid]._replace(status=ACTIVE)
            elif kind == "rejected":
                state[eid] = state[eid]._replace(status=REJECTED)
            elif kind == "imported":
                info = json.loads(details)
                for i in range(info["first"], info["last"] + 1):
                    state[i] = content[i]._replace(status=ACTIVE)
        return state


_SCALARS = frozenset({int, str, bool, float, type(None)})
_BIG = 10**18  # ints beyond go through encode_value, which also refuses the huge ones


def _flat(value: dict[Any, Any]) -> bool:
    """A dict of str keys and scalar values: its JSON round trip is itself."""
    for k, v in value.items():
        if type(k) is not str or type(v) not in _SCALARS:
            return False
    return True


_BAD_JSON = "blackboard import: invalid JSON value"
_BIG_VALUE = "blackboard import: value over the size limit"


class _KnownIds:
    """Membership over in-memory ids and imported id ranges."""

    __slots__ = ("entries", "ranges")

    def __init__(self, entries: Mapping[int, Entry], ranges: list[tuple[int, int]]) -> None:
        self.entries = entries
        self.ranges = ranges

    def __contains__(self, eid: object) -> bool:
        return eid in self.entries or (
            isinstance(eid, int) and any(a <= eid <= b for a, b in self.ranges))


def _import_table(table: Any, spaces: Mapping[str, Space]) -> pa.Table:
    """The table to import, checked with Arrow compute (all but JSON validity)."""
    if not isinstance(table, pa.Table):
        try:
            table = pa.table(dict(table))
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise ValidationError("table", f"cannot make an Arrow table: {exc}") from None
    cols = set(table.column_names)
    for needed in ("space", "value"):
        if needed not in cols:
            raise ValidationError(needed, "the imported table has no such column")
    unknown = cols - {"space", "value", "key", "confidence"}
    if unknown:
        raise ValidationError("table", f"unexpected columns: {', '.join(sorted(unknown))}")
    n = table.num_rows
    if n == 0:
        return table
    try:
        space = table.column("space")
        if not (pa.types.is_string(space.type) or pa.types.is_large_string(space.type)):
            raise ValidationError("space", f"the space column must hold strings, not {space.type}")
        empty = space.null_count + pc.sum(pc.equal(pc.fill_null(space, ""), "")).as_py()
        if empty:
            raise ValidationError("space", f"{empty} of {n} imported rows: empty or missing; nothing was imported")
        if spaces:
            outside = n - pc.sum(pc.is_in(space, value_set=pa.array(list(spaces)))).as_py()
            if outside:
                raise ValidationError("space", f"{outside} of {n} imported rows: not a declared space; nothing was imported")
        if table.column("value").null_count:
            raise ValidationError("value", f"{table.column('value').null_count} of {n} imported rows have no value; nothing was imported")
        kind = table.column("value").type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):  # text: see _strict_texts
            _refuse_unreadable(_non_finite(table.column("value")), n)
        if "confidence" in cols:
            kind = table.column("confidence").type
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind)):
                raise ValidationError("confidence", f"the confidence column must hold numbers, not {kind}; nothing was imported")
            conf = pc.cast(table.column("confidence"), pa.float64())
            bad = conf.null_count + (pc.sum(pc.invert(pc.and_(
                pc.greater_equal(conf, 0.0), pc.less_equal(conf, 1.0)))).as_py() or 0)
            if bad:
                raise ValidationError("confidence", f"{bad} of {n} imported rows: missing or outside 0..1; nothing was imported")
        if "key" in cols and not pa.types.is_null(table.column("key").type):
            table = table.set_column(table.column_names.index("key"), "key", pc.cast(table.column("key"), pa.string()))
    except pa.ArrowException as exc:
        raise ValidationError("table", f"cannot be imported: {exc}") from None
    return table


# JSON text that DuckDB's lenient parser accepts but Python's json (and
# post()) do not: only values that may hold such text are parsed in Python,
# so a clean bulk import stays one vectorised pass.
_SUSPECT_JSON = r"(?i)nan|inf|,\s*[\]}]|[eE][+-]?\d{3}|\d{300}"
_SUSPECT_NESTING = 64


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is out of range")
    return number


def _strict_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        return False
    return True


def _strict_texts(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Refuse JSON text Python cannot read back, parsing in Python only the suspects.

    DuckDB finds the suspects (multi-threaded, one scan: 3x faster than
    Arrow's regex kernel on a million rows); most bulk imports have none.
    """
    _bb_suspects = table.select(["value"])
    texts = con.execute(
        "SELECT value FROM _bb_suspects WHERE regexp_matches(value, ?) OR (strlen(value) > ? AND "
        "strlen(value) - strlen(replace(replace(value, '[', ''), '{', '')) > ?)",
        [_SUSPECT_JSON, 2 * _SUSPECT_NESTING, _SUSPECT_NESTING],
    ).fetchall()
    _refuse_unreadable(sum(1 for (text,) in texts if text is not None and not _strict_json(text)), table.num_rows)


def _refuse_unreadable(count: int, n: int) -> None:
    if count:
        raise ValidationError(
            "value", f"{count} of {n} imported rows are JSON that strict readers refuse (NaN, Infinity, "
            "numbers out of range, trailing commas, or nesting too deep), which post() never writes; "
            "nothing was imported")


def _non_finite(array: Any) -> int:
    """Non-finite floats anywhere in an Arrow column (in lists and structs too)."""
    kind = array.type
    if isinstance(array, pa.ChunkedArray):
        return sum(_non_finite(chunk) for chunk in array.chunks)
    if pa.types.is_floating(kind):
        return len(array) - array.null_count - (pc.sum(pc.is_finite(array)).as_py() or 0)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _non_finite(array.flatten())
    if pa.types.is_struct(kind):
        return sum(_non_finite(array.field(i)) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _non_finite(array.items)
    return 0


@dataclass
class _Batch:
    """Rows taken from the working set for one write, and how to put them back."""

    entries: pa.Table | None
    statuses: pa.Table | None
    events: pa.Table | None
    activations: pa.Table | None
    rewritten: list[int]
    run_updates: dict[str, Any]
    new_ids: list[int]
    dirty: set[int]
    event_start: int
    activation_objects: list[Any]
    texts: dict[int, str]
    counts: tuple[tuple[int, int, int], tuple[int, int, int]]
    pending_run: dict[str, Any]
    head: str
    contexts: pa.Table | None
    context_ids: list[int]


def _one(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The first row of a result, reading it to the end: DuckDB refuses a new
    statement while a result is unfinished."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


_OP_SIZES = {"post": 7, "revise": 5, "retract": 3}


def _bad_context(context: Any) -> int:
    if type(context) is int:
        raise ValidationError("context", f"no context {context} in this run (open one with open_context)", context)
    raise ValidationError("context", f"must be a context id (int), not {context!r}", context)


def _event_table(events: list[Event], previous: str, digests: Mapping[int, str]) -> tuple[pa.Table, str]:
    """The events as Arrow columns, each with its link in the hash chain; and the new head."""
    seq, run, cycle, kind, entry, source, activation, details = zip(*events)
    texts = [json.dumps(d, default=str) if d else None for d in details]
    hashes = []
    for i, event in enumerate(events):
        digest = digests.get(event.entry, "") if event.kind in ("posted", "revised") else ""  # type: ignore[arg-type]
        previous = link(previous, event.run, event.seq, event.cycle, event.kind, event.entry,
                        event.source, event.activation, texts[i], digest)
        hashes.append(previous)
    return pa.Table.from_arrays([
        pa.array(run, pa.int32()), pa.array(seq, pa.int64()), pa.array(cycle, pa.int32()),
        pa.array(kind, pa.string()), pa.array(entry, pa.int64()), pa.array(source, pa.string()),
        pa.array(activation, pa.int64()), pa.array(texts, pa.string()), pa.array(hashes, pa.string()),
    ], schema=_EVENT_SCHEMA), previous


def _activation_table(run: int, acts: list[Any]) -> pa.Table:
    """Columns of ``bb_activation`` read straight off the activation objects."""
    n = len(acts)
    return pa.Table.from_arrays([
        pa.array([run] * n, pa.int32()),
        pa.array([a.id for a in acts], pa.int64()),
        pa.array([a.source.name for a in acts], pa.string()),
        pa.array([f"[{t[0].id}]" if len(t := a.triggers) == 1 else _trigger_list(t) for a in acts], pa.string()),
        pa.array([a.rating for a in acts], pa.float64()),
        pa.array([a.state for a in acts], pa.string()),
        pa.array([a.attempts for a in acts], pa.int32()),
        pa.array([a.error for a in acts], pa.string()),
        pa.array([a.queued_cycle for a in acts], pa.int32()),
        pa.array([a.cycle for a in acts], pa.int32()),
        pa.array([a.seconds for a in acts], pa.float64()),
        pa.array([None if not (p := a.produced) else f"[{p[0]}]" if len(p) == 1 else _id_list(p)
                  for a in acts], pa.string()),
        pa.array([a.started for a in acts], pa.float64()),
    ], schema=_ACTIVATION_SCHEMA)


def _context_table(run: int, contexts: list[Context]) -> pa.Table:
    cols = list(zip(*contexts))
    return pa.table({
        "run": pa.array([run] * len(contexts), pa.int32()), "id": pa.array(cols[0], pa.int32()),
        "parent": pa.array(cols[1], pa.int32()), "label": pa.array(cols[2], pa.string()),
        "status": pa.array(cols[3], pa.string()), "depth": pa.array(cols[4], pa.int32()),
        "alternatives": pa.array(cols[5], pa.int32()), "confidence": pa.array(cols[6], pa.float64()),
        "cycle": pa.array(cols[7], pa.int32()),
    })


_VISIBLE_MACRO = """
CREATE OR REPLACE TEMP MACRO visible_entries(ctx) AS TABLE
WITH RECURSIVE chain(id, depth) AS (
    SELECT CAST(ctx AS INTEGER), 0
    UNION ALL
    SELECT c.parent, chain.depth + 1 FROM bb_context c JOIN chain ON c.id = chain.id
    WHERE c.run = {run} AND chain.id <> 0
), ranked AS (
    SELECT e.*, chain.depth AS _depth,
           min(chain.depth) OVER (PARTITION BY e.space, coalesce(e.key, '#' || e.id)) AS _nearest
    FROM bb_entry e JOIN chain ON e.context = chain.id
    WHERE e.run = {run}
)
SELECT * EXCLUDE (_depth, _nearest) FROM ranked WHERE _depth = _nearest
"""


_RUN_VIEWS = {"entries": "bb_entry", "events": "bb_event", "activations": "bb_activation", "contexts": "bb_context"}


def _make_sandbox(bb: Blackboard, scope: str) -> Sandbox:
    """The sandbox of a blackboard: ``run`` exposes this run's entries, events and
    activations (a knowledge source's view); ``file`` also its contexts, the
    ``bb_*`` tables of the whole file and ``visible_entries`` (a read-only handle)."""
    run = bb.run_id

    def provide(name: str) -> pa.Table:
        con = bb._live()
        if name in _RUN_VIEWS:
            return con.sql(f"SELECT * FROM {_RUN_VIEWS[name]} WHERE run = {run}").to_arrow_table()
        return con.sql(f"SELECT * FROM {name}").to_arrow_table()

    if scope == "run":
        return Sandbox(("entries", "events", "activations"), provide)
    tables = [str(r[0]) for r in bb._live().execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name LIKE 'bb\\_%' ESCAPE '\\'").fetchall()]
    return Sandbox([*_RUN_VIEWS, *tables], provide,
                   macros={"visible_entries": _VISIBLE_MACRO.format(run=run)},
                   macro_needs={"visible_entries": ("bb_context", "bb_entry")})


def _trigger_list(triggers: tuple[Any, ...]) -> str:
    return "[" + ",".join(str(t.id) for t in triggers) + "]"


def _id_list(ids: tuple[int, ...]) -> str:
    """JSON text of a tuple of ids, without the cost of json.dumps."""
    if not ids:
        return "[]"
    if len(ids) == 1:
        return f"[{ids[0]}]"
    return "[" + ",".join(map(str, ids)) + "]"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def read_runs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The runs stored in a blackboard file, with their figures, without opening a run."""
    target = os.fspath(path)
    if not Path(target).is_file():
        raise BlackboardFileError(target, "no such file")
    try:
        con = _connect(target, read_only=True)
    except _NeverInitialised:
        return []  # no run was ever stored in it
    try:
        rel = con.sql(
            "SELECT r.id, r.name, r.state, r.outcome, r.cycles, r.activations, "
            "(SELECT count(*) FROM bb_entry e WHERE e.run = r.id) AS entries, "
            "(SELECT count(*) FROM bb_event v WHERE v.run = r.id) AS events, "
            "r.created_at, r.finished_at, r.problem FROM bb_run r ORDER BY r.id"
        )
        runs = rel.to_arrow_table().to_pylist()
        for r in runs:
            r["problem"] = json.loads(r["problem"]) if r["problem"] else None
    except (duckdb.Error, ValueError) as exc:
        raise BlackboardFileError(target, f"its runs could not be read; the file may be damaged ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()
    return runs


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Check the hash chains of every run in a blackboard file (see ``_chain``)."""
    target = os.fspath(path)
    if not Path(target).is_file():
        raise BlackboardFileError(target, "no such file")
    con = _connect(target, read_only=True)
    try:
        return verify_connection(con, target)
    except duckdb.Error as exc:
        raise BlackboardFileError(target, f"cannot read it to verify ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()


class RunArchive:
    """A blackboard file that whole runs are added to (batch runs merge here).

    DuckDB files have a single writer: batch workers solve in memory, export
    their run (:meth:`Blackboard.export_run`) and the parent adds it here
    under a fresh run id, with its batch record, in one transaction.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        creating = not os.path.exists(self.path)
        self._con: duckdb.DuckDBPyConnection | None = _connect(self.path)
        if creating:  # the schema is committed as the file gets its name (see _publish)
            self._con = _publish(self._con, self.path)

    def add_run(self, tables: Mapping[str, pa.Table], record: Mapping[str, Any]) -> int:
        """Store an exported run under a new run id, and its ``bb_batch`` record; returns the id."""
        con = self._live()
        try:
            con.begin()
            (run_id,) = _one(con.execute("SELECT nextval('bb_run_id')"))
            for name in ("bb_run", "bb_entry", "bb_event", "bb_activation", "bb_context"):
                table = tables.get(name)
                if table is None or table.num_rows == 0:
                    continue
                column = "id" if name == "bb_run" else "run"
                _bb_rows = table.set_column(table.column_names.index(column), column,
                                            pa.array([run_id] * table.num_rows, table.schema.field(column).type))
                con.execute(f"INSERT INTO {name} SELECT * FROM _bb_rows")
            self._record(con, {**record, "run": run_id})
            con.commit()
        except duckdb.Error as exc:
            con.rollback()
            raise BlackboardFileError(self.path, f"storing a run failed: {exc}") from None
        return int(run_id)

    def add_record(self, record: Mapping[str, Any]) -> None:
        """A batch record without a run (a problem that could not be run)."""
        con = self._live()
        con.begin()
        self._record(con, record)
        con.commit()

    def _record(self, con: duckdb.DuckDBPyConnection, record: Mapping[str, Any]) -> None:
        con.execute("DELETE FROM bb_batch WHERE batch = ? AND item = ?", [record["batch"], record["item"]])
        con.execute(
            "INSERT INTO bb_batch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record["batch"], record["item"], record["domain"], record["problem"], record["status"],
             record["seconds"], record["activations"], record.get("run"),
             json.dumps(record.get("result"), default=str), record.get("worker"), _now()],
        )

    def done(self, batch: str) -> dict[int, dict[str, Any]]:
        """The finished items of a batch: item -> its stored result."""
        rows = self._live().execute(
            "SELECT item, result FROM bb_batch WHERE batch = ?", [batch]).fetchall()
        return {int(item): json.loads(result) for item, result in rows}

    def sql(self, query: str, params: Any = None) -> pa.Table:
        try:
            relation = self._live().sql(query, params=params)
        except duckdb.Error as exc:
            raise QueryError(query, str(exc).splitlines()[0]) from None
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> RunArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise ClosedBlackboardError()
        return self._con
