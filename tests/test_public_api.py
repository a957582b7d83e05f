"""The public surface of each package: __all__ is exact and importable."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ["blackboard", "knowledge_sources", "controller"]


def _package(name: str) -> ModuleType:
    return importlib.import_module(name)


def _names_defined_by_init(module: ModuleType) -> set[str]:
    """The public names bound by the statements of the package's __init__.py itself."""
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.If, ast.Try)):
            body.extend(node.body)
            body.extend(getattr(node, "orelse", []))
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    """__all__ lists exactly the public (non-underscore) names the package's __init__ defines."""
    module = _package(name)
    assert _names_defined_by_init(module) == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_attributes(name: str) -> None:
    """At run time the package's public attributes, each once asked for, are __all__ (submodules imported since aside)."""
    module = _package(name)
    for exported in module.__all__:  # some are imported when first asked for (blackboard's row classes)
        getattr(module, exported)
    defined = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and not (isinstance(v, ModuleType) and v.__name__.startswith(f"{name}."))
    }
    assert defined == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_has_no_duplicates(name: str) -> None:
    """No name appears twice in __all__."""
    module = _package(name)
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_is_importable(name: str) -> None:
    """`from package import X` works for every X in __all__, and star-import gives exactly __all__."""
    module = _package(name)
    for exported in module.__all__:
        namespace: dict[str, object] = {}
        exec(f"from {name} import {exported}", namespace)
        assert namespace[exported] is getattr(module, exported)
    star: dict[str, object] = {}
    exec(f"from {name} import *", star)
    star.pop("__builtins__", None)
    assert set(star) == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_objects_come_from_the_package(name: str) -> None:
    """Every exported class or function is defined inside the project, not re-exported from a dependency."""
    module = _package(name)
    for exported in module.__all__:
        obj = getattr(module, exported)
        origin = getattr(obj, "__module__", None)
        if origin is None or not isinstance(obj, type) and not callable(obj):
            continue
        assert origin.split(".")[0] in PACKAGES, f"{name}.{exported} comes from {origin}"


def test_errors_share_one_root() -> None:
    """Every exported error class of the three packages derives from blackboard.BlackboardError."""
    from blackboard import BlackboardError

    for name in PACKAGES:
        module = _package(name)
        for exported in module.__all__:
            obj = getattr(module, exported)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                assert issubclass(obj, BlackboardError), f"{name}.{exported}"


def test_errors_also_derive_from_the_builtin_they_resemble() -> None:
    """Errors can be caught as the builtin they resemble (ValueError, KeyError, OSError, ...)."""
    import blackboard as b
    import controller as c
    import knowledge_sources as k

    assert issubclass(b.ValidationError, ValueError)
    assert issubclass(b.UnknownSpaceError, b.ValidationError)
    assert issubclass(b.EntryNotFoundError, KeyError)
    assert issubclass(b.BlackboardFileError, OSError)
    assert issubclass(b.NotABlackboardError, b.BlackboardFileError)
    assert issubclass(b.IncompatibleVersionError, b.BlackboardFileError)
    assert issubclass(b.ClosedBlackboardError, RuntimeError)
    assert issubclass(b.QueryError, ValueError)
    assert issubclass(k.PreconditionError, k.SourceDefinitionError)
    assert issubclass(k.DuplicateSourceError, k.SourceDefinitionError)
    assert issubclass(k.SourceDefinitionError, ValueError)
    assert issubclass(c.ConfigurationError, c.ControllerError)
    assert issubclass(c.ConfigurationError, ValueError)
    assert issubclass(c.ContributionError, TypeError)
