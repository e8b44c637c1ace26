"""The population, scoring a population (``evaluate``) and one step of the genetic algorithm (``evolve``)."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax

from ._candidate import Candidate
from ._protocols import Evolution, Executor, Fitness

logger = logging.getLogger("naivega_jax")


@dataclasses.dataclass(frozen=True)
class Population:
    """An immutable generation of candidates (NaiveGAflux ``Population``).

    Iterable, sized and indexable; ``generation`` starts at 1 and ``ng.evolve`` returns the next one. ``info`` says
    what made this population where its maker says so (``ng.autofit.fit`` puts its run summary, the dict it writes
    to summary.json, under ``info["summary"]``); it is not part of a checkpoint, and evolution starts it empty.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g, fitness=0.2), ng.Candidate(g, fitness=0.9)])
        >>> pop.generation, len(pop), pop.best().fitness, pop.fitnesses
        (1, 2, 0.9, (0.2, 0.9))
    """

    candidates: tuple[Candidate, ...]
    generation: int = 1
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if isinstance(self.candidates, Candidate):
            raise TypeError("Population: candidates must be a sequence of Candidates, got a single Candidate")
        cands = tuple(self.candidates)
        for i, c in enumerate(cands):
            if not isinstance(c, Candidate):
                raise TypeError(f"Population: member {i} is a {type(c).__name__}, expected an ng.Candidate")
        g = self.generation
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise ValueError(f"Population: generation must be an int >= 1, got {g!r}")
        object.__setattr__(self, "candidates", cands)

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, index):
        return self.candidates[index]

    @property
    def fitnesses(self) -> tuple[float | None, ...]:
        """Every member's fitness, in population order (None where unscored)."""
        return tuple(c.fitness for c in self.candidates)

    def best(self) -> Candidate:
        """The member with the highest fitness (the first of equals); unscored members are skipped."""
        scored = [(c.fitness, c) for c in self.candidates if c.fitness is not None]
        if not scored:
            raise ValueError("Population.best: no member has a fitness yet; score it with ng.evolution.evaluate first")
        return max(scored, key=lambda fc: fc[0])[1]

    def replace(self, **changes: Any) -> Population:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


def _failure(candidate: Candidate, invalid_fitness: float, reason: str) -> Candidate:
    logger.warning("fitness failed, scored %s: %s", invalid_fitness, reason)
    failed = candidate.replace(fitness=invalid_fitness, info={"failure": reason})
    return failed.with_event("fitness", fitness=invalid_fitness, failure=reason)


@dataclasses.dataclass(frozen=True)
class _ScoreMember:
    """Scores one ``(key, candidate)``; a module-level dataclass so that executors can pickle it."""

    fitness: Callable
    invalid_fitness: float

    def __call__(self, item: tuple[jax.Array, Candidate]) -> Candidate:
        key, candidate = item
        try:
            result = self.fitness(key, candidate)
        except Exception as e:  # any failure of one candidate must not end the run
            return _failure(candidate, self.invalid_fitness, f"{type(e).__name__}: {e}")
        if not isinstance(result, Candidate):
            return _failure(candidate, self.invalid_fitness, f"the fitness returned {type(result).__name__}")
        raw: Any = result.fitness  # whatever the user's fitness set
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return _failure(candidate, self.invalid_fitness, f"the fitness value {result.fitness!r} is not a number")
        if not math.isfinite(value):
            return _failure(candidate, self.invalid_fitness, f"the fitness value {value} is not finite")
        info = {k: v for k, v in result.info.items() if k != "parent_fitness"}
        return result.replace(fitness=value, info=info).with_event("fitness", fitness=value)


def _in_process(fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
    return [fn(item) for item in items]


class _Precompiler:
    """A background thread that calls ``precompile(candidate)`` for each candidate in turn, so that XLA compiles the
    next members while the current one trains (the compiler releases the GIL; the engine's cache hands a waiting
    trainer the executable being compiled instead of compiling it twice). Failures are left to the real call."""

    def __init__(self, precompile: Callable[[Candidate], Any], candidates: Sequence[Candidate]):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(precompile, list(candidates)), name="naivega-precompile", daemon=True
        )
        self._thread.start()

    def _run(self, precompile: Callable[[Candidate], Any], candidates: list[Candidate]) -> None:
        for c in candidates:
            if self._stop.is_set():
                return
            try:
                precompile(c)
            except Exception as error:  # the member's own evaluation reports it
                logger.debug("precompiling a member failed (its evaluation will say why): %s", error)

    def close(self) -> None:
        """Stops after the compile in flight (if any) and waits for it."""
        self._stop.set()
        self._thread.join()


