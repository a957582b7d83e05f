"""rule-engine's parser tables, shipped prebuilt, so that importing it costs
milliseconds instead of a third of a second.

rule-engine builds its LALR parser (ply's ``yacc``) when it is imported,
and builds it from the grammar every time, because it asks ply not to write
the tables: on our machines that is about 0.3 s of every process start,
more than everything else ``blackboard solve`` does before its first cycle.
ply first looks for ready tables in the module ``rule_engine.parser.parsetab``
and uses them only if their signature (a digest of the whole grammar:
tokens, precedence, productions) equals the grammar being built; otherwise
it builds the parser as usual. :func:`preload` registers the tables of
``_rule_tables.py`` (written by ply itself, see :func:`write_tables`) under
that name before rule-engine is first imported. A rule-engine whose grammar
differs from the one the tables were written for simply ignores them: slower,
never wrong. ``tests/test_rules.py`` checks that the shipped tables match the
installed rule-engine.

The package's ``__init__`` imports this module first, which preloads.
Regenerate after upgrading rule-engine: ``python -m knowledge_sources._rule_parser``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

TABLES_MODULE = "rule_engine.parser.parsetab"  # where ply looks for rule-engine's tables


def preload() -> None:
    """Make ply find the shipped tables when rule-engine builds its parser (once per process)."""
    if "rule_engine" in sys.modules or TABLES_MODULE in sys.modules:
        return  # rule-engine is already imported (its parser built), or the tables are in place
    sys.modules[TABLES_MODULE] = importlib.import_module(f"{__package__}._rule_tables")


def write_tables(directory: Path = Path(__file__).parent) -> Path:
    """Write the installed rule-engine's parser tables to ``_rule_tables.py`` with ply's own writer."""
    from rule_engine._vendor.ply import yacc
    from rule_engine.parser import Parser

    target = directory / "_rule_tables.py"
    target.unlink(missing_ok=True)  # ply keeps a table file whose signature matches
    yacc.yacc(module=Parser(), debug=False, write_tables=True, tabmodule="_rule_tables",
              outputdir=str(directory))
    target.write_text(TABLES_DOCSTRING + target.read_text(encoding="utf-8"), encoding="utf-8")
    return target


TABLES_DOCSTRING = (
    '"""rule-engine\'s LALR parser tables, written by ply for ``_rule_parser`` '
    '(``python -m knowledge_sources._rule_parser``); do not edit."""\n'
)


preload()  # on import: the package imports this module before anything imports rule-engine

if __name__ == "__main__":
    print(f"wrote {write_tables()}")
