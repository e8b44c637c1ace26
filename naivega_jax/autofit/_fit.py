"""``fit``: the whole search, AutoFlux-style, with checkpoints, exact resume, a time budget and callbacks."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._random import host_rng, key_bits
from ..evolution import (
    AccuracyVsSize,
    Candidate,
    Population,
    TrainThenFitness,
    evaluate,
)
from ..graph import input_vertex, nparams, save_graph
from ..io import (
    load_run_checkpoint,
    run_checkpoints,
    save_lineage,
    write_run_checkpoint,
)
from ..plot import plot_graph
from ..search import sample_graph
from ..train import SGD, AdaGrad, Adam, Momentum, NAdam, Nesterov, engine_stats
from ._control import LOCK_FILE, Interrupted, RunDirectoryError, RunLock, StopSignals
from ._data import VALIDATION_SPLIT, _prepare_test, data_fingerprint, default_epochs, prepare_data
from ._final import train_best
from ._progress import RunProgress, format_duration, run_log
from ._spaces import default_space
from ._strategy import default_evolution
from ._summary import TOTAL_KEYS, add_totals, format_summary, run_summary

RUN_FORMAT = "naivega_jax.run/1"
_RUN_TMP = ".run.json.tmp"
#: upstream's six optimiser types for new candidates, each with a log-uniform learning-rate range that suits it
INITIAL_OPTIMISERS = (
    (SGD, (-2.0, -0.5)),
    (Momentum, (-2.5, -1.0)),
    (Nesterov, (-2.5, -1.0)),
    (Adam, (-3.5, -2.0)),
    (NAdam, (-3.5, -2.0)),
    (AdaGrad, (-2.5, -1.0)),
)
INITIAL_BATCH_SIZES = (32, 64, 128)


def initial_population(key: jax.Array, space: Any, in_shape: tuple[int, ...], size: int) -> Population:
    """``size`` candidates sampled from ``space``, with upstream-style optimisers and batch sizes.

    Member ``i`` is named ``model<i+1>`` and drawn from ``fold_in(key, i)``.
    """
    members = []
    for i in range(size):
        k = jax.random.fold_in(key, i)
        graph = sample_graph(k, space, input_vertex("in", shape=in_shape), name=f"model{i + 1}")
        rng = host_rng(k, "initial-hyperparameters")
        kind, (lo, hi) = INITIAL_OPTIMISERS[rng.integers(len(INITIAL_OPTIMISERS))]
        optimiser = kind(float(10 ** rng.uniform(lo, hi)))
        batch_size = int(INITIAL_BATCH_SIZES[rng.integers(len(INITIAL_BATCH_SIZES))])
        cand = Candidate(graph, optimiser=optimiser, batch_size=batch_size)
        members.append(cand.with_event("created", name=f"model{i + 1}", nparams=nparams(graph)))
    return Population(tuple(members), generation=1)


def _check_space(key: jax.Array, space: Any, in_shape: tuple[int, ...], nclasses: int) -> None:
    """The default fitness needs one output of ``nclasses`` logits: checked on the first member's graph."""
    graph = sample_graph(
        jax.random.fold_in(jax.random.fold_in(key, 0), 0), space, input_vertex("in", shape=in_shape), name="model1"
    )
    shapes = [graph.shape(o) for o in graph.output_names]
    if shapes != [(nclasses,)]:
        raise ValueError(
            f"fit: the graphs of space have output shapes {shapes}, but y has {nclasses} classes; end the space "
            f"with {nclasses} outputs (e.g. ng.VertexSpace(ng.DenseSpace({nclasses}, 'identity'), shielded=True))"
        )


#: run.json fields a resumed run must match exactly (the plan, ``cli`` and ``sessions`` may change between sessions)
_SAME = ("format", "in_shape", "classes", "n_train", "n_val", "population_size", "key")


def _data_source(document: dict[str, Any]) -> str:
    cli = document.get("cli") or {}
    if cli.get("dataset"):
        return repr(cli["dataset"]) + (f" from {cli['data_path']!r}" if cli.get("data_path") else "")
    return "the data given to fit"


