"""Edge cases found by reviewing the observability, read-only and executor work."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
import pyarrow as pa
import pytest

matplotlib.use("Agg")

from conftest import as_format_1

from blackboard import Blackboard, BlackboardFileError, ReadOnlyError, ValidationError
from controller import (
    ConfigurationError,
    Controller,
    ProcessExecutor,
    ProgressBar,
    explain,
    plot_confidence,
    plot_provenance,
    plot_timeline,
)
from knowledge_sources import (
    DuplicateSourceError,
    KnowledgeSource,
    PreconditionError,
    compile_rule,
    knowledge_source,
    post,
)


@knowledge_source(watches="number", writes="fact", when="n > 1")
def note(entry: Any) -> Any:
    """Notes each number above one."""
    return post("fact", f"{entry.value['n']} seen", supports=[entry.id])


def _file(path: Path) -> int:
    with Blackboard(path, spaces=["number", "fact"]) as bb:
        for n in range(4):
            bb.post("number", {"n": n})
        Controller(bb, [note]).run()
        return bb.run_id


def test_read_only_sql_refuses_writes_even_beside_a_writer(tmp_path: Path) -> None:
    """A read-only board opened while this process writes the file runs SELECTs only; DELETE, DROP, nextval are refused."""
    path = tmp_path / "b.duckdb"
    _file(path)
    with Blackboard(path, run=1) as writer, Blackboard(path, read_only=True) as reader:
        assert reader.sql("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 6}]
        for statement in ("DELETE FROM bb_entry", "DROP TABLE bb_event", "SELECT nextval('bb_run_id')",
                          "SELECT 1; DELETE FROM bb_entry", "CREATE TABLE x (i INT)"):
            with pytest.raises(ReadOnlyError):
                reader.sql(statement)
        with pytest.raises(ReadOnlyError), reader.session():
            pass
        assert writer.sql("SELECT count(*) AS n FROM bb_entry").to_pylist() == [{"n": 6}]


def test_opening_for_writing_beside_a_reader_says_why(tmp_path: Path) -> None:
    """Opening a file for writing while this process holds it read-only names that, not another process."""
    path = tmp_path / "b.duckdb"
    _file(path)
    with Blackboard(path, read_only=True), pytest.raises(BlackboardFileError, match="this process has it open read-only"):
        Blackboard(path, run=1)


@pytest.mark.parametrize("text", ["1" + "0" * 5000, "1" + "0" * 400 + ".0", "[" + "9" * 320 + ".5]"])
def test_imported_numbers_python_cannot_read_back_are_refused(text: str) -> None:
    """Digit runs past Python's int limit or float range are refused by import_arrow, and nothing is imported."""
    bb = Blackboard(spaces=["s"])
    with pytest.raises(ValidationError, match="strict readers refuse"):
        bb.import_arrow(pa.table({"space": ["s"], "value": [text]}))
    assert len(bb) == 0


@pytest.mark.parametrize("rule", [r"s =~ '\'?(a|a)+$'", "s =~ ('(a|' + 'a)+$')", "x == 1 and (s =~~ '(x+x+)+y' or t == 2)"])
def test_catastrophic_patterns_are_found_in_the_parsed_rule(rule: str) -> None:
    """Escaped quotes, concatenated literals and nested comparisons do not hide a catastrophic regex."""
    with pytest.raises(PreconditionError, match="could take for ever"):
        compile_rule("t", rule)


def test_factory_made_sources_and_instances_of_one_class_still_clash() -> None:
    """Two sources from one factory, or two instances of one class, under one name are refused, not swapped."""

    def make(limit: int) -> KnowledgeSource:
        @knowledge_source(watches="number", writes="fact", when=f"n > {limit}", name="flag")
        def flag(entry: Any) -> Any:
            return post("fact", str(limit))

        return flag  # type: ignore[no-any-return]

    bb = Blackboard(spaces=["number", "fact"])
    controller = Controller(bb, [make(1)])
    with pytest.raises(DuplicateSourceError):
        controller.register(make(100))

    class Counter(KnowledgeSource):
        watches = "number"

        def action(self, entry: Any) -> None:
            return None

    controller.register(Counter(name="counter"))
    with pytest.raises(DuplicateSourceError):
        controller.register(Counter(name="counter"))


def test_a_misspelt_source_in_the_executor_mapping_is_refused() -> None:
    """executor={'halv': ...} naming no registered source raises ConfigurationError when the run starts."""
    bb = Blackboard(spaces=["number", "fact"])
    with pytest.raises(ConfigurationError, match="halv"):
        Controller(bb, [note], executor={"halv": "loop"}).run()


def test_timeline_of_a_format_1_file_read_as_it_is(tmp_path: Path) -> None:
    """plot_timeline on a format-1 file opened read-only falls back to cycles instead of failing."""
    path = tmp_path / "v1.duckdb"
    _file(path)
    as_format_1(path)
    with Blackboard(path, read_only=True) as bb:
        assert plot_timeline(bb).get_xlabel() == "cycle"


def test_a_bar_started_before_another_instrument_refuses_is_closed() -> None:
    """When a later instrument refuses to start, those already started are told and close (no bar left open)."""
    bb = Blackboard(spaces=["number", "fact"])
    first = ProgressBar(file=io.StringIO())
    controller = Controller(bb, [note], instruments=[first])
    with pytest.raises(ConfigurationError, match="nope"):
        controller.run(progress=ProgressBar("nope", file=io.StringIO()))
    assert first.bar is None


def test_undeclared_spaces_are_shown() -> None:
    """On a blackboard without declared spaces, the spaces used are displayed, listed and plotted."""
    bb = Blackboard()
    bb.post("x", {"n": 1}, source="user", key="k")
    assert bb.space_names() == ["x"] and bb.space("x").best is not None
    assert "x" in str(bb) and "<b>x</b>" in bb._repr_html_()
    assert plot_confidence(bb, "x").get_title().startswith("leading hypotheses in 'x'")


@pytest.mark.parametrize("call", [
    lambda bb: plot_confidence(bb, top="3"),
    lambda bb: plot_confidence(bb, top=0),
    lambda bb: plot_provenance(bb, 1, depth="2"),
    lambda bb: explain("x", 1),  # type: ignore[arg-type]
    lambda bb: ProgressBar(min_interval="x"),  # type: ignore[arg-type]
    lambda bb: ProgressBar(min_interval=float("nan")),
    lambda bb: ProcessExecutor(stateful="no"),  # type: ignore[arg-type]
], ids=["top-str", "top-zero", "depth-str", "explain-type", "interval-str", "interval-nan", "stateful-str"])
def test_wrong_types_to_the_new_calls_are_configuration_errors(call: Any) -> None:
    """Wrong types or values to plots, explain, ProgressBar and executors raise ConfigurationError, naming them."""
    bb = Blackboard(spaces=["number", "fact"])
    bb.post("number", {"n": 2})
    with pytest.raises(ConfigurationError):
        call(bb)
