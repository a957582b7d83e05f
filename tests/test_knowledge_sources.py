"""Declaring knowledge sources: forms, options, preconditions, read views."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest

from blackboard import Blackboard, QueryError, Space
from controller import Controller
from knowledge_sources import (
    DuplicateSourceError,
    KnowledgeSource,
    Post,
    PreconditionError,
    ReadView,
    Retract,
    Revise,
    SourceDefinitionError,
    compile_rule,
    knowledge_source,
    post,
    retract,
    revise,
)


# ====================================================================== forms
def test_decorator_form_with_defaults() -> None:
    """@knowledge_source(...) makes a KnowledgeSource named after the function, described by its docstring."""

    @knowledge_source(watches="token", when="value < 10")
    def relay(entry, view):  # type: ignore[no-untyped-def]
        """Pass the token on."""
        return post("token", entry.value + 1)

    assert isinstance(relay, KnowledgeSource)
    assert relay.name == "relay" and relay.description == "Pass the token on."
    assert relay.watches == ("token",) and relay.writes == ("token",)
    assert relay.events == ("posted",) and relay.on_stale == "obviate"
    assert relay.when == "value < 10" and relay.rule is not None
    assert relay.wants_view and not relay.is_async
    assert "relay" in repr(relay) and "value < 10" in repr(relay)


def test_decorated_source_is_still_callable(bb: Blackboard) -> None:
    """A declared source can be called directly on an entry (with or without a view)."""

    @knowledge_source(watches="n")
    def double(entry):  # type: ignore[no-untyped-def]
        return post("n", entry.value * 2)

    @knowledge_source(watches="n")
    def peek(entry, view):  # type: ignore[no-untyped-def]
        return len(view.find("n"))

    e = bb.post("n", 21)
    assert double(e) == post("n", 42)
    assert not double.wants_view
    assert peek(e, ReadView(bb)) == 1


def test_decorator_without_parentheses_needs_watches() -> None:
    """@knowledge_source on a bare function is refused: a source must watch something."""
    with pytest.raises(SourceDefinitionError, match="watches"):

        @knowledge_source
        def lonely(entry):  # type: ignore[no-untyped-def]
            return None


def test_decorator_with_options_and_explicit_name() -> None:
    """Options given to the decorator are applied, the name can be overridden."""

    @knowledge_source(
        name="custom", watches=["a", "b"], writes="c", events=("posted", "revised"),
        priority=2, on_stale="revalidate", retries=3, retry_on=KeyError, timeout=1.5,
        reliability=0.4, tags=["reviewed"],
    )
    def fn(entry):  # type: ignore[no-untyped-def]
        return None

    assert fn.name == "custom"
    assert fn.watches == ("a", "b") and fn.writes == ("c",)
    assert fn.events == ("posted", "revised")
    assert (fn.priority, fn.on_stale, fn.retries, fn.timeout, fn.reliability) == (2, "revalidate", 3, 1.5, 0.4)
    assert fn.retry_on == (KeyError,)
    assert fn.tags == ("reviewed",)


def test_class_form() -> None:
    """A KnowledgeSource subclass declares options as class attributes and action as a method."""

    class Doubler(KnowledgeSource):
        watches = ("n",)
        when = "value < 100"
        priority = 1.5

        def action(self, entry, view):  # type: ignore[no-untyped-def]
            return post("n", entry.value * 2)

    source = Doubler()
    assert source.name == "Doubler"
    assert source.watches == ("n",) and source.writes == ("n",)
    assert source.priority == 1.5 and source.wants_view
    renamed = Doubler(name="d2", priority=3)
    assert renamed.name == "d2" and renamed.priority == 3


def test_class_form_runs_under_a_controller(bb: Blackboard) -> None:
    """A class-declared source runs end to end (instance state is available to the action)."""

    class Counter(KnowledgeSource):
        watches = "n"
        when = "value < 3"

        def __init__(self, **options: Any) -> None:
            self.calls = 0
            super().__init__(**options)

        def action(self, entry):  # type: ignore[no-untyped-def]
            self.calls += 1
            return post("n", entry.value + 1)

    source = Counter()
    bb.post("n", 0)
    result = Controller(bb, [source]).run()
    assert result.outcome == "quiescent"
    assert source.calls == 3
    assert sorted(e.value for e in bb.entries("n")) == [0, 1, 2, 3]


def test_class_without_action_refused() -> None:
    """A subclass without action() is refused with SourceDefinitionError."""

    class Empty(KnowledgeSource):
        watches = ("n",)

    with pytest.raises(SourceDefinitionError, match="no action"):
        Empty()


def test_sync_and_async_actions(bb: Blackboard) -> None:
    """Sync functions, async functions, generators and async generators all contribute."""

    @knowledge_source(watches="in", writes="out")
    def sync_fn(entry):  # type: ignore[no-untyped-def]
        return post("out", "sync")

    @knowledge_source(watches="in", writes="out")
    async def async_fn(entry):  # type: ignore[no-untyped-def]
        await anyio.sleep(0)
        return post("out", "async")

    @knowledge_source(watches="in", writes="out")
    def gen_fn(entry):  # type: ignore[no-untyped-def]
        yield post("out", "gen-1")
        yield post("out", "gen-2")

    @knowledge_source(watches="in", writes="out")
    async def agen_fn(entry):  # type: ignore[no-untyped-def]
        yield post("out", "agen")

    assert not sync_fn.is_async and not gen_fn.is_async
    assert async_fn.is_async and agen_fn.is_async
    bb.post("in", 1)
    result = Controller(bb, [sync_fn, async_fn, gen_fn, agen_fn]).run()
    assert result.failed == 0
    assert sorted(e.value for e in bb.entries("out")) == ["agen", "async", "gen-1", "gen-2", "sync"]


def test_contribution_builders() -> None:
    """post/revise/retract build Post/Revise/Retract; Entry arguments become ids."""
    with Blackboard() as board:
        e = board.post("s", 1)
        p = post("s", 2, key="k", confidence=0.5, supports=[e], context=3)
        assert isinstance(p, Post)
        assert (p.space, p.value, p.key, p.confidence, p.supports, p.context) == ("s", 2, "k", 0.5, [e], 3)
        r = revise(e, value=5)
        assert isinstance(r, Revise) and r.entry == e.id and r.value == 5
        x = retract(e, "wrong")
        assert isinstance(x, Retract) and (x.entry, x.reason) == (e.id, "wrong")
        assert "Post(" in repr(p) and "Revise(" in repr(r) and "Retract(" in repr(x)


# ============================================================= preconditions
@pytest.mark.parametrize("expression", ["value <", "value == == 3", "(value > 1", "value ~= 'x' and"])
def test_precondition_syntax_error_refused_at_declaration(expression: str) -> None:
    """A precondition that does not parse is refused when declared; the message shows name and expression."""
    with pytest.raises(PreconditionError) as info:

        @knowledge_source(watches="s", when=expression)
        def broken_rule(entry):  # type: ignore[no-untyped-def]
            return None

    message = str(info.value)
    assert "broken_rule" in message
    assert expression in message
    assert info.value.source == "broken_rule"
    assert info.value.expression == expression
    assert isinstance(info.value, SourceDefinitionError)


@pytest.mark.parametrize("expression", ["", "   ", 42])
def test_empty_precondition_refused(expression: Any) -> None:
    """An empty or non-string precondition is refused with PreconditionError."""
    with pytest.raises(PreconditionError):
        knowledge_source(lambda e: None, name="blank", watches="s", when=expression)


def test_unknown_field_refused_at_registration() -> None:
    """With fields declared on the watched space, an unknown symbol is refused when the controller registers the source."""
    board = Blackboard(spaces=[Space("cell", fields={"row": int, "col": int})])
    try:

        @knowledge_source(watches="cell", when="rwo == 1 and col > 0")
        def typo(entry):  # type: ignore[no-untyped-def]
            return None

        with pytest.raises(PreconditionError) as info:
            Controller(board, [typo])
        message = str(info.value)
        assert "typo" in message and "rwo" in message and "row" in message
        assert "rwo == 1 and col > 0" in message
    finally:
        board.close()


def test_known_fields_and_metadata_accepted_at_registration() -> None:
    """Declared fields and entry metadata (confidence, source, key...) are accepted."""
    board = Blackboard(spaces=[Space("cell", fields={"row": int, "col": int})])
    try:

        @knowledge_source(watches="cell", when="row == 1 and col > 0 and confidence > 0.5 and source != 'x' and key == null")
        def fine(entry):  # type: ignore[no-untyped-def]
            return None

        controller = Controller(board, [fine])
        assert "fine" in controller.sources
    finally:
        board.close()


def test_fields_unchecked_without_declared_fields(bb: Blackboard) -> None:
    """Without declared fields any symbol is allowed; an entry lacking it simply does not match."""

    @knowledge_source(watches="s", when="missing == 1", writes="out")
    def never(entry):  # type: ignore[no-untyped-def]
        return post("out", 1)

    bb.post("s", {"other": 1})
    result = Controller(bb, [never]).run()
    assert result.activations == 0 and bb.entries("out") == []


def test_watching_an_undeclared_space_refused() -> None:
    """With declared spaces, a source with a precondition that watches or writes elsewhere is refused."""
    board = Blackboard(spaces=["a"])
    try:
        with pytest.raises(SourceDefinitionError, match="watches undeclared"):
            Controller(board, [knowledge_source(lambda e: None, name="w", watches="zzz", when="value > 0")])
        with pytest.raises(SourceDefinitionError, match="writes undeclared"):
            Controller(board, [knowledge_source(lambda e: None, name="x", watches="a", writes="zzz", when="value > 0")])
    finally:
        board.close()


@pytest.mark.parametrize("option", [{"watches": "zzz"}, {"watches": "a", "writes": "zzz"}])
def test_undeclared_space_refused_without_precondition(option: dict[str, Any]) -> None:
    """A source without a precondition that watches or writes an undeclared space is refused too."""
    board = Blackboard(spaces=["a"])
    try:
        with pytest.raises(SourceDefinitionError, match="undeclared"):
            Controller(board, [knowledge_source(lambda e: None, name="plain", **option)])
    finally:
        board.close()


def test_compile_rule_is_public() -> None:
    """compile_rule parses an expression once; bad ones raise PreconditionError naming the owner."""
    rule = compile_rule("goal", "value > 3")
    assert rule.matches({"value": 4}) and not rule.matches({"value": 2})
    with pytest.raises(PreconditionError, match="goal"):
        compile_rule("goal", "value >")


# ================================================================ duplicates
def test_duplicate_names_refused(bb: Blackboard) -> None:
    """Two different sources with one name are refused with DuplicateSourceError, at construction or register()."""
    a = knowledge_source(lambda e: None, name="same", watches="s")
    b = knowledge_source(lambda e: None, name="same", watches="t")
    with pytest.raises(DuplicateSourceError, match="same"):
        Controller(bb, [a, b])
    controller = Controller(bb, [a])
    with pytest.raises(DuplicateSourceError):
        controller.register(b)
    assert controller.sources["same"] is a
    controller.register(b, replace=True)
    assert controller.sources["same"] is b


def test_registering_the_same_object_twice_is_harmless(bb: Blackboard) -> None:
    """Registering one source object twice keeps it once."""
    a = knowledge_source(lambda e: None, name="once", watches="s")
    controller = Controller(bb, [a, a])
    controller.register(a)
    assert list(controller.sources) == ["once"]


# ================================================================== options
_BAD_OPTIONS = [
    pytest.param({}, "watches", id="no-watches"),
    pytest.param({"watches": ()}, "watches", id="empty-watches"),
    pytest.param({"watches": 5}, "watches", id="watches-int"),
    pytest.param({"watches": ["s", ""]}, "watches", id="watches-empty-name"),
    pytest.param({"watches": "s", "on_stale": "ignore"}, "on_stale", id="bad-on-stale"),
    pytest.param({"watches": "s", "retries": -1}, "retries", id="negative-retries"),
    pytest.param({"watches": "s", "retries": 1.5}, "retries", id="float-retries"),
    pytest.param({"watches": "s", "retries": True}, "retries", id="bool-retries"),
    pytest.param({"watches": "s", "timeout": 0}, "timeout", id="zero-timeout"),
    pytest.param({"watches": "s", "timeout": -2}, "timeout", id="negative-timeout"),
    pytest.param({"watches": "s", "priority": "high"}, "priority", id="str-priority"),
    pytest.param({"watches": "s", "reliability": None}, "reliability", id="none-reliability"),
    pytest.param({"watches": "s", "events": ["posted", "exploded"]}, "event", id="unknown-event"),
    pytest.param({"watches": "s", "colour": "red"}, "colour", id="unknown-option"),
    pytest.param({"watches": "s", "name": 7}, "name", id="int-name"),
]


@pytest.mark.parametrize(("options", "word"), _BAD_OPTIONS)
def test_bad_options_refused(options: dict[str, Any], word: str) -> None:
    """Invalid options are refused at declaration with SourceDefinitionError naming the problem."""
    with pytest.raises(SourceDefinitionError, match=word):
        knowledge_source(lambda e: None, **options)


@pytest.mark.parametrize(("options", "word"), _BAD_OPTIONS[:2] + _BAD_OPTIONS[4:6])
def test_bad_class_options_refused(options: dict[str, Any], word: str) -> None:
    """The class form refuses the same bad options, given as class attributes."""
    attrs: dict[str, Any] = dict(options)
    attrs["action"] = lambda self, entry: None
    cls = type("Bad", (KnowledgeSource,), attrs)
    with pytest.raises(SourceDefinitionError, match=word):
        cls()


def test_explicit_empty_name_refused() -> None:
    """An explicitly empty name is refused instead of silently replaced by a private class name."""
    with pytest.raises(SourceDefinitionError, match="name"):
        knowledge_source(lambda e: None, name="", watches="s")


def test_action_without_parameters_refused() -> None:
    """An action that cannot take the triggering entry is refused."""
    with pytest.raises(SourceDefinitionError, match="triggering entry"):
        knowledge_source(lambda: None, name="nullary", watches="s")


def test_fallback_must_be_registered(bb: Blackboard) -> None:
    """A fallback naming an unregistered source is refused at registration."""
    from controller import ConfigurationError

    src = knowledge_source(lambda e: None, name="main", watches="s", fallback="backup")
    with pytest.raises(ConfigurationError, match="backup"):
        Controller(bb, [src])
    backup = knowledge_source(lambda e: None, name="backup", watches="s")
    assert set(Controller(bb, [src, backup]).sources) == {"main", "backup"}


# ================================================================= ReadView
@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ReadView on the second run of a file whose first run holds a secret (shared: tests only read)."""
    path = tmp_path_factory.mktemp("view") / "view.duckdb"
    with Blackboard(path) as first:
        first.post("s", "secret of run 1")
    board = Blackboard(path)
    board.post("s", "mine", key="k")
    yield ReadView(board)
    board.close()


def test_read_view_reads_its_run(view: ReadView) -> None:
    """ReadView reads entries of its own run by id, space, key and SQL."""
    (e,) = view.find("s", "k")
    assert view.get(e.id) == e and view.entries() == [e]
    assert view.run_id == 2 and view.cycle == 0
    table = view.sql("SELECT value FROM entries")
    assert table.column("value").to_pylist() == ['"mine"']
    assert view.sql("WITH x AS (SELECT 1 AS a) SELECT a FROM x").num_rows == 1
    assert view.sql("FROM events").num_rows == 1
    assert view.sql("SELECT count(*) AS n FROM entries WHERE space = ?", ["s"]).column("n").to_pylist() == [1]
    assert view.sql("SELECT 1 AS one;").num_rows == 1
    assert "ReadView" in repr(view)


_WRITES = [
    "INSERT INTO entries VALUES (1)",
    "DELETE FROM entries",
    "UPDATE entries SET value = '1'",
    "DROP VIEW entries",
    "DROP TABLE bb_entry",
    "CREATE TABLE t (x INTEGER)",
    "ALTER TABLE bb_entry ADD COLUMN x INTEGER",
    "ATTACH 'other.duckdb' AS other",
    "COPY entries TO 'out.csv'",
    "PRAGMA enable_profiling",
    "SET threads = 1",
    "CHECKPOINT",
    "SELECT 1; DROP TABLE bb_entry",
    "WITH x AS (SELECT 1) DELETE FROM entries",
    "SELECT * FROM entries; INSERT INTO bb_entry SELECT * FROM bb_entry",
    "BEGIN TRANSACTION",
    "select 1 as a union all select 2; truncate bb_event",
]
_OTHER_RUNS = [
    "SELECT * FROM bb_entry",
    "SELECT * FROM BB_EVENT",
    'SELECT * FROM "bb_activation"',
    "SELECT name FROM bb_run",
    "FROM main.bb_entry",
]


