"""Knowledge sources: independent problem-solvers that read the blackboard
and return contributions.

Public surface::

    knowledge_source    decorator declaring a source from a function
    KnowledgeSource     base class for sources declared as classes
    post, revise, retract
                        build contributions (Post, Revise, Retract)
    ReadView            what an action receives besides its trigger
    compile_rule        parse a rule-engine expression (used for goals too)
    errors              SourceDefinitionError, PreconditionError,
                        DuplicateSourceError
"""

from ._contributions import Contribution as Contribution
from ._contributions import Post as Post
from ._contributions import Retract as Retract
from ._contributions import Revise as Revise
from ._contributions import post as post
from ._contributions import retract as retract
from ._contributions import revise as revise
from ._errors import DuplicateSourceError as DuplicateSourceError
from ._errors import PreconditionError as PreconditionError
from ._errors import SourceDefinitionError as SourceDefinitionError
from ._rules import compile_rule as compile_rule
from ._source import KnowledgeSource as KnowledgeSource
from ._source import knowledge_source as knowledge_source
from ._view import ReadView as ReadView

__all__ = [
    "Contribution",
    "DuplicateSourceError",
    "KnowledgeSource",
    "Post",
    "PreconditionError",
    "ReadView",
    "Retract",
    "Revise",
    "SourceDefinitionError",
    "compile_rule",
    "knowledge_source",
    "post",
    "retract",
    "revise",
]
