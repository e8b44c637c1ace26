"""The mutation protocol: the ``Mutation`` base class, probabilities, leaves, shields and the event record.

Calling conventions (every mutation is a frozen dataclass whose behaviour is ``__call__``):

* graph mutations: ``m(key, graph) -> graph``;
* vertex-level mutations: ``m(key, graph, names) -> graph``, applied to the named vertices all at once (wrap them
  in ``VertexMutation`` to run them on a graph);
* optimiser mutations: ``m(key, optimiser_spec) -> spec``; batch-size mutations: ``m(key, batch_size) -> int``;
* crossovers: ``c(key, (a, b)) -> (a', b')``.

Each class states what it mutates in ``target`` (``"graph"``, ``"optimiser"`` or ``"batch_size"``), whether it is
vertex-level (``vertex_level``) and whether it is a crossover (``is_crossover``); wrappers forward their wrapped
mutation's values, so ``MapCandidate`` can dispatch on ``m.target``.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax

from .._json import json_safe

TARGETS = ("graph", "optimiser", "batch_size")


class Mutation:
    """Base class of every mutation and crossover (NaiveGAflux's ``AbstractMutation``).

    Subclasses are frozen dataclasses implementing ``__call__`` (see the module's calling conventions) and set the
    class variables ``target`` (``"graph"``, ``"optimiser"`` or ``"batch_size"``), ``vertex_level`` (called as
    ``m(key, graph, names)``) and ``is_crossover`` (called as ``c(key, (a, b))``).

    Example:
        >>> import dataclasses, naivega_jax as ng
        >>> @dataclasses.dataclass(frozen=True)
        ... class Double(ng.mutation.Mutation):
        ...     target = "batch_size"
        ...     def __call__(self, key, batch_size):
        ...         return 2 * batch_size
        >>> Double().target, Double()(None, 16)
        ('batch_size', 32)
    """

    if TYPE_CHECKING:
        # Read-only to the checker, so that wrappers may forward them as properties; subclasses set them as class
        # variables. The call signature depends on the kind (see the protocols in ng.mutation: GraphLevelMutation,
        # VertexLevelMutation, FieldMutation, Crossover).
        @property
        def target(self) -> str: ...
        @property
        def vertex_level(self) -> bool: ...
        @property
        def is_crossover(self) -> bool: ...

        __call__: Callable[..., Any]
    else:
        target = "graph"
        vertex_level = False
        is_crossover = False

    def wrapped(self) -> tuple[Mutation, ...]:
        """The mutations this one wraps (empty for a leaf)."""
        return ()


def check_mutation(m: Any, where: str) -> Mutation:
    """Raises ``TypeError`` unless ``m`` is a mutation (has a ``target`` and is callable)."""
    if not (callable(m) and getattr(m, "target", None) in TARGETS):
        raise TypeError(
            f"{where}: expected a mutation (an ng.mutation.Mutation subclass with target in {TARGETS}), got {m!r}"
        )
    return m


def mutation_leaves(m: Mutation) -> tuple[Mutation, ...]:
    """The leaf mutations under ``m`` (``m`` itself if it wraps nothing), depth first.

    Shields use them: a shielded vertex is mutated only if every leaf's type is allowed by its shield.

    Example:
        >>> import naivega_jax as ng
        >>> m = ng.MutationChain(ng.MutationProbability(ng.LearningRateMutation(), 0.5), ng.OptimiserMutation([ng.SGD]))
        >>> [type(leaf).__name__ for leaf in ng.mutation.mutation_leaves(m)]
        ['LearningRateMutation', 'OptimiserMutation']
    """
    inner = m.wrapped() if isinstance(m, Mutation) else ()
    if not inner:
        return (m,)
    return tuple(leaf for w in inner for leaf in mutation_leaves(w))


def probability(p: Any, where: str) -> float:
    """Normalises a probability as upstream: an int is a percentage (30 -> 0.3), except that 1 means 1.0."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{where}: probability must be a number in [0, 1] (or an int percentage), got {p!r}")
    given = p
    if isinstance(p, numbers.Integral) and p != 1:
        p = p / 100.0
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: probability must be in [0, 1] (or an int percentage 0..100), got {given!r}")
    return p


def split(key: jax.Array, n: int = 2) -> jax.Array:
    """``n`` fresh keys from ``key`` (the key itself is not used again by the caller)."""
    return jax.random.split(key, n)


# --- the event record -------------------------------------------------------------------------------------------
# Leaf mutations report what they did (a small JSON-friendly dict) to the innermost active recorder, if any. The
# recorder is a context variable scoped to one ``record_events`` call, so a mutation stays a pure function of its
# arguments: without a recorder, reporting does nothing.
_EVENTS: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "naivega_jax_mutation_events", default=None
)


def report(mutation: str, **details: Any) -> None:
    """Adds ``{"mutation": mutation, **details}`` to the active event record (no-op outside ``record_events``)."""
    events = _EVENTS.get()
    if events is not None:
        events.append({"mutation": mutation, **{k: json_safe(v) for k, v in details.items()}})


@contextlib.contextmanager
def _recording() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    token = _EVENTS.set(events)
    try:
        yield events
    finally:
        _EVENTS.reset(token)
        outer = _EVENTS.get()
        if outer is not None:
            outer.extend(events)


def record_events(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, tuple[dict[str, Any], ...]]:
    """Calls ``fn(*args, **kwargs)`` and returns ``(result, events)``: what every mutation inside it did.

    Each event is a JSON-friendly dict naming the mutation and its changes, for a candidate's lineage. Nested
    calls also pass their events on to the enclosing record.

    Example:
        >>> import jax, naivega_jax as ng
        >>> new_bs, events = ng.mutation.record_events(ng.TrainBatchSizeMutation(0.5, 0.5), jax.random.key(0), 16)
        >>> new_bs, events
        (24, ({'mutation': 'TrainBatchSizeMutation', 'old': 16, 'new': 24},))
    """
    with _recording() as events:
        result = fn(*args, **kwargs)
    return result, tuple(events)
