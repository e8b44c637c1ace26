"""A candidate: one member of the population (graph, optimiser spec, batch size, fitness, lineage)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .._errors import NaiveGAError
from ..graph import Graph

#: The most events a candidate's lineage keeps. A member that survives every generation gains a fitness event each
#: generation and mutation and crossover events besides (~2 events and ~1.6 KB of JSON a generation in the default
#: search; benchmarks/bench_memory.py), and every checkpoint writes every member's lineage: unbounded, a day-long
#: search would carry megabytes per member. Beyond this many, the oldest events after the first (its creation) give
#: way to one ``{"event": "truncated", "dropped": n}`` record.
MAX_LINEAGE_EVENTS = 256


@dataclasses.dataclass(frozen=True, eq=False)
class Candidate:
    """One member of a population. Frozen: ``replace`` returns a changed copy.

    Attributes:
        graph: the network (``ng.Graph``), with its trained parameters.
        optimiser: an optimiser spec (``ng.Adam(1e-3)``, ...), or None to use the fitness strategy's default.
        batch_size: the training batch size.
        fitness: the last fitness value, or None if the candidate has not been scored since it was created.
        generation: the generation in which the candidate was last scored (or created).
        lineage: the candidate's history, oldest first: one JSON-friendly dict per event (creation, mutation,
            crossover, fitness), e.g. ``{"generation": 3, "event": "mutation", "what": "NoutMutation", ...}``.
            ``with_event`` keeps at most ``MAX_LINEAGE_EVENTS`` (256): the first event and the newest ones, with
            ``{"generation": g, "event": "truncated", "dropped": n}`` between them when ``n`` events (the newest of
            them from generation ``g``) were dropped.
        opt_state: the optimiser state (optax, in tree form) the candidate's last training ended with, kept only
            when the fitness keeps it (``ng.TrainThenFitness(keep_optimiser_state=True)``), else None. Mutations
            carry it through surgery (``ng.remap_opt_state``: kept neurons keep their moments, new ones start at
            zero); a candidate whose graph cannot be traced back, or whose optimiser changes kind, starts fresh.
        info: measurements and notes of the last evaluation (compile and train seconds, a failure reason, ...).
            A candidate made by ``ng.MapCandidate`` has ``fitness=None`` and keeps its parent's last fitness in
            ``info["parent_fitness"]`` (read by ``ng.EwmaFitness``; see ``previous_fitness``).

    Fitness functions are called as ``fitness(key, candidate) -> candidate`` and return the candidate (trained,
    if the fitness trains) with ``fitness`` set.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> c = ng.Candidate(g, batch_size=32)
        >>> c.replace(fitness=0.5).fitness, c.fitness
        (0.5, None)
    """

    graph: Graph
    optimiser: Any = None
    batch_size: int = 32
    fitness: float | None = None
    generation: int = 1
    lineage: tuple[Mapping[str, Any], ...] = ()
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    opt_state: Any = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.graph, Graph):
            raise NaiveGAError(f"Candidate: graph must be an ng.Graph, got {type(self.graph).__name__}")
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
            raise NaiveGAError(f"Candidate: batch_size must be a positive int, got {bs!r}")
        if not isinstance(self.lineage, tuple):
            object.__setattr__(self, "lineage", tuple(self.lineage))

    def replace(self, **changes: Any) -> Candidate:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def previous_fitness(self) -> float | None:
        """The fitness if scored, else the parent's last fitness (``info["parent_fitness"]``), else None."""
        if self.fitness is not None:
            return self.fitness
        return self.info.get("parent_fitness")

    def with_event(self, event: str, **details: Any) -> Candidate:
        """A copy whose lineage ends with ``{"generation": ..., "event": event, **details}`` (at most
        ``MAX_LINEAGE_EVENTS`` events kept, see ``lineage``)."""
        record = {"generation": self.generation, "event": event, **details}
        return self.replace(lineage=_bounded((*self.lineage, record)))


def _bounded(lineage: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
    """``lineage`` with at most ``MAX_LINEAGE_EVENTS`` events: its first, a truncation record, the newest."""
    if len(lineage) <= MAX_LINEAGE_EVENTS:
        return lineage
    first, rest = lineage[0], lineage[1:]
    dropped = 0
    if rest[0].get("event") == "truncated":
        dropped, rest = int(rest[0].get("dropped", 0)), rest[1:]
    cut = len(rest) - (MAX_LINEAGE_EVENTS - 2)
    marker = {"generation": rest[cut - 1].get("generation"), "event": "truncated", "dropped": dropped + cut}
    return (first, marker, *rest[cut:])
