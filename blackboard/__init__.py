"""The shared blackboard: entries in named spaces on DuckDB, with their history.

Public surface::

    Blackboard      open a blackboard in memory or on a file; post, revise,
                    retract, read, query with SQL, export, replay
    Entry, Event    typed records (immutable)
    Space, Status   declared spaces and entry statuses
    SpaceView       bb.space(name): a space's entries, shown as a table
    entry_facts     the symbols a rule sees for an entry
    errors          BlackboardError and its branches
"""

import typing as _typing

from ._chain import BrokenLink as BrokenLink
from ._chain import VerifyReport as VerifyReport
from ._entry import METADATA_FIELDS as METADATA_FIELDS
from ._entry import ROOT_CONTEXT as ROOT_CONTEXT
from ._entry import Context as Context
from ._entry import Entry as Entry
from ._entry import Event as Event
from ._entry import Space as Space
from ._entry import Status as Status
from ._entry import entry_facts as entry_facts
from ._errors import BlackboardError as BlackboardError
from ._errors import BlackboardFileError as BlackboardFileError
from ._errors import ClosedBlackboardError as ClosedBlackboardError
from ._errors import EntryNotFoundError as EntryNotFoundError
from ._errors import IncompatibleVersionError as IncompatibleVersionError
from ._errors import MissingExtraError as MissingExtraError
from ._errors import NotABlackboardError as NotABlackboardError
from ._errors import QueryError as QueryError
from ._errors import ReadOnlyError as ReadOnlyError
from ._errors import StaleEntryError as StaleEntryError
from ._errors import UnknownSpaceError as UnknownSpaceError
from ._errors import ValidationError as ValidationError
from ._render import SpaceView as SpaceView
from ._review import Review as Review
from ._store import UNSET as UNSET
from ._store import Blackboard as Blackboard
from ._store import RunArchive as RunArchive
from ._store import read_runs as read_runs
from ._store import verify as verify

if _typing.TYPE_CHECKING:
    from ._models import ActivationRow as ActivationRow
    from ._models import BatchRow as BatchRow
    from ._models import ContextRow as ContextRow
    from ._models import EntryRow as EntryRow
    from ._models import EventRow as EventRow
    from ._models import RunRow as RunRow

# The SQLModel row classes, imported when first asked for: SQLAlchemy and
# SQLModel take a quarter of a second to import, and the store needs neither.
_ROWS = ("ActivationRow", "BatchRow", "ContextRow", "EntryRow", "EventRow", "RunRow")


def __getattr__(name: str) -> _typing.Any:
    if name in _ROWS:
        from . import _models

        globals()[name] = value = getattr(_models, name)
        return value
    raise AttributeError(f"module 'blackboard' has no attribute {name!r}")


__all__ = [
    "METADATA_FIELDS",
    "UNSET",
    "ROOT_CONTEXT",
    "ActivationRow",
    "BatchRow",
    "Blackboard",
    "BrokenLink",
    "BlackboardError",
    "BlackboardFileError",
    "ClosedBlackboardError",
    "Context",
    "ContextRow",
    "Entry",
    "EntryNotFoundError",
    "EntryRow",
    "Event",
    "EventRow",
    "IncompatibleVersionError",
    "MissingExtraError",
    "NotABlackboardError",
    "QueryError",
    "ReadOnlyError",
    "Review",
    "RunArchive",
    "RunRow",
    "Space",
    "SpaceView",
    "StaleEntryError",
    "Status",
    "UnknownSpaceError",
    "ValidationError",
    "VerifyReport",
    "entry_facts",
    "read_runs",
    "verify",
]