def evaluate(
    key: jax.Array,
    fitness: Fitness,
    population: Population,
    *,
    executor: Executor | None = None,
    invalid_fitness: float = 0.0,
    precompile: bool = False,
) -> Population:
    """Scores every member: member ``i`` becomes ``fitness(fold_in(key, i), member)``, stamped with the generation.

    Each member is passed to ``fitness`` with ``generation`` set to the population's and ``info`` cleared (except
    ``parent_fitness``, which ``ng.EwmaFitness`` reads), so ``info`` afterwards holds only this evaluation's notes.
    The fitness value is stored as a float and the lineage gains ``{"event": "fitness", "fitness": value}``.

    A member whose fitness raises, or returns a non-finite or non-numeric value, gets ``invalid_fitness``; the
    reason goes to ``info["failure"]`` and the log, and the others are scored as usual.

    Args:
        key: a ``jax.random`` key.
        fitness: ``fitness(key, candidate) -> candidate`` (e.g. ``ng.TrainThenFitness(...)``).
        population: the population to score.
        executor: ``executor(fn, items) -> results`` in the order of ``items``; None maps in this process. The hook
            for running members on several devices or machines: ``fn`` and the items are picklable when the
            fitness is.
        invalid_fitness: the fitness of a member whose evaluation fails.
        precompile: when ``fitness`` has a ``precompile(candidate)`` method (``ng.TrainThenFitness``,
            ``ng.TrainAccuracyFitness``), a background thread compiles the members' executables in order while
            they are scored in this process; results are the same (equal executables), only the waiting shrinks.
            Useful when members train here; leave it off for an executor that trains them elsewhere.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.evolution.evaluate(jax.random.key(0), ng.SizeFitness(), ng.Population([ng.Candidate(g)])).fitnesses
        (9.0,)
    """
    if not isinstance(population, Population):
        raise TypeError(f"evaluate: population must be an ng.Population, got {type(population).__name__}")
    if not callable(fitness):
        raise TypeError(f"evaluate: fitness must be callable as fitness(key, candidate), got {fitness!r}")
    if executor is not None and not callable(executor):
        raise TypeError(f"evaluate: executor must be None or callable(fn, items), got {executor!r}")
    items = []
    for i, c in enumerate(population):
        info = {"parent_fitness": c.info["parent_fitness"]} if "parent_fitness" in c.info else {}
        items.append((jax.random.fold_in(key, i), c.replace(generation=population.generation, info=info)))
    ahead = getattr(fitness, "precompile", None) if precompile else None
    compiler = _Precompiler(ahead, [c for _, c in items]) if callable(ahead) else None
    try:
        results = list((executor or _in_process)(_ScoreMember(fitness, invalid_fitness), items))
    finally:
        if compiler is not None:
            compiler.close()
    if len(results) != len(items):
        raise ValueError(f"evaluate: the executor returned {len(results)} results for {len(items)} members")
    return population.replace(candidates=tuple(results))


def evolve(
    key: jax.Array,
    strategy: Evolution,
    *args: Any,
    executor: Executor | None = None,
    invalid_fitness: float = 0.0,
) -> Population:
    """One generation: ``evolve(key, strategy, fitness, pop)`` scores ``pop`` then evolves it; generation + 1.

    ``evolve(key, strategy, pop)`` evolves an already scored population with ``strategy(key, list(pop))``. With a
    fitness, ``key`` is split in two: the first half scores (see ``ng.evolution.evaluate``, which takes ``executor`` and
    ``invalid_fitness``), the second evolves. Selected members keep their fitness; new ones (from
    ``ng.MapCandidate``) have None.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g), ng.Candidate(g)])
        >>> pop = ng.evolve(jax.random.key(1), ng.EliteSelection(1), ng.SizeFitness(), pop)
        >>> pop.generation, pop.fitnesses
        (2, (9.0,))
    """
    if not callable(strategy):
        raise TypeError(f"evolve: strategy must be callable as strategy(key, candidates), got {strategy!r}")
    if len(args) == 2:
        fitness, population = args
        fit_key, key = jax.random.split(key)
        if not isinstance(population, Population):
            raise TypeError(f"evolve: population must be an ng.Population, got {type(population).__name__}")
        population = evaluate(fit_key, fitness, population, executor=executor, invalid_fitness=invalid_fitness)
    elif len(args) == 1:
        (population,) = args
        if not isinstance(population, Population):
            raise TypeError(f"evolve: population must be an ng.Population, got {type(population).__name__}")
    else:
        raise TypeError(
            f"evolve takes (key, strategy, population) or (key, strategy, fitness, population), got {len(args)} "
            "arguments after the strategy"
        )
    return Population(tuple(strategy(key, list(population))), population.generation + 1)