@pytest.mark.parametrize("query", _WRITES + _OTHER_RUNS)
def test_read_view_refuses_writes_and_other_runs(view: ReadView, query: str) -> None:
    """ReadView.sql refuses writes, several statements and the bb_* tables of every run; nothing changes."""
    board = view._bb
    before = board.sql("SELECT count(*) AS n FROM bb_entry").column("n").to_pylist()
    with pytest.raises(QueryError):
        view.sql(query)
    assert board.sql("SELECT count(*) AS n FROM bb_entry").column("n").to_pylist() == before
    assert board.sql("SELECT count(*) AS n FROM entries").column("n").to_pylist() == [1]


@pytest.mark.parametrize(
    "query", ["SELECT value FROM query_table('bb_' || 'entry')", "SELECT value FROM query_table(['bb_e' || 'ntry'])"]
)
def test_read_view_cannot_reach_other_runs_indirectly(view: ReadView, query: str) -> None:
    """A source cannot read another run's entries by building the table name at run time."""
    try:
        rows = view.sql(query).column("value").to_pylist()
    except QueryError:
        return
    assert '"secret of run 1"' not in rows


@pytest.mark.parametrize("word", ["set", "update", "load", "use"])
def test_read_view_allows_keywords_in_string_literals(view: ReadView, word: str) -> None:
    """A read-only query that merely mentions a keyword inside a string literal is allowed."""
    assert view.sql(f"SELECT count(*) AS n FROM entries WHERE key = '{word}'").column("n").to_pylist() == [0]


