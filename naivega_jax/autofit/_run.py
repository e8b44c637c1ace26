"""The loop of ``fit``: generations scored under a deadline and stop signals, checkpointed, evolved; the final
phase; the first generation's sampler."""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._random import host_rng
from ..evolution import Callback, Candidate, Executor, Population, TrainThenFitness, evaluate, part_size
from ..graph import Graph, input_vertex, nparams, save_graph
from ..io import checkpoint_dir, load_checkpoint, load_run_checkpoint, save_lineage, write_run_checkpoint
from ..plot import plot_graph
from ..search import sample_graph
from ..train import SGD, AdaGrad, Adam, Momentum, NAdam, Nesterov, sum_call_stats
from ._control import Interrupted, StopSignals
from ._final import FINAL_KEY_LABEL, LR_STEPS, RACE_SHARE, epoch_seconds, race, train_best
from ._progress import RunProgress, format_duration
from ._spaces import CONVENTIONAL_BATCH_SIZE, CONVENTIONAL_LEARNING_RATE
from ._summary import TOTAL_KEYS, add_totals, final_score, origin_name, run_rank, scored_fitness

#: upstream's six optimiser types for new candidates, each with a log-uniform learning-rate range that suits it
#: a screen trains its members ``max_generations // SCREEN_GENERATIONS`` times what it does in a run of this many
#: generations (fit's default), so that it keeps its share of a longer run's examples (see ``screen_scale``)
SCREEN_GENERATIONS = 6
INITIAL_OPTIMISERS = (
    (SGD, (-2.0, -0.5)),
    (Momentum, (-2.5, -1.0)),
    (Nesterov, (-2.5, -1.0)),
    (Adam, (-3.5, -2.0)),
    (NAdam, (-3.5, -2.0)),
    (AdaGrad, (-2.5, -1.0)),
)
INITIAL_BATCH_SIZES = (32, 64, 128)


def initial_population(
    key: jax.Array,
    space: Any,
    in_shape: tuple[int, ...],
    size: int,
    *,
    draw_optimisers: bool = True,
    members: Sequence[Any] = (),
) -> Population:
    """``size`` candidates sampled from ``space``, with upstream-style optimisers and batch sizes.

    Member ``i`` is named ``model<i+1>`` and drawn from ``fold_in(key, i)``. With ``draw_optimisers=False`` every
    member's optimiser is None (the fitness's default optimiser trains them all); the rest is drawn as before.

    ``members`` (at most ``size``) take the last places, so the members drawn are those a population without them
    starts with. Each is an ``ng.Candidate`` (its graph, optimiser, optimiser state and batch size; unscored; the
    optimiser None without ``draw_optimisers``), an
    ``ng.Graph``, or a space to draw its graph from (with its place's key and name, as ``conventional_space``); a
    graph trains with ``Adam(CONVENTIONAL_LEARNING_RATE)`` at batch size ``CONVENTIONAL_BATCH_SIZE``. Their lineage
    starts with ``"created"`` and ``given`` (the index in ``members``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.autofit import conventional_space, default_space, initial_population
        >>> pop = initial_population(jax.random.key(0), default_space((8, 8, 1), 3), (8, 8, 1), 4,
        ...                          members=[conventional_space((8, 8, 1), 3)])
        >>> [c.lineage[0].get("given") for c in pop], pop[3].batch_size
        ([None, None, None, 0], 32)
    """
    members = list(members)
    if len(members) > size:
        raise ValueError(f"initial_population: {len(members)} members given for a population of {size}")
    first_given = size - len(members)
    candidates = []
    for i in range(size):
        k = jax.random.fold_in(key, i)
        name = f"model{i + 1}"
        if i >= first_given:
            j = i - first_given
            cand = _given_member(k, members[j], in_shape, name, draw_optimisers)
            candidates.append(cand.with_event("created", name=name, nparams=nparams(cand.graph), given=j))
            continue
        graph = sample_graph(k, space, input_vertex("in", shape=in_shape), name=name)
        rng = host_rng(k, "initial-hyperparameters")
        kind, (lo, hi) = INITIAL_OPTIMISERS[rng.integers(len(INITIAL_OPTIMISERS))]
        optimiser = kind(float(10 ** rng.uniform(lo, hi)))
        batch_size = int(INITIAL_BATCH_SIZES[rng.integers(len(INITIAL_BATCH_SIZES))])
        cand = Candidate(graph, optimiser=optimiser if draw_optimisers else None, batch_size=batch_size)
        candidates.append(cand.with_event("created", name=name, nparams=nparams(graph)))
    return Population(tuple(candidates), generation=1)


