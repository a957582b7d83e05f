"""The project's one exception hierarchy.

Every error raised on purpose by ``blackboard``, ``knowledge_sources`` and
``controller`` derives from :class:`BlackboardError`, so a caller can catch
them all with one clause. Each also derives from the builtin it resembles
(``ValueError``, ``KeyError``, ``OSError``...), as attrs does, so code that
already catches the builtin keeps working::

    BlackboardError
    ├── ValidationError (ValueError)          a value, confidence, key... is invalid
    │   ├── UnknownSpaceError                 the space is not declared
    │   └── StaleEntryError                   the entry was revised meanwhile
    ├── EntryNotFoundError (KeyError)         no entry with that id in this run
    ├── BlackboardFileError (OSError)         the file cannot be used
    │   ├── NotABlackboardError               a file of another program
    │   └── IncompatibleVersionError          made by an incompatible version
    ├── ClosedBlackboardError (RuntimeError)  the blackboard was closed
    ├── ReadOnlyError (PermissionError)       opened with read_only=True
    └── MissingExtraError (ImportError)       an optional package is not installed

``knowledge_sources`` and ``controller`` add their own branches under the
same root.
"""

from __future__ import annotations

from typing import Any


class BlackboardError(Exception):
    """Base of every error this project raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle without calling __init__ again (subclasses take other arguments
        # than their message), so an error raised in a worker arrives whole.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[BlackboardError], args: tuple[Any, ...], state: dict[str, Any]) -> BlackboardError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ValidationError(BlackboardError, ValueError):
    """A field of an entry (or of a request) is invalid; nothing was written."""

    def __init__(self, field: str, problem: str, value: Any = None) -> None:
        self.field = field
        self.problem = problem
        self.value = value
        super().__init__(f"invalid {field}: {problem}")


class StaleEntryError(ValidationError):
    """The entry to revise was revised meanwhile; work on its latest version."""

    def __init__(self, entry_id: int, latest: int) -> None:
        self.entry_id = entry_id
        self.latest = latest
        super().__init__(
            "entry", f"entry {entry_id} was revised meanwhile (latest version: {latest}); revise that one", entry_id
        )


class UnknownSpaceError(ValidationError):
    """The space is not among the spaces declared for this blackboard."""

    def __init__(self, space: object, declared: frozenset[str]) -> None:
        names = ", ".join(sorted(declared)) or "(none)"
        super().__init__(
            "space", f"{space!r} is not a declared space (declared: {names})", space
        )


class EntryNotFoundError(BlackboardError, KeyError):
    """No entry with this id exists in the blackboard's run."""

    def __init__(self, entry_id: object) -> None:
        self.entry_id = entry_id
        super().__init__(f"no entry with id {entry_id!r} in this run")

    def __str__(self) -> str:
        return str(self.args[0])


class BlackboardFileError(BlackboardError, OSError):
    """The database file cannot be opened or used as a blackboard."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"cannot use {path}: {problem}")

    def __str__(self) -> str:
        return f"cannot use {self.path}: {self.problem}"


class NotABlackboardError(BlackboardFileError):
    """The file is a DuckDB database of another program; it was not modified."""


class IncompatibleVersionError(BlackboardFileError):
    """The file was written by an incompatible version; it was not modified."""


class ClosedBlackboardError(BlackboardError, RuntimeError):
    """The blackboard was closed; open it again to continue."""

    def __init__(self) -> None:
        super().__init__("this blackboard is closed; open the file again to continue")


class ReadOnlyError(BlackboardError, PermissionError):
    """A change was asked of a blackboard opened with ``read_only=True``."""

    def __init__(self, path: str, why: str = "nothing can be changed") -> None:
        self.path = path
        super().__init__(f"{path} was opened read-only: {why} (open it without read_only=True to change it)")

    def __str__(self) -> str:
        return str(self.args[0])


class QueryError(BlackboardError, ValueError):
    """A SQL query given to the blackboard failed; the message is DuckDB's."""

    def __init__(self, query: str, problem: str) -> None:
        self.query = query
        self.problem = problem
        super().__init__(f"query failed: {problem}\n  query: {query}")


class MissingExtraError(BlackboardError, ImportError):
    """An optional package is not installed; the message names the extra that brings it.

    ``MissingExtraError("matplotlib", "plot_timeline", "notebook")`` says
    "plot_timeline needs matplotlib, which is not installed: pip install
    'duckdb-blackboard[notebook]'".
    """

    def __init__(self, package: str, feature: str, extra: str) -> None:
        self.package = package
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs {package}, which is not installed: "
                         f"pip install 'duckdb-blackboard[{extra}]'")

    def __str__(self) -> str:
        return str(self.args[0])
