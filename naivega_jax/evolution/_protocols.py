"""The call signatures of a search's parts, as ``typing.Protocol``s a type checker verifies.

Any callable with the right signature satisfies one: the library's classes (``ng.evolution.AccuracyFitness``,
``ng.evolution.EliteSelection``, ``ng.distributed.LocalExecutor`` ...) and plain functions alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import jax

if TYPE_CHECKING:
    from ._candidate import Candidate
    from ._population import Population


class Fitness(Protocol):
    """Scores a candidate: ``fitness(key, candidate) -> candidate`` with ``fitness`` set (trained, if it trains).

    A fitness may also have ``precompile(candidate)`` (see ``PrecompilingFitness``), which
    ``ng.evolution.evaluate(..., precompile=True)`` calls ahead of scoring.

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.evolution import Fitness
        >>> def constant(key, candidate):
        ...     return candidate.replace(fitness=1.5)
        >>> f: Fitness = constant
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.evolution.evaluate(jax.random.key(1), f, ng.evolution.Population((ng.Candidate(g),)))
        >>> pop.fitnesses
        (1.5,)
    """

    def __call__(self, key: jax.Array, candidate: Candidate, /) -> Candidate: ...


class PrecompilingFitness(Fitness, Protocol):
    """A ``Fitness`` that can compile ahead what scoring a candidate will need: ``precompile(candidate)``.

    Example:
        >>> import numpy as np, naivega_jax as ng
        >>> from naivega_jax.evolution import PrecompilingFitness
        >>> f: PrecompilingFitness = ng.evolution.AccuracyFitness((np.zeros((4, 2)), np.zeros(4, int)))
        >>> callable(f.precompile)
        True
    """

    def precompile(self, candidate: Candidate, /) -> None: ...


class Evolution(Protocol):
    """Makes the next generation from the scored one: ``evolution(key, candidates) -> candidates`` (NaiveGAflux's
    ``AbstractEvolution``); ``ng.evolution.evolve`` takes one as its ``strategy``.

    The items are candidates, or pairs of them inside ``ng.evolution.PairCandidates``; the result is a new list.

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.evolution import Evolution
        >>> e: Evolution = ng.evolution.EliteSelection(1)
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> [c.fitness for c in e(jax.random.key(1), [ng.Candidate(g, fitness=1.0), ng.Candidate(g, fitness=2.0)])]
        [2.0]
    """

    def __call__(self, key: jax.Array, candidates: Sequence[Any], /) -> list[Any]: ...


class Executor(Protocol):
    """Runs ``fn`` on every item and returns the results in item order: ``executor(fn, items) -> results``.

    ``ng.evolution.evaluate`` and ``ng.evolution.evolve`` take one to score the members (in parallel, on several
    devices, or on a Ray cluster: ``ng.distributed.make_executor``).

    Example:
        >>> from naivega_jax.evolution import Executor
        >>> def in_order(fn, items):
        ...     return [fn(item) for item in items]
        >>> ex: Executor = in_order
        >>> list(ex(lambda x: 2 * x, [1, 2, 3]))
        [2, 4, 6]
    """

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], /) -> Sequence[Any]: ...


class Callback(Protocol):
    """Called with the population after each generation: ``callback(population)`` (plots, logs, checkpoints); its
    return value is ignored.

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.evolution import Callback
        >>> seen = []
        >>> cb: Callback = lambda population: seen.append(len(population))
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> cb(ng.evolution.Population((ng.Candidate(g),)))
        >>> seen
        [1]
    """

    def __call__(self, population: Population, /) -> Any: ...