def test_actions_receive_a_read_view(bb: Blackboard) -> None:
    """An action's second argument is a ReadView (it cannot write through it)."""
    seen: list[Any] = []

    @knowledge_source(watches="s", writes="out")
    def look(entry, view):  # type: ignore[no-untyped-def]
        seen.append(view)
        return post("out", view.sql("SELECT count(*) AS n FROM entries").column("n").to_pylist()[0])

    bb.post("s", 1)
    Controller(bb, [look]).run()
    assert isinstance(seen[0], ReadView)
    assert not hasattr(seen[0], "post")
    assert [e.value for e in bb.entries("out")] == [1]


def test_the_shipped_rule_parser_tables_match_the_installed_rule_engine() -> None:
    """rule-engine's parser was built from the shipped tables: their grammar signature is the installed one's."""
    import rule_engine
    from rule_engine._vendor.ply import yacc
    from rule_engine.parser import Parser

    from knowledge_sources import _rule_parser, _rule_tables

    info = yacc.ParserReflect({k: getattr(Parser(), k) for k in dir(Parser())})
    info.get_all()
    assert _rule_tables._lr_signature == info.signature(), (
        "rule-engine's grammar changed: run python -m knowledge_sources._rule_parser")
    assert _rule_parser.TABLES_MODULE in sys.modules
    assert rule_engine.Rule("value < 3 and name =~ 'a.*'").matches({"value": 1, "name": "abc"})
