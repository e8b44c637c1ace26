"""The in-process executor, and the contract every executor keeps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any


def check_call(fn: Any, items: Any, where: str) -> list:
    """Validates ``executor(fn, items)`` arguments; returns the items as a list."""
    if not callable(fn):
        raise TypeError(f"{where}: fn must be callable as fn(item), got {fn!r}")
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{where}: items must be a sequence (one item per population member), got {type(items)}")
    return list(items)


@dataclasses.dataclass(frozen=True)
class LocalExecutor:
    """Evaluates the population in this process, one member after another (the default executor).

    Every executor is called as ``executor(fn, items) -> results``, one result per item in the order of
    ``items``; ``ng.evolution.evaluate`` and ``ng.evolve`` take one as ``executor=``. Each member's key is derived from
    its
    index in the population (``fold_in(key, i)``), never from the executor, so every executor gives the same
    population.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g)])
        >>> ex = ng.distributed.LocalExecutor()
        >>> ng.evolution.evaluate(jax.random.key(0), ng.SizeFitness(), pop, executor=ex).fitnesses
        (9.0,)
    """

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
        return [fn(item) for item in check_call(fn, items, "LocalExecutor")]
