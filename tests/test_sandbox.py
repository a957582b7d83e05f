"""The SQL sandbox: an action's view.sql, and a read-only handle's sql, reach only the run's own rows.

Every attack is tried twice: through ``ReadView.sql`` (with its early, parse-based
refusal) and through ``Blackboard.sandboxed_sql`` directly, which skips that
check, so the tests show the boundary holds by construction, not by matching.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blackboard import Blackboard, BlackboardFileError, QueryError, ReadOnlyError, verify
from controller import Controller
from knowledge_sources import ReadView, knowledge_source, post

SECRET = "TOPSECRET-7f3a"
OTHER_RUN = "secret of run 1"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    """A CSV, a JSON and a Parquet file holding SECRET, and a blackboard file with two runs."""
    csv = tmp_path / "secrets.csv"
    csv.write_text(f"s\n{SECRET}\n")
    js = tmp_path / "secrets.json"
    js.write_text(json.dumps([{"s": SECRET}]))
    parquet = tmp_path / "secrets.parquet"
    pq.write_table(pa.table({"s": [SECRET]}), parquet)
    db = tmp_path / "b.duckdb"
    with Blackboard(db) as first:
        first.post("s", OTHER_RUN, key="k")
    return {"csv": str(csv), "json": str(js), "parquet": str(parquet), "db": str(db), "tmp": str(tmp_path)}


@pytest.fixture()
def board(files: dict[str, str]) -> Iterator[Blackboard]:
    """Run 2 of the file: one entry of its own."""
    with Blackboard(files["db"]) as bb:
        bb.post("s", "mine", key="k")
        yield bb


def _leaks(result: Any, files: dict[str, str]) -> bool:
    text = str(result.to_pylist())
    return SECRET in text or OTHER_RUN in text or files["tmp"] in text or str(Path.home()) + "/" in text


def _via(board: Blackboard, how: str) -> Callable[[str], Any]:
    if how == "view":
        return ReadView(board).sql
    return board.sandboxed_sql  # no parse check at all: the sandbox alone


_ESCAPES = [
    # the three of the issue
    "SELECT * FROM (WITH bb_entry AS (SELECT 1 AS a) SELECT a FROM bb_entry) t, (SELECT count(*) AS n, list(value) AS v FROM bb_entry) u",
    'SELECT * FROM (WITH "{csv}" AS (SELECT 1 AS a) SELECT a FROM "{csv}") t, (SELECT * FROM \'{csv}\') u',
    # scoping tricks
    "WITH a AS (WITH bb_entry AS (SELECT 1 AS x) SELECT * FROM bb_entry) SELECT * FROM a, bb_entry",
    "SELECT * FROM entries, LATERAL (SELECT list(value) AS v FROM bb_entry WHERE bb_entry.id = entries.id) t",
    "WITH RECURSIVE bb_entry(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM bb_entry WHERE n < 3) "
    "SELECT * FROM (SELECT * FROM bb_entry) x, (SELECT value FROM main.bb_entry) y",
    "SELECT value FROM /* entries */ bb_entry -- entries",
    'SELECT value FROM "BB_ENTRY"',
    'SELECT value FROM "bb_entry"',
    "SELECT value FROM bb_\u0435ntry",  # a Cyrillic e
    'SELECT value FROM "entr\u0456es"',  # a Cyrillic i
    "SELECT value FROM memory.main.bb_entry",
    "FROM bb_entry SELECT value",
    "FROM '{csv}'",
    "PIVOT bb_entry ON space USING list(value)",
    "PIVOT '{csv}' ON s IN ('x') USING count(*)",
    "SELECT * FROM (PIVOT (SELECT * FROM '{parquet}') ON s IN ('{secret}') USING count(*))",
    "SUMMARIZE bb_entry",
    "SUMMARIZE SELECT * FROM '{csv}'",
    "SELECT value FROM query_table('bb_' || 'entry')",
    "SELECT * FROM query('SELECT * FROM ''{csv}''')",
    # files of each format, as replacement scans and as table functions
    "SELECT * FROM '{csv}'",
    "SELECT * FROM '{json}'",
    "SELECT * FROM '{parquet}'",
    "SELECT * FROM read_csv_auto('{csv}')",
    "SELECT * FROM read_json_auto('{json}')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM read_text('{csv}')",
    "SELECT * FROM glob('{tmp}/*')",
    "SELECT * FROM sniff_csv('{csv}')",
    "SELECT * FROM 'https://example.com/secrets.csv'",
    # statements that are not a SELECT
    "ATTACH '{db}' AS other",
    "ATTACH '{tmp}/new.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET threads = 1",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "COPY (SELECT * FROM entries) TO '{tmp}/out.csv'",
    "EXPORT DATABASE '{tmp}/exported'",
    "SELECT 1; SELECT * FROM '{csv}'",
    # settings and the machine
    "SELECT current_setting('temp_directory') AS t",
    "SELECT current_setting('home_directory') AS h, current_setting('secret_directory') AS s",
    "SELECT current_setting('extension_directory') AS e",
    "SELECT name, value FROM duckdb_settings()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_extensions()",
]


@pytest.mark.parametrize("how", ["view", "sandbox"])
@pytest.mark.parametrize("template", _ESCAPES)
def test_no_escape_from_the_view(board: Blackboard, files: dict[str, str], template: str, how: str) -> None:
    """Each trick either raises QueryError or returns nothing of other runs, files or the machine; no file appears."""
    query = template.format(secret=SECRET, **files)
    before = sorted(p.name for p in Path(files["tmp"]).iterdir())
    try:
        result = _via(board, how)(query)
    except QueryError:
        pass
    else:
        assert not _leaks(result, files), result.to_pylist()
    assert sorted(p.name for p in Path(files["tmp"]).iterdir()) == before
    assert board.sql("SELECT count(*) AS n FROM bb_entry").to_pylist() == [{"n": 2}]
    assert _via(board, how)("SELECT value FROM entries").to_pylist() == [{"value": '"mine"'}]


@pytest.mark.parametrize("template", [t for t in _ESCAPES if "bb_" not in t and "entr\u0456es" not in t])
def test_no_escape_from_a_read_only_handle(board: Blackboard, files: dict[str, str], template: str) -> None:
    """A read-only handle's sql sees the file's runs, but no other file, URL, extension or machine path."""
    board.close()
    query = template.format(secret=SECRET, **files)
    with Blackboard(files["db"], read_only=True) as reader:
        try:
            result = reader.sql(query)
        except (QueryError, ReadOnlyError):
            pass
        else:
            text = str(result.to_pylist())
            assert SECRET not in text and files["tmp"] not in text and str(Path.home()) + "/" not in text
        assert sorted(reader.sql("SELECT value FROM bb_entry").column("value").to_pylist()) == sorted([f'"{OTHER_RUN}"', '"mine"'])
        assert reader.sql("SELECT count(*) AS n FROM visible_entries(0)").to_pylist() == [{"n": 1}]


def test_the_sandbox_is_locked_down(board: Blackboard) -> None:
    """The sandbox reports external access off, extensions not auto-loaded, its configuration locked."""
    row = board.sandboxed_sql(
        "SELECT current_setting('enable_external_access') AS ext, current_setting('autoload_known_extensions') AS auto, "
        "current_setting('autoinstall_known_extensions') AS inst, current_setting('lock_configuration') AS locked"
    ).to_pylist()
    assert row == [{"ext": False, "auto": False, "inst": False, "locked": True}]


def test_the_view_sees_new_rows_and_the_owner_sees_everything(board: Blackboard) -> None:
    """The sandbox follows the blackboard (a new post shows); the owner's own bb.sql still reads every run."""
    view = ReadView(board)
    assert view.sql("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 1}]
    board.post("s", "more", key="j")
    assert view.sql("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 2}]
    assert view.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 2}]
    assert board.sql("SELECT count(*) AS n FROM bb_entry").to_pylist() == [{"n": 3}]


_FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_query_that_never_ends_is_stopped_by_the_timeout(kind: str) -> None:
    """An action's endless query is interrupted at the source's timeout; the activation fails and the run goes on."""
    stopped = threading.Event()
    errors: list[str] = []

    def endless(view: ReadView) -> None:
        try:
            view.sql(_FOREVER)
        except QueryError as exc:
            errors.append(str(exc))
            stopped.set()
            raise

    if kind == "sync":
        @knowledge_source(watches="s", writes="out", timeout=0.5, name="endless")
        def hang(entry, view):  # type: ignore[no-untyped-def]
            endless(view)
    else:
        @knowledge_source(watches="s", writes="out", timeout=0.5, name="endless")
        async def hang(entry, view):  # type: ignore[no-untyped-def]
            endless(view)

    @knowledge_source(watches="s", writes="out")
    def goes_on(entry, view):  # type: ignore[no-untyped-def]
        return post("out", view.sql("SELECT count(*) AS n FROM entries").column("n").to_pylist()[0])

    with Blackboard(spaces=["s", "out"]) as bb:
        bb.post("s", 1)
        result = Controller(bb, [hang, goes_on]).run()
        assert stopped.wait(60), "the endless query was never interrupted"
        assert "interrupted" in errors[0]
        assert result.failed == 1 and [e.value for e in bb.entries("out")] == [1]
        assert ReadView(bb).sql("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 2}]


# ------------------------------------------------ generated SELECTs keep working
_COLUMNS = ["id", "space", "key", "value", "confidence", "status", "source", "cycle", "context"]
_EVENT_COLUMNS = ["seq", "cycle", "kind", "entry", "source"]


@st.composite
def selects(draw: st.DrawFn) -> str:
    """A random SELECT over entries (optionally joined to events), with filters, grouping and ordering."""
    cols = draw(st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=4, unique=True))
    where = draw(st.sampled_from(["", "WHERE confidence > 0.5", "WHERE space = 's'", "WHERE key IS NOT NULL",
                                  "WHERE id % 2 = 0", "WHERE status = 'active' AND cycle >= 0"]))
    shape = draw(st.sampled_from(["plain", "group", "cte", "join", "subquery", "from_first", "window", "union"]))
    listed = ", ".join(cols)
    if shape == "group":
        return f"SELECT {cols[0]}, count(*) AS n, max(id) AS m FROM entries {where} GROUP BY {cols[0]}"
    if shape == "cte":
        return f"WITH x AS (SELECT {listed} FROM entries {where}) SELECT * FROM x"
    if shape == "join":
        ev = draw(st.sampled_from(_EVENT_COLUMNS))
        return f"SELECT e.id, v.{ev} FROM (SELECT * FROM entries {where}) e JOIN events v ON v.entry = e.id"
    if shape == "subquery":
        return f"SELECT * FROM (SELECT {listed} FROM entries {where}) t, (SELECT count(*) AS a FROM activations) u"
    if shape == "from_first":
        return f"FROM entries SELECT {listed} {where}"
    if shape == "window":
        return f"SELECT id, row_number() OVER (PARTITION BY key ORDER BY confidence, id) AS r FROM entries {where}"
    if shape == "union":
        return f"SELECT {cols[0]} FROM entries {where} UNION ALL SELECT {cols[0]} FROM entries"
    limit = draw(st.sampled_from(["", " LIMIT 3"]))
    return f"SELECT {listed} FROM entries {where} ORDER BY id{limit}"


