"""Exception types shared by every part of naivega_jax."""

from __future__ import annotations


class NaiveGAError(Exception):
    """Base class of every error raised by naivega_jax on purpose."""


class GraphError(NaiveGAError, ValueError):
    """A graph is malformed: unknown or duplicate names, cycles, sizes or shapes that disagree.

    Example:
        >>> import naivega_jax as ng
        >>> try:
        ...     ng.vertex("d", ng.Dense(3), "not a vertex")
        ... except ng.GraphError as e:
        ...     print(type(e).__name__)
        GraphError
    """


class ShapeError(GraphError):
    """An array's shape does not fit the graph (a wrong input shape or rank at call time, or between vertices)."""


class SizeChangeError(GraphError):
    """A requested change of sizes has no consistent solution (for example an exact delta a concat cannot split)."""


__all__ = ["GraphError", "NaiveGAError", "ShapeError", "SizeChangeError"]
