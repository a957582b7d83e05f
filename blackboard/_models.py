"""The data model: SQLModel classes mapped to DuckDB tables.

The classes live on a private SQLAlchemy registry, not on SQLModel's shared
``metadata``: re-running a notebook cell, or two blackboards in one process,
never collide with each other or with the user's own SQLModel tables.

The DDL is written from these classes by :func:`create_table_statements`, which writes
the DDL from the columns but leaves out the PRIMARY KEY constraints: a
DuckDB primary-key index made a bulk load of a million entries four times
slower (measured: 0.65 s against 0.17 s), and the store is the only writer
and hands out ids itself, so uniqueness holds without it. The ORM still
knows the keys, so SQLModel sessions work as usual.

The store does not import this module: SQLAlchemy and SQLModel take about a
quarter of a second to import, more than everything else a process does
before its first cycle. It reads the DDL and the column names from
``_schema.py``, which ``python -m blackboard._models`` writes from these
classes; ``tests/test_blackboard.py`` checks that the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Double, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from ._schema import FORMAT_NAME, FORMAT_VERSION


class _Base(SQLModel, registry=registry()):
    pass


class MetaRow(_Base, table=True):
    """Format marker: which program and version wrote this file."""

    __tablename__ = "bb_meta"
    name: str = Field(sa_column=Column(String, primary_key=True))
    value: str = Field(sa_column=Column(String))


class RunRow(_Base, table=True):
    """One run: a problem worked on; one file can hold many."""

    __tablename__ = "bb_run"
    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(sa_column=Column(String))
    problem: str | None = Field(default=None, sa_column=Column(Text))
    config: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(sa_column=Column(String))
    outcome: str | None = Field(default=None, sa_column=Column(String))
    result: str | None = Field(default=None, sa_column=Column(Text))
    cycles: int = Field(default=0, sa_column=Column(Integer))
    activations: int = Field(default=0, sa_column=Column(Integer))
    matched: int = Field(default=0, sa_column=Column(BigInteger))
    head: str = Field(default="", sa_column=Column(String))
    created_at: datetime | None = Field(default=None)
    finished_at: datetime | None = Field(default=None)


class EntryRow(_Base, table=True):
    """An entry: hypothesis or partial result, one version of it."""

    __tablename__ = "bb_entry"
    run: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    space: str = Field(sa_column=Column(String))
    key: str | None = Field(default=None, sa_column=Column(String))
    value: str = Field(sa_column=Column(Text))
    confidence: float = Field(sa_column=Column(Double))
    status: str = Field(sa_column=Column(String))
    source: str = Field(sa_column=Column(String))
    cycle: int = Field(sa_column=Column(Integer))
    context: int = Field(default=0, sa_column=Column(Integer))
    supports: str = Field(default="[]", sa_column=Column(Text))
    revises: int | None = Field(default=None, sa_column=Column(BigInteger))


class EventRow(_Base, table=True):
    """One event of the append-only log."""

    __tablename__ = "bb_event"
    run: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    cycle: int = Field(sa_column=Column(Integer))
    kind: str = Field(sa_column=Column(String))
    entry: int | None = Field(default=None, sa_column=Column(BigInteger))
    source: str | None = Field(default=None, sa_column=Column(String))
    activation: int | None = Field(default=None, sa_column=Column(BigInteger))
    details: str | None = Field(default=None, sa_column=Column(Text))
    hash: str = Field(default="", sa_column=Column(String))


class ActivationRow(_Base, table=True):
    """One activation of a knowledge source (a KSAR) and what became of it."""

    __tablename__ = "bb_activation"
    run: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    source: str = Field(sa_column=Column(String))
    triggers: str = Field(sa_column=Column(Text))
    rating: float = Field(sa_column=Column(Double))
    state: str = Field(sa_column=Column(String))
    attempts: int = Field(default=0, sa_column=Column(Integer))
    error: str | None = Field(default=None, sa_column=Column(Text))
    queued_cycle: int = Field(sa_column=Column(Integer))
    cycle: int | None = Field(default=None, sa_column=Column(Integer))
    seconds: float | None = Field(default=None, sa_column=Column(Double))
    produced: str | None = Field(default=None, sa_column=Column(Text))
    # wall-clock (Unix) seconds when its action started: the run timeline
    started: float | None = Field(default=None, sa_column=Column(Double))


class ContextRow(_Base, table=True):
    """A hypothetical world: inherits its parent's entries and adds its own."""

    __tablename__ = "bb_context"
    run: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    parent: int = Field(sa_column=Column(Integer))
    label: str = Field(default="", sa_column=Column(Text))
    status: str = Field(sa_column=Column(String))
    depth: int = Field(sa_column=Column(Integer))
    alternatives: int = Field(default=1, sa_column=Column(Integer))
    confidence: float = Field(default=1.0, sa_column=Column(Double))
    cycle: int = Field(sa_column=Column(Integer))


class BatchRow(_Base, table=True):
    """One problem of a batch: what became of it, and which run holds its work."""

    __tablename__ = "bb_batch"
    batch: str = Field(sa_column=Column(String, primary_key=True))
    item: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    domain: str = Field(sa_column=Column(String))
    problem: str = Field(sa_column=Column(Text))
    status: str = Field(sa_column=Column(String))
    seconds: float = Field(sa_column=Column(Double))
    activations: int = Field(sa_column=Column(Integer))
    run: int | None = Field(default=None, sa_column=Column(Integer))
    result: str | None = Field(default=None, sa_column=Column(Text))
    worker: str | None = Field(default=None, sa_column=Column(String))
    finished_at: datetime | None = Field(default=None)


TABLES: tuple[type[Any], ...] = (MetaRow, RunRow, EntryRow, EventRow, ActivationRow, ContextRow, BatchRow)
TABLE_NAMES = tuple(t.__tablename__ for t in TABLES)
COLUMNS: dict[str, tuple[str, ...]] = {
    t.__tablename__: tuple(c.name for c in t.__table__.columns) for t in TABLES  # type: ignore[attr-defined]
}


def create_table_statements(dialect: Dialect | None = None) -> list[str]:
    """DDL for every table, from the SQLModel columns, without key indexes."""
    if dialect is None:
        from sqlalchemy.dialects import registry as dialects

        dialect = dialects.load("duckdb")()
    statements = []
    for model in TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        cols = ", ".join(
            f"{c.name} {c.type.compile(dialect=dialect)}" for c in table.columns
        )
        statements.append(f"CREATE TABLE {table.name} ({cols})")
    statements.append("CREATE SEQUENCE bb_run_id START 1")
    return statements


def schema_text() -> str:
    """The text of ``_schema.py``: the format marker and what these classes define."""
    columns = "".join(f"    {name!r}: {cols!r},\n" for name, cols in COLUMNS.items())
    ddl = "".join(f"    {statement!r},\n" for statement in create_table_statements())
    return (
        '"""The tables of a blackboard file, as the store creates and checks them.\n\n'
        "Written by ``python -m blackboard._models`` from the SQLModel classes of\n"
        "``_models.py`` (do not edit the DDL or the columns by hand), so that the store\n"
        'needs no SQLAlchemy to open or create a file.\n"""\n\n'
        f'FORMAT_NAME = {FORMAT_NAME!r}\nFORMAT_VERSION = {FORMAT_VERSION!r}\n\n'
        f"DDL: tuple[str, ...] = (\n{ddl})\n\n"
        f"COLUMNS: dict[str, tuple[str, ...]] = {{\n{columns}}}\n"
    )


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).with_name("_schema.py")
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
