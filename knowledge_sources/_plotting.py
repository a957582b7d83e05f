"""Matplotlib for the domain plots, imported only when a plot is asked for.

The package works without matplotlib; a plot function called without it
raises :class:`MissingExtraError`, which says which extra to install.
"""

from __future__ import annotations

from typing import Any

from blackboard import MissingExtraError


def pyplot(feature: str) -> Any:
    """``matplotlib.pyplot``, or :class:`MissingExtraError` naming ``feature``."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("matplotlib", feature, "notebook") from None
    return plt


def axes(ax: Any, feature: str, size: tuple[float, float] = (6.0, 6.0)) -> Any:
    """``ax``, or the axes of a new figure of ``size`` inches when it is None."""
    plt = pyplot(feature)
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax
