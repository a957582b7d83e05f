"""Knowledge sources: independent problem-solvers that read the blackboard
and return contributions.

Public surface::

    knowledge_source    decorator declaring a source from a function
    KnowledgeSource     base class for sources declared as classes
    post, revise, retract
                        build contributions (Post, Revise, Retract)
    fork, alternative, fail_context, promote_context
                        hypothetical reasoning with contexts
    ReadView            what an action receives besides its trigger
    compile_rule        parse a rule-engine expression (used for goals too)
    errors              SourceDefinitionError, PreconditionError,
                        DuplicateSourceError
"""

from . import _rule_parser  # noqa: F401, I001  (first: rule-engine's prebuilt parser tables)
from ._contributions import Alternative as Alternative
from ._contributions import Contribution as Contribution
from ._contributions import FailContext as FailContext
from ._contributions import Fork as Fork
from ._contributions import Post as Post
from ._contributions import PromoteContext as PromoteContext
from ._contributions import Retract as Retract
from ._contributions import Revise as Revise
from ._contributions import alternative as alternative
from ._contributions import fail_context as fail_context
from ._contributions import fork as fork
from ._contributions import post as post
from ._contributions import promote_context as promote_context
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
    "Alternative",
    "FailContext",
    "Fork",
    "PromoteContext",
    "alternative",
    "fail_context",
    "fork",
    "promote_context",
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