def _given_member(
    key: jax.Array, member: Any, in_shape: tuple[int, ...], name: str, draw_optimisers: bool
) -> Candidate:
    if isinstance(member, Candidate):  # a new member: its graph, optimiser (and state) and batch size, unscored
        fresh = member.replace(fitness=None, generation=1, lineage=(), info={})
        return fresh if draw_optimisers else fresh.replace(optimiser=None, opt_state=None)
    if not isinstance(member, Graph):
        member = sample_graph(key, member, input_vertex("in", shape=in_shape), name=name)
    optimiser = Adam(CONVENTIONAL_LEARNING_RATE) if draw_optimisers else None
    return Candidate(member, optimiser=optimiser, batch_size=CONVENTIONAL_BATCH_SIZE)


def screen_record(scored: Population, ranked: Sequence[int], kept: int) -> dict[str, Any]:
    """What a run records of its screen: how many members it trained and kept, and the members best first (their
    names, fitness, parameters), so which ones went on, and where the run's best came from, can be read afterwards."""

    def entry(c: Candidate) -> dict[str, Any]:
        return {"name": origin_name(c), "fitness": c.fitness if _valid(c) else None, "nparams": nparams(c.graph)}

    return {"members": len(scored), "kept": kept, "ranking": [entry(scored[i]) for i in ranked]}


def annealed_fitness(fitness: TrainThenFitness) -> TrainThenFitness:
    """The last generation's training with ``anneal_last``: ``fitness`` training its epochs in the final phase's
    learning-rate steps (``LR_STEPS``)."""
    return dataclasses.replace(fitness, learning_rate_steps=LR_STEPS)


def screening_fitness(fitness: Any, screening: int, scale: int = 1) -> Any:
    """The first generation's training when it draws ``screening`` times the members: each trains on
    ``scale / screening`` of the examples a member of a later generation trains on, so at ``scale`` 1 the
    generation costs what one of ``population_size`` members costs (``scale``: ``screen_scale``). Whole epochs where
    they divide (``round(epochs / screening)`` epochs, times ``scale``); when that is less than an epoch, one epoch of
    the first ``epochs * scale / screening`` of the training examples (the training data's own order: ``fit``'s data
    sets are shuffled), except for ``train_data`` given as a function, whose members train one whole epoch (times
    ``scale``). With ``partitions``, all of this within the first part (the one generation 1 trains on).

    Example:
        >>> import numpy as np, naivega_jax as ng
        >>> from naivega_jax.autofit._run import screening_fitness
        >>> x, y = np.zeros((90, 2), np.float32), np.zeros(90, np.int32)
        >>> f = ng.TrainThenFitness((x, y), fitness=lambda k, c: c, epochs=5)
        >>> screening_fitness(f, 3).epochs, screening_fitness(f, 3, scale=4).epochs
        (2, 8)
        >>> g = screening_fitness(ng.TrainThenFitness((x, y), fitness=lambda k, c: c, epochs=1), 3)
        >>> g.epochs, len(g.train_data[1])
        (1, 30)
        >>> h = screening_fitness(ng.TrainThenFitness((x, y), fitness=lambda k, c: c, partitions=3), 3)
        >>> h.epochs, len(h.train_data[1]), h.partitions
        (1, 10, 1)
    """
    epochs, parts = fitness.epochs, getattr(fitness, "partitions", 1)
    if callable(fitness.train_data) or (epochs >= screening and parts == 1):
        return dataclasses.replace(fitness, epochs=_screened_epochs(epochs, screening) * scale)
    x, y = fitness.train_data
    n = int(np.shape(y)[0])
    whole = _screened_whole_epochs(epochs, screening, scale)
    if whole:  # whole epochs of the first part
        size = part_size(n, parts)
        return dataclasses.replace(fitness, train_data=(x[:size], y[:size]), epochs=whole, partitions=1)
    n = screened_examples(n, epochs, screening, parts, scale)
    return dataclasses.replace(fitness, train_data=(x[:n], y[:n]), epochs=1, partitions=1)


