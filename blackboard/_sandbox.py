"""The SQL sandbox: untrusted SELECTs run where only the run's own rows exist.

Knowledge sources (``view.sql``) and read-only handles (``Blackboard(path,
read_only=True).sql``, which a served web page may feed) run SQL written by
someone other than the blackboard's owner. Matching table names in the parsed
statement cannot make that safe: scoping rules (CTEs, lateral joins, macros,
replacement scans of file names) decide what a name means, and DuckDB's scalar
functions reach settings. So such SQL runs on a separate in-memory DuckDB
database that holds nothing but Arrow copies of the rows it may see, locked
down before the first query:

- ``enable_external_access = false``: no file, directory or URL (reads,
  replacement scans such as ``FROM 'x.csv'``, ``glob``, ``ATTACH``, ``COPY``,
  ``EXPORT DATABASE``, ``INSTALL``), no Python replacement scans;
- ``autoinstall_known_extensions`` and ``autoload_known_extensions`` off: no
  extension arrives behind a function name;
- ``temp_directory`` and ``secret_directory`` emptied first, so
  ``current_setting`` shows no path of the machine;
- ``lock_configuration = true``: no ``SET`` or ``PRAGMA`` changes any of it.

The statement runs only if DuckDB's own parser classifies it as exactly one
SELECT, and the parsed statement object is what executes (no second parse).
A deadline interrupts the query (``connection.interrupt()``) from a timer
thread, so a query that never ends stops at its source's timeout. One
connection per sandbox, used by one query at a time (a lock): the tables it
exposes are registered once per change of the blackboard, not per query.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from ._errors import BlackboardError, QueryError

# Order matters: the directories can only be changed while external access is on.
LOCKDOWN = (
    "SET temp_directory = ''",
    "SET secret_directory = ''",
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET python_enable_replacements = false",
    "SET lock_configuration = true",
)

Refuse = Callable[[str, str], BlackboardError]


class Sandbox:
    """A locked-down in-memory DuckDB that exposes named Arrow tables, and nothing else.

    ``provide(name)`` returns the Arrow table behind an exposed name; it is
    called again only when ``generation`` changes (the caller bumps it when
    the rows behind the names may have changed). ``macros`` are table macros
    (SQL text) created once, before the first query; ``macro_needs`` says
    which exposed names each reads.
    """

    def __init__(self, exposed: Sequence[str], provide: Callable[[str], pa.Table], *,
                 macros: Mapping[str, str] | None = None,
                 macro_needs: Mapping[str, Sequence[str]] | None = None) -> None:
        self._exposed = frozenset(name.lower() for name in exposed)
        self._provide = provide
        self._macro_needs = {k.lower(): tuple(v) for k, v in (macro_needs or {}).items()}
        self._con = duckdb.connect(":memory:")
        for statement in LOCKDOWN:
            self._con.execute(statement)
        self._macros = {k.lower(): v for k, v in (macros or {}).items()}  # created at first use (they bind their tables)
        self._registered: dict[str, int] = {}
        self._wanted_macros: set[str] = set()
        self._names_of: dict[str, set[str]] = {}  # query text -> the exposed names it mentions
        self._lock = threading.Lock()  # one query at a time on the connection
        self._state = threading.Lock()  # guards _running against the interrupting timer
        self._running: object | None = None

    def run(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None, *, generation: int,
            deadline: float | None = None, refuse: Refuse | None = None) -> pa.Table:
        """Run one SELECT; ``deadline`` (``time.monotonic()``) interrupts it; errors are :class:`QueryError`."""
        if not isinstance(query, str):
            raise QueryError(repr(query), "a query must be a string")
        refuse = refuse or QueryError
        with self._lock:
            con = self._con
            try:
                statements = con.extract_statements(query)
            except duckdb.Error as exc:
                raise QueryError(query, str(exc).splitlines()[0]) from None
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                raise refuse(query, "only one SELECT statement at a time may run here")
            self._expose(query, generation)
            if deadline is not None and deadline <= time.monotonic():
                raise QueryError(query, "interrupted: its time limit had already passed")
            token = object()
            timer = None
            with self._state:
                self._running = token
            if deadline is not None:
                timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._interrupt, (token,))
                timer.daemon = True
                timer.start()
            try:
                relation = con.sql(statements[0], params=params)
                return relation.to_arrow_table() if relation is not None else pa.table({})
            except duckdb.InterruptException:
                raise QueryError(query, "interrupted: it ran past its source's timeout") from None
            except duckdb.PermissionException as exc:
                raise QueryError(query, "refused by the SQL sandbox, which reads no file or URL and loads no extension "
                                        f"({str(exc).splitlines()[0]})") from None
            except duckdb.Error as exc:
                raise QueryError(query, str(exc).splitlines()[0]) from None
            except (TypeError, ValueError, RuntimeError) as exc:
                raise QueryError(query, f"bad parameters: {exc}") from None
            finally:
                with self._state:
                    self._running = None
                if timer is not None:
                    timer.cancel()

    def interrupt(self) -> None:
        """Stop the query running now, if any (it raises :class:`QueryError`)."""
        with self._state:
            if self._running is not None:
                self._con.interrupt()

    def _interrupt(self, token: object) -> None:
        with self._state:
            if self._running is token:  # never a later query of another caller
                self._con.interrupt()

    def _expose(self, query: str, generation: int) -> None:
        """Register (again, when stale) the exposed tables the statement names."""
        wanted = self._named(query)
        stale = [name for name, seen in self._registered.items() if seen != generation]
        for name in stale:  # a stale name must fail, not answer from old rows, wherever it is named
            self._con.unregister(name)
            del self._registered[name]
        for name in sorted(wanted):
            if self._registered.get(name) != generation:
                self._con.register(name, self._provide(name))
                self._registered[name] = generation
        for macro, text in list(self._macros.items()):
            if all(n in self._registered for n in self._macro_needs.get(macro, ())) and macro in self._wanted_macros:
                self._con.execute(text)
                del self._macros[macro]

    def _named(self, query: str) -> set[str]:
        """Exposed names the statement mentions (all of them when the parse says nothing)."""
        known = self._names_of.get(query)
        if known is None:
            known = self._names_of[query] = self._parse_names(query)
            if len(self._names_of) > 512:  # a source that builds its SQL anew each call
                self._names_of.pop(next(iter(self._names_of)))
        return known

    def _parse_names(self, query: str) -> set[str]:
        try:
            rows = self._con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()
            tree = json.loads(str(rows[0][0])) if rows else {"error": True}
        except (duckdb.Error, ValueError):
            tree = {"error": True}
        if tree.get("error"):
            return set(self._exposed)
        names: set[str] = set()
        for node in _nodes(tree):
            kind = node.get("type")
            if kind == "BASE_TABLE":
                names.add(str(node.get("table_name", "")).lower())
            elif kind in ("TABLE_FUNCTION", "FUNCTION"):
                fn = node.get("function") if kind == "TABLE_FUNCTION" else node
                fname = str((fn or {}).get("function_name", "")).lower()
                names.update(n.lower() for n in self._macro_needs.get(fname, ()))
                if fname in self._macros:
                    self._wanted_macros.add(fname)
        return names & self._exposed

    def close(self) -> None:
        self.interrupt()
        with self._lock:
            self._con.close()


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