def _check_run_dir(out_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The stored run.json if ``out_dir`` holds a run with these settings to continue, None for a new run; raises
    if it holds anything else (another run, other data, files that are not a run)."""
    run_file = out_dir / "run.json"
    if run_file.is_file():
        try:
            stored = json.loads(run_file.read_text())
        except ValueError as e:
            raise RunDirectoryError(f"fit: out_dir {str(out_dir)!r} has an unreadable run.json ({e})") from None
        for name in _SAME:
            if stored.get(name) != settings[name]:
                raise RunDirectoryError(
                    f"fit: out_dir {str(out_dir)!r} holds a run with {name}={stored.get(name)!r}, but this call has "
                    f"{name}={settings[name]!r}; use another out_dir, or the same data, key and population_size"
                )
        for name, what in (("data_sha256", "training data"), ("test_sha256", "test data")):
            before, now = stored.get(name), settings.get(name)
            if before is not None and now is not None and before != now:
                raise RunDirectoryError(
                    f"fit: out_dir {str(out_dir)!r} holds a run on other {what}: it was started on "
                    f"{_data_source(stored)} (SHA-256 {before[:12]}...), this call gives {_data_source(settings)} "
                    f"(SHA-256 {now[:12]}...) of the same shape and classes; use another out_dir, or the run's data"
                )
        return stored
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"fit: out_dir {str(out_dir)!r} is a file, not a directory; choose a directory")
    if out_dir.exists() and any(p.name not in (_RUN_TMP, LOCK_FILE) for p in out_dir.iterdir()):
        raise RunDirectoryError(
            f"fit: out_dir {str(out_dir)!r} is not empty and holds no naivega_jax run (no run.json); "
            "choose an empty or new directory"
        )
    return None


def _write_run_json(out_dir: Path, document: dict[str, Any]) -> None:
    tmp = out_dir / _RUN_TMP  # write then rename: a run killed here must not leave a half-written run.json
    tmp.write_text(json.dumps(document, indent=1))
    tmp.replace(out_dir / "run.json")


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


def _write_best(out_dir: Path, population: Population) -> Candidate | None:
    scored = [c for c in population if _valid(c)]
    if not scored:
        return None
    best = max(scored, key=lambda c: c.fitness)
    save_graph(out_dir / "best" / "graph", best.graph)
    save_lineage(out_dir / "best" / "lineage.json", best)
    plot_graph(best.graph, out_dir / "best" / "graph.png", title=f"fitness {best.fitness:.4f}")
    return best


def fit(
    x: Any,
    y: Any,
    *,
    key: jax.Array,
    out_dir: str | Path,
    population_size: int = 8,
    max_generations: int = 6,
    time_budget: float | None = None,
    callbacks: Sequence[Callable[[Population], Any]] = (),
    fitness: Callable | None = None,
    evolution: Callable | None = None,
    space: Any = None,
    validation_split: float = VALIDATION_SPLIT,
    epochs_per_generation: int | None = None,
    executor: Callable | None = None,
    executor_chunk: int | None = None,
    precompile: bool | None = None,
    progress: bool = True,
    run_info: dict[str, Any] | None = None,
    test_data: tuple[Any, Any] | None = None,
    final_training: float | None = None,
) -> Population:
    """Searches for a classifier of ``x`` (images ``(n, H, W, C)``, sequences ``(n, L, C)`` or vectors ``(n, F)``).

    AutoFlux (NaiveGAflux) as a function: a population sampled from ``default_space``, trained a little every
    generation (``TrainThenFitness``: ``epochs_per_generation`` epochs on the training part, by default enough for
    about ``SAMPLES_PER_GENERATION`` examples, see ``default_epochs``; then ``AccuracyVsSize`` on the validation part,
    the last ``validation_split`` of the data), evolved by 2 elites plus tournament selection with crossover and
    mutation (``default_evolution``). Weights survive mutation, so models that stay accumulate training. After each
    generation's fitness the population is checkpointed atomically under ``out_dir`` (with the keys, so a resumed
    run reaches exactly the population an uninterrupted one would), the best candidate's graph, lineage and picture
    are written to ``out_dir/best``, and ``callbacks`` are called with the scored population.

    The defaults (8 candidates, 6 generations) fit a small machine: on MNIST-1D a run takes a few minutes on 2 CPU
    cores and its best model reaches ~95% test accuracy (README).

    Calling ``fit`` again with an ``out_dir`` that holds a run resumes it; on other data (the run's ``run.json``
    holds SHA-256 fingerprints of the training and test data), another key or population size it raises
    ``RunDirectoryError`` before touching anything, and so it does for a directory another process is running
    (``out_dir/.lock``; the operating system releases it when that process ends, however it ends). ``run.json`` also
    records each session's plan (``max_generations``, ``time_budget``, epochs). ``time_budget`` (seconds) stops the
    run cleanly: no new candidate evaluation starts after it; the partly scored generation is checkpointed and a
    resumed run completes it.

    While ``fit`` runs in the main thread, SIGINT (Ctrl-C) and SIGTERM stop it the same way, within seconds: the
    candidate in training is dropped (a resumed run trains it again), the members scored so far are checkpointed,
    the summary says ``stopped: SIGINT`` (or ``SIGTERM``) and ``fit`` returns; a second signal ends the process at
    once. The previous handlers are restored when ``fit`` returns; ignored signals stay ignored.

    Progress goes to stderr when ``progress`` (a status line with the generation, candidate, best fitness so far and
    ETA on a terminal; plain lines elsewhere), and always to ``out_dir/run.log`` together with the warnings of the
    ``naivega_jax`` loggers (mutations that could not be applied, failed candidates). At the end a summary (best
    validation and, with ``test_data=(x_test, y_test)``, test accuracy; parameters; wall time split into compile,
    train and other seconds; where the files are) is printed and written to ``out_dir/summary.json``.

    Without an executor members train in this process one after another, and a background thread compiles the
    next members' executables while one trains (``ng.evaluate(..., precompile=True)``; the numbers are the same);
    ``precompile`` (default: on exactly when there is no executor) switches it.
    ``executor`` (``ng.make_executor("devices" | "ray", ...)``) evaluates members elsewhere; the population is the
    same whichever executor runs it. It gets ``executor_chunk`` members at a time (all remaining ones when None),
    and the time budget is checked between chunks.

    ``run_info`` (JSON-friendly) is stored in ``out_dir/run.json`` with the run's settings when the run starts.

    ``final_training`` (a share in (0, 1), default None: none, as upstream) keeps that share of the budget for
    training the best candidate on at the end, with a step-decaying learning rate (``_final.final_plan``), keeping
    the weights that score best on the validation split: with a ``time_budget``, the search stops at
    ``(1 - final_training) * time_budget`` and the best trains until the budget's end; without one, the best trains
    ``final_training / (1 - final_training)`` times the examples the search trained on. It needs ``fit``'s own
    training (the default fitness or a ``TrainThenFitness``), and runs when the search ends by ``max_generations`` or
    its time budget (not after a stop signal). The trained candidate replaces the best in the last checkpoint (its
    fitness is the search's; ``info["final"]`` has the final phase's epochs and validation accuracies).

    Returns the last scored population, best candidate first.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> x, y, _, _ = ng.datasets.load("digits")
        >>> pop = ng.autofit.fit(x[:300], y[:300], key=jax.random.key(0), out_dir=tempfile.mkdtemp(),
        ...                      population_size=3, max_generations=1, progress=False)  # doctest: +SKIP
    """
    for name, value, low in (
        ("population_size", population_size, 3),
        ("max_generations", max_generations, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"fit: {name} must be an int >= {low}, got {value!r}")
    if time_budget is not None and not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ValueError(f"fit: time_budget must be None or a number of seconds > 0, got {time_budget!r}")
    if epochs_per_generation is not None and (
        isinstance(epochs_per_generation, bool)
        or not isinstance(epochs_per_generation, int)
        or epochs_per_generation < 1
    ):
        raise ValueError(f"fit: epochs_per_generation must be None or an int >= 1, got {epochs_per_generation!r}")
    if executor is not None and not callable(executor):
        raise TypeError(f"fit: executor must be None or callable(fn, items), got {executor!r}")
    if precompile is not None and not isinstance(precompile, bool):
        raise TypeError(f"fit: precompile must be None or a bool, got {precompile!r}")
    if executor_chunk is not None and (
        isinstance(executor_chunk, bool) or not isinstance(executor_chunk, int) or executor_chunk < 1
    ):
        raise ValueError(f"fit: executor_chunk must be None or an int >= 1, got {executor_chunk!r}")
    if final_training is not None and not (
        isinstance(final_training, (int, float)) and not isinstance(final_training, bool) and 0 < final_training < 1
    ):
        raise ValueError(f"fit: final_training must be None or a share in (0, 1), got {final_training!r}")
    if final_training is not None and fitness is not None and not isinstance(fitness, TrainThenFitness):
        raise ValueError(
            f"fit: final_training trains the best as fit's own fitness does; it needs fitness=None or an "
            f"ng.TrainThenFitness, got {type(fitness).__name__}"
        )
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"fit: callbacks[{i}] must be callable as cb(population), got {cb!r}")
    key_bits(key)
    x_tr, y_tr, x_val, y_val, in_shape, classes = prepare_data(x, y, validation_split)
    test = _prepare_test(test_data, classes, in_shape)
    nclasses = int(classes.size)
    if space is not None and fitness is None:
        _check_space(key, space, in_shape, nclasses)
    out_dir = Path(out_dir)
    space = default_space(in_shape, nclasses) if space is None else space
    epochs_per_generation = epochs_per_generation or (None if fitness else default_epochs(x_tr.shape[0]))
    fitness = fitness or TrainThenFitness(
        train_data=(x_tr, y_tr),
        fitness=AccuracyVsSize((x_val, y_val)),
        invalid_fitness=0.0,
        epochs=epochs_per_generation,
    )
    epochs = getattr(fitness, "epochs", None)
    plan = {"max_generations": max_generations, "time_budget": time_budget, "epochs_per_generation": epochs}
    settings = {
        "format": RUN_FORMAT,
        "in_shape": list(in_shape),
        "classes": classes.tolist(),
        "n_train": int(x_tr.shape[0]),
        "n_val": int(x_val.shape[0]),
        "population_size": population_size,
        "key": list(key_bits(key)),
        "data_sha256": data_fingerprint(x_tr, y_tr, x_val, y_val),
        "test_sha256": None if test is None else data_fingerprint(*test),
        **(run_info or {}),
    }
    _check_run_dir(out_dir, settings)  # before creating anything
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir), StopSignals() as stop:
        stored = _check_run_dir(out_dir, settings)  # again under the lock: another process may have started it
        resume = stored is not None and bool(run_checkpoints(out_dir))
        session = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "plan": plan}
        document = {**(stored or {}), **settings}
        if stored is not None and stored.get("test_sha256") and not settings["test_sha256"]:
            document["test_sha256"] = stored["test_sha256"]
        document.update(plan=plan, sessions=[*(stored or {}).get("sessions", []), session])
        _write_run_json(out_dir, document)
        evolution = evolution or default_evolution(population_size, in_shape)
        start = time.monotonic()
        deadline = None if time_budget is None else start + float(time_budget)
        search_deadline = deadline
        if deadline is not None and final_training is not None:
            search_deadline = start + (1.0 - final_training) * float(time_budget)
        engine_before = engine_stats()
        with run_log(out_dir) as log_handler:
            display = RunProgress(
                population_size=population_size,
                max_generations=max_generations,
                deadline=deadline,
                enabled=progress,
                log_handler=log_handler,
            )
            run = _Run(
                out_dir=out_dir,
                key=key,
                max_generations=max_generations,
                time_budget=time_budget,
                deadline=search_deadline,
                callbacks=callbacks,
                fitness=fitness,
                evolution=evolution,
                executor=executor,
                executor_chunk=executor_chunk,
                progress=display,
                start=start,
                precompile=executor is None if precompile is None else precompile,
                stop=stop,
            )
            try:
                display.say(
                    f"{'resuming' if resume else 'starting'} a run in {out_dir}: {x_tr.shape[0]} training and "
                    f"{x_val.shape[0]} validation examples of shape {in_shape}, {nclasses} classes; population "
                    f"{population_size}, up to {max_generations} generations"
                    + (f" of {epochs} epochs" if epochs else "")
                    + (f", time budget {time_budget:.0f} s" if time_budget else "")
                )
                population, stopped = run.search(resume, space, in_shape, population_size)
                if final_training is not None and stopped in ("max_generations", "time_budget"):
                    population = run.final(
                        population, final_training, deadline, (x_tr, y_tr), (x_val, y_val), fitness.loss
                    )
                    if stop.signum is not None:
                        stopped = signal.Signals(stop.signum).name
                engine = {k: v - engine_before.get(k, 0) for k, v in engine_stats().items()}
                tally = run.session()
                summary = run_summary(
                    out_dir,
                    population,
                    stopped=stopped,
                    session=tally,
                    totals=add_totals(run.previous, tally),
                    engine=engine,
                    val_data=(x_val, y_val),
                    test_data=test,
                )
                display.close()
                display.say(format_summary(summary))
                if stop.signum is not None:
                    display.say(f"stopped by {stop.name}; continue the run with the same out_dir ({out_dir})")
            finally:
                display.close()
    return _sorted(population)


@dataclasses.dataclass
class _Run:
    """The loop of ``fit``: what the generations share (keys, deadline, time tallies, progress)."""

    out_dir: Path
    key: jax.Array
    max_generations: int
    time_budget: float | None
    deadline: float | None
    callbacks: Sequence[Callable[[Population], Any]]
    fitness: Callable
    evolution: Callable
    executor: Callable | None
    executor_chunk: int | None
    progress: RunProgress
    start: float
    precompile: bool
    stop: StopSignals
    previous: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(TOTAL_KEYS, 0))
    tally: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(TOTAL_KEYS, 0))

    def session(self) -> dict[str, float]:
        return {**self.tally, "wall_seconds": time.monotonic() - self.start}

    def totals(self) -> dict[str, float]:
        return add_totals(self.previous, self.session())

    def _resume(self) -> tuple[Population, dict[int, Candidate], str | None]:
        population, stored_key, extra, _ = load_run_checkpoint(self.out_dir)
        if stored_key is not None:
            self.key = stored_key
        self.previous = add_totals(self.previous, extra.get("totals", {}))
        self.progress.scored(max((c.fitness for c in population if _valid(c)), default=None))
        if not extra.get("complete", True):
            done = {i: population[i] for i in extra.get("evaluated", [])}
            self.progress.say(
                f"resuming {self.out_dir}: generation {population.generation}, {len(done)} of {len(population)} scored"
            )
            return population, done, None
        self.progress.say(f"resuming {self.out_dir}: generation {population.generation} was scored; evolving it")
        if population.generation >= self.max_generations:
            self.progress.say(
                f"generation {population.generation} reached max_generations={self.max_generations}; nothing to do"
            )
            return population, {}, "max_generations"
        evo_key = jax.random.split(jax.random.fold_in(self.key, population.generation))[1]
        return Population(tuple(self.evolution(evo_key, list(population))), population.generation + 1), {}, None

    def search(self, resume: bool, space: Any, in_shape: tuple[int, ...], size: int) -> tuple[Population, str]:
        """Runs generations until ``max_generations``, the deadline or a stop signal; returns the last population and
        why it stopped (``"max_generations"``, ``"time_budget"``, ``"SIGINT"`` or ``"SIGTERM"``)."""
        done: dict[int, Candidate] = {}
        if resume:
            population, done, stopped = self._resume()
            if stopped:
                return population, stopped
        else:
            population = initial_population(jax.random.fold_in(self.key, 0), space, in_shape, size)
        while True:
            gen = population.generation
            scored, complete = self._generation(population, done)
            if not complete:
                return scored, self._stop_reason()
            if gen >= self.max_generations:
                return scored, "max_generations"
            if self.stop.signum is not None:
                return scored, self._stop_reason()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.progress.say(f"time budget of {self.time_budget} s reached after generation {gen}")
                return scored, "time_budget"
            evo_key = jax.random.split(jax.random.fold_in(self.key, gen))[1]
            self.progress.set_activity("selection, crossover and mutation")
            population = Population(tuple(self.evolution(evo_key, list(scored))), gen + 1)
            done = {}

    def final(self, population, share, deadline, train_data, val_data, loss) -> Population:
        """The final phase (``final_training``): the best valid member trained on, checkpointed, written as best."""
        valid = [i for i, c in enumerate(population) if _valid(c)]
        if not valid or any("final" in c.info for c in population):
            return population
        i = max(valid, key=lambda j: population[j].fitness)
        epochs = None
        if deadline is None:
            n = int(np.shape(train_data[1])[0])
            epochs = max(1, round(share / (1.0 - share) * self.totals()["train_examples"] / n))
        self.progress.set_activity("final training of the best candidate")
        key = jax.random.fold_in(self.key, 2**31 - 1)  # no generation uses this label
        try:
            with self.stop.interruptible():
                trained, record = train_best(
                    key,
                    population[i],
                    train_data,
                    val_data,
                    loss=loss,
                    epochs=epochs,
                    deadline=deadline,
                    say=self.progress.say,
                )
        except Interrupted:
            self.progress.say(f"final training stopped by {self.stop.name}; the checkpoint holds the search's best")
            return population
        self.tally["train_examples"] += record["train_examples"]
        self.tally["candidate_epochs"] += record["epochs"]
        candidates = list(population)
        candidates[i] = trained
        population = population.replace(candidates=tuple(candidates))
        extra = {"complete": True, "evaluated": list(range(len(population))), "totals": self.totals(), "final": i}
        write_run_checkpoint(self.out_dir, population, key=self.key, extra=extra)
        _write_best(self.out_dir, population)
        return population

    def _stop_reason(self) -> str:
        return "time_budget" if self.stop.signum is None else signal.Signals(self.stop.signum).name

    def _generation(self, population: Population, done: dict[int, Candidate]) -> tuple[Population, bool]:
        gen = population.generation
        fit_key = jax.random.split(jax.random.fold_in(self.key, gen))[0]
        self.progress.begin_generation(gen, len(population), len(done))
        t0 = time.perf_counter()
        engine0 = engine_stats()
        report = functools.partial(_report, self.progress, gen, len(population))
        runner = _BudgetedExecutor(
            self.deadline, done, self.progress, report, self.stop, self.executor, self.executor_chunk
        )
        # members trained here: a thread compiles the next members' executables while one trains
        scored = evaluate(fit_key, self.fitness, population, executor=runner, precompile=self.precompile)
        for i in runner.new:
            info = scored[i].info
            self.tally["compile_seconds"] += float(info.get("compile_seconds", 0.0))
            self.tally["train_seconds"] += float(info.get("train_seconds", 0.0))
            self.tally["evaluations"] += 1
            self.tally["train_examples"] += int(info.get("train_examples", 0))
            self.tally["candidate_epochs"] += int(info.get("train_epochs", 0))
        complete = not runner.stopped
        self.progress.set_activity("writing the checkpoint" + (", the best model and the plots" if complete else ""))
        extra = {"complete": complete, "evaluated": sorted(runner.evaluated), "totals": self.totals()}
        write_run_checkpoint(self.out_dir, scored, key=self.key, extra=extra)
        if not complete:
            why = f"time budget of {self.time_budget} s reached" if self.stop.signum is None else self.stop.name
            self.progress.say(
                f"{why} in generation {gen} after {len(runner.evaluated)} of {len(population)} candidates; "
                "checkpoint written, resume with the same out_dir"
            )
            return scored, False
        best = _write_best(self.out_dir, scored)
        for cb in self.callbacks:
            cb(scored)
        values = [c.fitness for c in scored if _valid(c)]
        mean = sum(values) / len(values) if values else math.nan
        engine = {k: v - engine0.get(k, 0) for k, v in engine_stats().items()}
        self.progress.say(
            f"generation {gen}: best {best.fitness if best else math.nan:.4f}, mean {mean:.4f}, "
            f"{time.perf_counter() - t0:.1f} s; engine: {engine['compiles']} compiles ({engine['fast_compiles']} "
            f"fast-tier, {engine['background_compiles']} ahead of need in "
            f"{engine['background_compile_seconds']:.1f} s, "
            f"{engine['disk_hits']} from the disk cache), waited {engine['compile_seconds']:.1f} s for compiles, "
            f"{engine['cache_hits']} cache hits; {int(self.totals()['train_examples']):,} training examples so far"
        )
        return scored, True


def _sorted(population: Population) -> Population:
    def rank(c: Candidate) -> float:
        return -math.inf if c.fitness is None else c.fitness

    return population.replace(candidates=tuple(sorted(population, key=rank, reverse=True)))