@pytest.fixture(scope="module")
def busy() -> Iterator[Blackboard]:
    """A memory blackboard with a small run: entries in two spaces, revisions, events and activations."""
    @knowledge_source(watches="s", writes=["s", "t"], when="n < 4")
    def step(entry, view):  # type: ignore[no-untyped-def]
        return [post("s", {"n": entry.value["n"] + 1}, key=f"k{entry.value['n'] % 2}", confidence=0.3 + 0.1 * entry.value["n"]),
                post("t", entry.value["n"])]

    bb = Blackboard(spaces=["s", "t"])
    bb.post("s", {"n": 0}, key="k0", confidence=0.9)
    Controller(bb, [step]).run()
    yield bb
    bb.close()


def _rows(table: pa.Table) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in table.to_pylist())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=selects())
def test_generated_selects_over_the_views_keep_working(busy: Blackboard, query: str) -> None:
    """A generated SELECT over entries, events and activations gives the view exactly what the owner's SQL gives."""
    assert _rows(ReadView(busy).sql(query)) == _rows(busy.sql(query))


# ------------------------------------------------------------ the hash chain and the file
def test_verify_detects_tail_truncation(tmp_path: Path) -> None:
    """Removing the last events of a run (only them) breaks verify, which names the run's head."""
    path = tmp_path / "chain.duckdb"
    with Blackboard(path) as bb:
        for n in range(5):
            bb.post("s", n)
    assert verify(path).ok
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM bb_event WHERE seq > 3")
    con.close()
    report = verify(path)
    assert not report.ok and report.broken[0].seq is None and "head" in report.broken[0].problem
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM bb_event")
    con.close()
    assert not verify(path).ok  # all of them: the head still names a last event


_WRITER = textwrap.dedent("""
    import sys
    from blackboard import Blackboard
    bb = Blackboard(sys.argv[1], run=1)
    bb.post("s", "first")
    bb.flush()
    print("ready", flush=True)
    sys.stdin.readline()
    bb.post("s", "second")
    bb.close()
    print("done", flush=True)
""")


def test_a_second_writer_process_gets_a_clear_error_and_nothing_is_lost(tmp_path: Path) -> None:
    """While one process writes a file, opening it for writing elsewhere raises BlackboardFileError naming the file; nothing is lost."""
    path = tmp_path / "shared.duckdb"
    with Blackboard(path) as bb:
        bb.post("s", "zero")
    root = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=root, env={"PYTHONPATH": root, "PATH": ""})
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(BlackboardFileError, match="open in another process") as refused:
            Blackboard(path, run=1)
        assert str(path) in str(refused.value)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(60)
        child.stdout.close()  # type: ignore[union-attr]
    assert child.returncode == 0
    with Blackboard(path, run=1, read_only=True) as reader:
        assert [e.value for e in reader.entries("s")] == ["zero", "first", "second"]
    assert verify(path).ok