def _screened_epochs(epochs: int, screening: int) -> int:
    return max(1, round(epochs / screening))


def _screened_whole_epochs(epochs: int, screening: int, scale: int) -> int:
    """Whole epochs a screened member trains, or 0 where it trains less than one."""
    if epochs >= screening:
        return _screened_epochs(epochs, screening) * scale
    return round(epochs * scale / screening) if epochs * scale >= screening else 0


def screened_examples(n_train: int, epochs: int, screening: int, partitions: int = 1, scale: int = 1) -> int:
    """Training examples each member of a screened first generation trains on (see ``screening_fitness``)."""
    size = part_size(n_train, partitions)
    whole = _screened_whole_epochs(epochs, screening, scale)
    return whole * size if whole else max(1, round(size * epochs * scale / screening))


def screen_scale(max_generations: int, time_budget: float | None) -> int:
    """How many times a new run's screen trains each member what it does in a run of ``SCREEN_GENERATIONS``:
    ``max_generations // SCREEN_GENERATIONS`` (at least 1), so the screen keeps its share of a longer run's examples
    and picks the members that go on from longer training; 1 under a time budget (whose run has no planned length).

    Example:
        >>> from naivega_jax.autofit._run import screen_scale
        >>> screen_scale(6, None), screen_scale(11, None), screen_scale(24, None), screen_scale(24, 900.0)
        (1, 1, 4, 1)
    """
    return 1 if time_budget is not None else max(1, max_generations // SCREEN_GENERATIONS)


def screen_generations(n_train: int, epochs: int, screening: int, partitions: int = 1, scale: int = 1) -> int:
    """The generations a screened first generation counts as: 1, and with ``scale`` above 1 as many more as its
    extra training would pay for (``screening * population_size`` members' extra examples over those of a
    generation of ``population_size`` members, rounded), so a run of ``max_generations`` ends at generation
    ``max_generations - screen_generations(...) + 1`` having spent about the examples an unscaled screen's run of
    ``max_generations`` would.

    Example:
        >>> from naivega_jax.autofit._run import screen_generations
        >>> screen_generations(3600, 5, 3), screen_generations(3600, 5, 3, scale=4)  # 24 x (8 - 2) epochs: 3.6 x 40
        (1, 5)
    """
    if scale == 1:
        return 1
    extra = screened_examples(n_train, epochs, screening, partitions, scale)
    extra -= screened_examples(n_train, epochs, screening, partitions)
    return 1 + round(screening * extra / generation_examples(n_train, epochs, partitions))


def last_generation(max_generations: int, fitness: Any, screening: int, scale: int, n_train: int) -> int:
    """The generation a run of ``max_generations`` ends at: ``max_generations``, less the generations its screen
    counts as beyond its own (``screen_generations``; none unless ``scale`` is above 1)."""
    if screening == 1 or scale == 1:
        return max_generations
    parts = getattr(fitness, "partitions", 1)
    return max(1, max_generations - screen_generations(n_train, fitness.epochs, screening, parts, scale) + 1)


def generation_examples(n_train: int, epochs: int, partitions: int = 1) -> int:
    """Training examples each member of a later generation trains on: ``epochs`` epochs of one part."""
    return epochs * part_size(n_train, partitions)


class _BudgetedExecutor:
    """Evaluates the members not yet ``done``, in chunks, until the deadline or a stop signal; later members come
    back unscored.

    With no inner executor members run here one at a time; with one, ``chunk`` members at a time go to it (all at
    once when ``chunk`` is None), and the deadline and ``stop`` are checked between chunks. A stop signal while a
    chunk trains drops that chunk (a resumed run trains it again). ``new`` lists the members evaluated by this call
    (``evaluated`` also those already ``done``).
    """

    def __init__(self, deadline, done, progress: RunProgress, report, stop: StopSignals, inner=None, chunk=None):
        self.deadline, self.done, self.progress, self.report, self.stop = deadline, done, progress, report, stop
        self.inner, self.chunk = inner, (1 if inner is None else chunk)
        self.evaluated: list[int] = []
        self.new: list[int] = []
        self.stopped = False

    def __call__(self, fn, items):
        results = [self.done.get(i) for i in range(len(items))]
        todo = [i for i in range(len(items)) if i not in self.done]
        self.evaluated = sorted(self.done)
        pos = 0
        while pos < len(todo):
            if self.stop.signum is not None or (self.deadline is not None and time.monotonic() >= self.deadline):
                self.stopped = True
                break
            batch = todo[pos : pos + (self.chunk or len(todo))]
            chunk_items = [items[i] for i in batch]
            self.progress.started(batch)
            try:
                with self.stop.interruptible():
                    out = self.inner(fn, chunk_items) if self.inner is not None else [fn(item) for item in chunk_items]
            except Interrupted:
                self.stopped = True
                break
            self.progress.finished(len(batch))
            for i, result in zip(batch, out, strict=True):
                results[i] = result
                self.evaluated.append(i)
                self.new.append(i)
                self.report(i, result)
            pos += len(batch)
        for i in todo[pos:]:
            results[i] = items[i][1]
        self.evaluated.sort()
        return results


def _valid(c: Candidate) -> bool:
    return c.fitness is not None and "failure" not in c.info


def _report(progress: RunProgress, gen: int, size: int, i: int, c: Candidate) -> None:
    if _valid(c):
        progress.scored(c.fitness)
    note = f" ({c.info['failure']})" if "failure" in c.info else ""
    seconds = ""
    if "compile_seconds" in c.info:
        seconds = f", compile {c.info['compile_seconds']:.1f} s + train {c.info.get('train_seconds', 0.0):.1f} s"
    best = "-" if progress.best is None else f"{progress.best:.4f}"
    progress.say(
        f"  gen {gen} candidate {i + 1}/{size}: fitness {c.fitness:.4f}, {len(c.graph.vertex_names)} vertices, "
        f"{nparams(c.graph)} params{seconds}{note} [best {best}, ETA {format_duration(progress.eta())}]"
    )


def _best_index(population: Population) -> int | None:
    """Where the best valid member is by ``run_rank`` (the first of equals), or None when no member is valid."""
    valid = [i for i, c in enumerate(population) if _valid(c)]
    return max(valid, key=lambda j: run_rank(population[j])) if valid else None


def _final_entrants(population: Population, k: int, n: int = 1) -> list[int]:
    """The members a final phase races (the first trains on alone when there is one), fittest first: of the ``k``
    fittest valid ones that have not had a final phase, the fittest and each one whose last training was faster per
    example than that of every fitter entrant (``epoch_seconds``; unknown: it enters). A member slower and less fit
    than another is not raced: in the same time the other trains as far. None when there is none, or when the
    fittest of them is no fitter than the fittest entrant of a final phase this population has had: so a resumed
    run does not train them again, and a member scored since then and fitter than they were gets a final phase of
    its own."""
    valid = [i for i, c in enumerate(population) if _valid(c)]
    fresh = sorted(
        (i for i in valid if "final" not in population[i].info), key=lambda j: -scored_fitness(population[j])
    )
    done = [
        population[i].info["final"].get("race", {}).get("best_fitness", scored_fitness(population[i]))
        for i in valid
        if "final" in population[i].info
    ]
    if not fresh or (done and scored_fitness(population[fresh[0]]) <= max(done)):
        return []
    entrants: list[int] = []
    fastest = math.inf  # the fastest epoch among the entrants so far whose speed is known
    for i in fresh[:k]:
        seconds = epoch_seconds(population[i], n)
        if entrants and seconds is not None and seconds >= fastest:
            continue
        entrants.append(i)
        fastest = min(fastest, math.inf if seconds is None else seconds)
    return entrants


def _write_best(out_dir: Path, population: Population) -> Candidate | None:
    i = _best_index(population)
    if i is None:
        return None
    best = population[i]
    save_graph(out_dir / "best" / "graph", best.graph)
    save_lineage(out_dir / "best" / "lineage.json", best)
    plot_graph(best.graph, out_dir / "best" / "graph.png", title=f"fitness {best.fitness:.4f}")
    return best


@dataclasses.dataclass
class _Run:
    """The loop of ``fit``: what the generations share (keys, deadline, time tallies, progress)."""

    out_dir: Path
    key: jax.Array
    max_generations: int
    time_budget: float | None
    deadline: float | None
    callbacks: Sequence[Callback]
    fitness: Callable
    evolution: Callable
    executor: Executor | None
    executor_chunk: int | None
    progress: RunProgress
    start: float
    precompile: bool
    stop: StopSignals
    #: the first generation draws ``size * screening`` members, trains each ``1 / screening`` of the epochs and
    #: keeps the best ``size`` unchanged for generation 2 (1: upstream, the first generation is ``size`` members)
    size: int
    #: the training split's size: ``candidate_epochs`` counts passes over it
    n_train: int
    screening: int = 1
    #: how many times the screen trains each member what it does at ``SCREEN_GENERATIONS`` (``screen_scale``)
    screen_scale: int = 1
    #: under a deadline, the final phase races this many of the fittest members (1: the fittest trains on alone)
    final_candidates: int = 1
    #: the last generation (``last_generation``) trains its epochs in ``LR_STEPS``, a step-decaying learning rate
    anneal_last: bool = False
    previous: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(TOTAL_KEYS, 0))
    tally: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(TOTAL_KEYS, 0))
    # the engine's counters over this session's trainings, summed from what each returned: a diff of the
    # process-wide engine_stats() would count whatever else compiled meanwhile (another fit in this process)
    engine: dict[str, float] = dataclasses.field(default_factory=lambda: sum_call_stats([]))
    #: what the last checkpoint read or written says of its generation: ``complete`` and the ``evaluated`` members
    scoring: dict[str, Any] = dataclasses.field(default_factory=lambda: {"complete": True})
    #: the screen's ranking (``screen_record``) once the screen is cut; every later checkpoint carries it
    screen: dict[str, Any] | None = None

    @property
    def last_generation(self) -> int:
        """The generation the run ends at: ``max_generations``, less the generations a scaled screen counts as
        beyond its own (``screen_generations``)."""
        return last_generation(self.max_generations, self.fitness, self.screening, self.screen_scale, self.n_train)

    def session(self) -> dict[str, float]:
        return {**self.tally, "wall_seconds": time.monotonic() - self.start}

    def totals(self) -> dict[str, float]:
        return add_totals(self.previous, self.session())

    def _resume(self) -> tuple[Population | None, dict[int, Candidate], str | None]:
        """The population to go on with, its members already scored and, if there is nothing to do, why; None for
        the population: start the run afresh (its totals so far still count)."""
        population, stored_key, extra, _ = load_run_checkpoint(self.out_dir)
        if stored_key is not None:
            self.key = stored_key
        self.previous = add_totals(self.previous, extra.get("totals", {}))
        self.screen = extra.get("screen")
        self.scoring = {"complete": extra.get("complete", True), "evaluated": extra.get("evaluated", [])}
        if extra.get("annealed") and population.generation < self.last_generation:
            return self._before_annealed(population)
        self.progress.scored(max((scored_fitness(c) for c in population if _valid(c)), default=None))
        if not extra.get("complete", True):
            done = {i: population[i] for i in extra.get("evaluated", [])}
            self.progress.say(
                f"resuming {self.out_dir}: generation {population.generation}, {len(done)} of {len(population)} scored"
            )
            return population, done, None
        self.progress.say(f"resuming {self.out_dir}: generation {population.generation} was scored; evolving it")
        if population.generation >= self.last_generation:
            self.progress.say(
                f"generation {population.generation} reached max_generations={self.max_generations}"
                + self._screen_counted()
                + "; nothing to do"
            )
            return population, {}, "max_generations"
        return self._evolve(population), {}, None

    def _before_annealed(self, annealed: Population) -> tuple[Population | None, dict[int, Candidate], str | None]:
        """Resuming with more generations a run whose last generation trained annealed (``anneal_last``): that
        generation is the run's result, not the search's state, so the search goes on from the generation before
        (the run keeps the last two checkpoints) and trains this one again at the members' own rates, as an
        uninterrupted longer run would. From generation 1: afresh."""
        gen = annealed.generation
        self.scoring = {"complete": True, "evaluated": []}
        if gen == 1:
            self.progress.say(
                f"resuming {self.out_dir}: generation 1 trained annealed as the last; starting again to go on to "
                f"generation {self.last_generation}"
            )
            return None, {}, None
        path = checkpoint_dir(self.out_dir, gen - 1)
        if not path.is_dir():
            self.progress.say(
                f"resuming {self.out_dir}: generation {gen} trained annealed as the last and the checkpoint of "
                f"generation {gen - 1} is gone; going on from generation {gen} as it is"
            )
            return self._evolve(annealed), {}, None
        before, _, _ = load_checkpoint(path)
        self.progress.say(
            f"resuming {self.out_dir}: generation {gen} trained annealed as the last; going on from generation "
            f"{gen - 1} to train it again at the members' own rates"
        )
        self.progress.scored(max((scored_fitness(c) for c in before if _valid(c)), default=None))
        return self._evolve(before), {}, None

    def _screen_counted(self) -> str:
        last = self.last_generation
        if last == self.max_generations:
            return ""
        return f" (its screen counted as {self.max_generations - last + 1} generations)"

    def _screened(self, population: Population) -> bool:
        return population.generation == 1 and self.screening > 1 and len(population) > self.size

    def _evolve(self, scored: Population) -> Population:
        """The next generation: the evolution of ``scored``, or after a screened first generation its best ``size``
        members as they are (valid ones first, by fitness; they go on training from where they are)."""
        gen = scored.generation
        if self._screened(scored):
            ranked = sorted(range(len(scored)), key=lambda i: (not _valid(scored[i]), -scored_fitness(scored[i]), i))
            self.screen = screen_record(scored, ranked, self.size)
            return Population(tuple(scored[i] for i in ranked[: self.size]), gen + 1)
        evo_key = jax.random.split(jax.random.fold_in(self.key, gen))[1]
        return Population(tuple(self.evolution(evo_key, list(scored))), gen + 1)

    def search(
        self,
        resume: bool,
        space: Any,
        in_shape: tuple[int, ...],
        prepare: Callable[[Graph], Graph] | None = None,
        *,
        draw_optimisers: bool = True,
        members: Sequence[Any] = (),
    ) -> tuple[Population, str]:
        """Runs generations until ``max_generations``, the deadline or a stop signal; returns the last population and
        why it stopped (``"max_generations"``, ``"time_budget"``, ``"SIGINT"`` or ``"SIGTERM"``). ``prepare`` maps
        each graph of a new run's first generation (``standardise_inputs``), whose last places are ``members``
        (``initial_population``)."""
        done: dict[int, Candidate] = {}
        resumed: Population | None = None
        if resume:
            resumed, done, stopped = self._resume()
            if stopped:
                assert resumed is not None
                return resumed, stopped
        if resumed is not None:
            population = resumed
        else:
            population = initial_population(
                jax.random.fold_in(self.key, 0),
                space,
                in_shape,
                self.size * self.screening,
                draw_optimisers=draw_optimisers,
                members=members,
            )
            if prepare is not None:
                population = population.replace(candidates=tuple(c.replace(graph=prepare(c.graph)) for c in population))
        while True:
            gen = population.generation
            scored, complete = self._generation(population, done)
            if not complete:
                return scored, self.stop_reason()
            if gen >= self.last_generation:
                return scored, "max_generations"
            if self.stop.signum is not None:
                return scored, self.stop_reason()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.progress.say(f"{self._budget_name()} reached after generation {gen}")
                return scored, "time_budget"
            self.progress.set_activity("selection, crossover and mutation")
            population = self._evolve(scored)
            done = {}

    def final(self, population, share, deadline, train_data, val_data, loss, score) -> Population:
        """The final phase (``final_training``): under a deadline, the entrants among the ``final_candidates``
        fittest valid members (``_final_entrants``) race for ``RACE_SHARE`` of the time left and the winner trains on
        for the rest; otherwise, or with one entrant, the fittest trains on. The trained member is checkpointed and
        written as best. ``score(key, candidate)`` (the default validation fitness) picks the weights to keep."""
        entrants = _final_entrants(population, self.final_candidates if deadline is not None else 1, self.n_train)
        if not entrants:
            return population
        epochs = None
        if deadline is None:
            epochs = max(1, round(share / (1.0 - share) * self.totals()["train_examples"] / self.n_train))
        key = jax.random.fold_in(self.key, FINAL_KEY_LABEL)
        common = {
            "loss": loss,
            "score": score,
            "default_optimiser": getattr(self.fitness, "default_optimiser", None),
            "say": self.progress.say,
        }
        records: list[dict[str, Any]] = []
        w, seconds = 0, 0.0
        try:
            with self.stop.interruptible():
                i, start = entrants[0], population[entrants[0]]
                if len(entrants) > 1:
                    assert deadline is not None
                    self.progress.set_activity(f"final race of the {len(entrants)} fittest candidates")
                    seconds = RACE_SHARE * (deadline - time.monotonic())
                    raced_in = [population[j] for j in entrants]
                    w, raced = race(key, raced_in, train_data, val_data, seconds=seconds, **common)
                    records = [record for _, record in raced]
                    i = entrants[w]
                    # the winner trains on from where its race ended
                    start = population[i].replace(graph=raced[w][0].graph, opt_state=raced[w][0].opt_state)
                    self.progress.say(
                        f"final race won by entrant {w + 1} (fitness {population[i].fitness:.4f}); it trains on"
                    )
                self.progress.set_activity("final training of the best candidate")
                trained, record = train_best(
                    key, start, train_data, val_data, epochs=epochs, deadline=deadline, **common
                )
        except Interrupted:
            self.progress.say(f"final training stopped by {self.stop.name}; the checkpoint holds the search's best")
            return population
        for r in [*records, record]:
            self.tally["train_examples"] += r["train_examples"]
            self.tally["candidate_epochs"] += r["train_examples"] / self.n_train
            # the phase's training and compile waits count as such in the summary's totals, not as "other"
            self.tally["train_seconds"] += r["train_seconds"]
            self.tally["compile_seconds"] += r["compile_seconds"]
            self.engine = {k: v + r["engine"][k] for k, v in self.engine.items()}
        if records:
            record["race"] = {
                "seconds": seconds,
                "best_fitness": scored_fitness(population[entrants[0]]),
                "winner": w,
                "entrants": [
                    {
                        "fitness": population[j].fitness,
                        "nparams": nparams(population[j].graph),
                        "epochs": r["epochs"],
                        "validation_score": final_score(r),
                        "train_seconds": r["train_seconds"],
                    }
                    for j, r in zip(entrants, records, strict=True)
                ],
            }
            # the winner's final phase is its race and what followed
            record["epochs"] += records[w]["epochs"]
            record["train_examples"] += records[w]["train_examples"]
            trained = trained.replace(info={**trained.info, "final": record})
        candidates = list(population)
        candidates[i] = trained
        population = population.replace(candidates=tuple(candidates))
        # the generation stays as the search left it: a resume scores the members a time budget cut off
        complete = bool(self.scoring["complete"])
        evaluated = list(range(len(population))) if complete else list(self.scoring["evaluated"])
        extra = {**self._extra(), "complete": complete, "evaluated": evaluated, "final": i}
        write_run_checkpoint(self.out_dir, population, key=self.key, extra=extra)
        _write_best(self.out_dir, population)
        return population

    def _extra(self) -> dict[str, Any]:
        """What a checkpoint records besides the population: the generation's scoring, the totals, the screen."""
        return {**self.scoring, "totals": self.totals(), **({"screen": self.screen} if self.screen else {})}

    def _budget_name(self) -> str:
        """What the deadline is: the time budget, or (a final phase keeps the rest) the search's share of it."""
        assert self.deadline is not None and self.time_budget is not None
        search = self.deadline - self.start
        if search < float(self.time_budget) - 1e-6:
            return f"the search's {search:.0f} s of the {float(self.time_budget):g} s time budget"
        return f"time budget of {self.time_budget} s"

    def stop_reason(self) -> str:
        """Why the run stops now: the signal's name, or ``"time_budget"``."""
        return "time_budget" if self.stop.signum is None else signal.Signals(self.stop.signum).name

    def _generation(self, population: Population, done: dict[int, Candidate]) -> tuple[Population, bool]:
        gen = population.generation
        fit_key = jax.random.split(jax.random.fold_in(self.key, gen))[0]
        self.progress.begin_generation(gen, len(population), len(done))
        t0 = time.perf_counter()
        report = functools.partial(_report, self.progress, gen, len(population))
        runner = _BudgetedExecutor(
            self.deadline, done, self.progress, report, self.stop, self.executor, self.executor_chunk
        )
        # members trained here: a thread compiles the next members' executables while one trains
        fitness = plain = (
            screening_fitness(self.fitness, self.screening, self.screen_scale)
            if self._screened(population)
            else self.fitness
        )
        if self.anneal_last and gen >= self.last_generation:
            assert isinstance(fitness, TrainThenFitness)  # fit checks it
            fitness = annealed_fitness(fitness)
        scored = evaluate(fit_key, fitness, population, executor=runner, precompile=self.precompile)
        for i in runner.new:
            info = scored[i].info
            self.tally["compile_seconds"] += float(info.get("compile_seconds", 0.0))
            self.tally["train_seconds"] += float(info.get("train_seconds", 0.0))
            self.tally["evaluations"] += 1
            self.tally["train_examples"] += int(info.get("train_examples", 0))
            # passes over the training split (a part or a screened share is that share of an epoch); a fitness of
            # one's own that does not count its examples: its epochs as it reports them
            examples = info.get("train_examples")
            self.tally["candidate_epochs"] += (
                examples / self.n_train if examples is not None else int(info.get("train_epochs", 0))
            )
        # the engine's counters of every member trained here, also in a generation the budget or a signal cut short
        engine = sum_call_stats(scored[i].info for i in runner.new)
        self.engine = {k: v + engine[k] for k, v in self.engine.items()}
        complete = not runner.stopped
        self.progress.set_activity("writing the checkpoint" + (", the best model and the plots" if complete else ""))
        self.scoring = {"complete": complete, "evaluated": sorted(runner.evaluated), "annealed": fitness is not plain}
        write_run_checkpoint(self.out_dir, scored, key=self.key, extra=self._extra())
        if not complete:
            why = f"{self._budget_name()} reached" if self.stop.signum is None else self.stop.name
            self.progress.say(
                f"{why} in generation {gen} after {len(runner.evaluated)} of {len(population)} candidates; "
                "checkpoint written, resume with the same out_dir"
            )
            return scored, False
        best = _write_best(self.out_dir, scored)
        for cb in self.callbacks:
            cb(scored)
        values = [scored_fitness(c) for c in scored if _valid(c)]
        mean = sum(values) / len(values) if values else math.nan
        self.progress.say(
            f"generation {gen}: best {best.fitness if best else math.nan:.4f}, mean {mean:.4f}, "
            f"{time.perf_counter() - t0:.1f} s; engine: {engine['compiles']} compiles ({engine['fast_compiles']} "
            f"fast-tier, {engine['background_compiles']} ahead of need in "
            f"{engine['background_compile_seconds']:.1f} s, "
            f"{engine['disk_hits']} from the disk cache), waited {engine['compile_seconds']:.1f} s for compiles, "
            f"{engine['cache_hits']} cache hits; {int(self.totals()['train_examples']):,} training examples so far"
        )
        return scored, True
