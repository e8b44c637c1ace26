"""``fit``: the whole search, AutoFlux-style, with checkpoints, exact resume, a time budget and callbacks."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from .._files import write_text_atomic
from .._random import key_bits
from ..evolution import (
    AccuracyVsSize,
    Candidate,
    Fitness,
    Population,
    TrainThenFitness,
)
from ..graph import Graph, input_vertex
from ..io import (
    run_checkpoints,
)
from ..search import sample_graph
from ..train import Optimiser, ensure_default_compilation_cache
from ._control import LOCK_FILE, RunDirectoryError, RunLock, StopSignals
from ._data import (
    VALIDATION_SPLIT,
    _prepare_test,
    data_fingerprint,
    default_epochs,
    default_partitions,
    prepare_data,
)
from ._progress import RunProgress, run_log
from ._regression import (
    MSEFitness,
    ScaledSquaredError,
    baseline_mse,
    scale_targets,
    squared_error,
    target_statistics,
)
from ._run import SCREEN_GENERATIONS, _Run, last_generation, screen_scale
from ._settings import FitSettings
from ._spaces import default_members, default_space, standardise_inputs
from ._strategy import default_evolution
from ._summary import add_totals, format_summary, run_rank, run_summary

RUN_FORMAT = "naivega_jax.run/1"
_CROSS_ENTROPY = optax.softmax_cross_entropy_with_integer_labels
_RUN_TMP = ".run.json."  # run.json's temporary files start so (write_text_atomic), and end in .tmp


def _check_space(key: jax.Array, space: Any, in_shape: tuple[int, ...], nout: int, task: str) -> None:
    """The default fitness needs one output of ``nout`` logits (or target columns): checked on the first member's
    graph."""
    graph = sample_graph(
        jax.random.fold_in(jax.random.fold_in(key, 0), 0), space, input_vertex("in", shape=in_shape), name="model1"
    )
    shapes = [graph.shape(o) for o in graph.output_names]
    if shapes != [(nout,)]:
        what = f"{nout} classes" if task == "classification" else f"{nout} target column{'s' * (nout > 1)}"
        raise ValueError(
            f"fit: the graphs of space have output shapes {shapes}, but y has {what}; end the space "
            f"with {nout} outputs (e.g. ng.VertexSpace(ng.DenseSpace({nout}, 'identity'), shielded=True))"
        )


def _check_members(key: jax.Array, members: Any, job: _Job, size: int) -> tuple[Any, ...]:
    """``initial_members`` as a tuple, each checked before any work: a Candidate, Graph or space whose graph takes
    the data's shape and gives the outputs the task needs; at most the first generation's ``size``."""
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
        raise TypeError(f"fit: initial_members must be None or a sequence, got {type(members).__name__}")
    members = tuple(members)
    if len(members) > size:
        raise ValueError(f"fit: initial_members has {len(members)} members; the first generation has {size} places")
    want = [(job.nout,)]
    for j, member in enumerate(members):
        where = f"fit: initial_members[{j}]"
        graph = member.graph if isinstance(member, Candidate) else member
        if not isinstance(graph, Graph):
            try:
                graph = sample_graph(jax.random.fold_in(key, j), member, input_vertex("in", shape=job.in_shape))
            except Exception as e:
                raise ValueError(
                    f"{where} must be an ng.Candidate, an ng.Graph or a space to draw one from; drawing from "
                    f"{type(member).__name__} failed: {e}"
                ) from None
        inputs = [graph.shape(i) for i in graph.input_names]
        outputs = [graph.shape(o) for o in graph.output_names]
        if inputs != [tuple(job.in_shape)] or outputs != want:
            raise ValueError(
                f"{where}: its graph maps inputs of shapes {inputs} to outputs of shapes {outputs}; the data need "
                f"one input of shape {tuple(job.in_shape)} and one output of shape {want[0]} "
                f"({_outputs(job.task, job.nout)})"
            )
    return members


#: run.json fields a resumed run must match exactly (the plan, ``cli`` and ``sessions`` may change between sessions)
_SAME = (
    "format",
    "task",
    "in_shape",
    "classes",
    "targets",
    "n_train",
    "n_val",
    "population_size",
    "optimiser",
    "keep_optimiser_state",
    "screening",
    "screen_scale",
    "partitions",
    "anneal_last",
    "key",
)
#: what a run.json written before a field existed means by its absence
_ABSENT = {
    "task": "classification",
    "optimiser": None,
    "keep_optimiser_state": False,
    "screening": 1,
    "screen_scale": 1,
    "partitions": 1,
    "anneal_last": False,
}
#: whether a new run of fit's own fitness keeps each member's optimiser state across generations (see fit)
KEEP_OPTIMISER_STATE = True
#: a new run's first generation draws this many times ``population_size`` members on a share of the examples
#: each, and keeps the best ``population_size`` (see fit's ``screening``)
SCREENING = 3
#: whether a new run of fit's own fitness trains its last generation with a step-decaying learning rate (see fit's
#: ``anneal_last``). Off: on MNIST-1D at the default budget it gave 97.06 +- 1.29% test accuracy over 5 seeds against
#: 96.66 +- 1.60% (better on 3), but random search trained alike gains more (24 members: 94.30% to 96.16%), so the
#: search's margin over it falls from 1.50 to 0.90 points (benchmarks/RESULTS.md)
ANNEAL_LAST = False


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
            before = stored.get(name, _ABSENT.get(name))
            if before != settings[name]:
                raise RunDirectoryError(
                    f"fit: out_dir {str(out_dir)!r} holds a run with {name}={before!r}, but this call has "
                    f"{name}={settings[name]!r}; use another out_dir, or the same task, data, key and population_size"
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
    leftover = lambda name: name == LOCK_FILE or (name.startswith(_RUN_TMP) and name.endswith(".tmp"))
    if out_dir.exists() and any(not leftover(p.name) for p in out_dir.iterdir()):
        raise RunDirectoryError(
            f"fit: out_dir {str(out_dir)!r} is not empty and holds no naivega_jax run (no run.json); "
            "choose an empty or new directory"
        )
    return None


def _optimiser_record(optimiser: Any) -> Any:
    """What run.json records of fit's ``optimiser``: None, a spec as its dict, or ``"optax"`` (an optax object has
    no stable description; a resumed run trusts the call)."""
    if optimiser is None:
        return None
    if isinstance(optimiser, Optimiser):
        try:
            return optimiser.to_dict()
        except ValueError:  # a schedule as its learning rate: no stable description either
            return f"{type(optimiser).__name__} (schedule)"
    return "optax"


def _write_run_json(out_dir: Path, document: dict[str, Any]) -> None:
    # write then rename: a run killed here must not leave a half-written run.json
    write_text_atomic(out_dir / "run.json", json.dumps(document, indent=1))


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
    task: str = "classification",
    optimiser: Any = None,
    keep_optimiser_state: bool | None = None,
    screening: int | None = None,
    final_candidates: int | None = None,
    initial_members: Sequence[Any] | None = None,
    anneal_last: bool | None = None,
) -> Population:
    """Searches for a classifier (or, ``task="regression"``, a regressor) of ``x``: images ``(n, H, W, C)``,
    sequences ``(n, L, C)`` or vectors ``(n, F)``.

    AutoFlux (NaiveGAflux) as a function: a population sampled from ``default_space``, trained a little every
    generation (``TrainThenFitness``: ``epochs_per_generation`` epochs on the training part, by default enough for
    about ``SAMPLES_PER_GENERATION`` examples, see ``default_epochs``; on data of at least 1.5 times that many
    examples, by default one epoch of the next of ``default_partitions`` consecutive parts of it, as upstream trains
    a fixed number of batches per generation, while ``epochs_per_generation`` given trains whole epochs; then
    ``AccuracyVsSize`` on the validation part, the last ``validation_split`` of the data), evolved by 2 elites plus
    tournament selection with crossover and mutation (``default_evolution``). Weights survive mutation, so models
    that stay accumulate training. After each generation's fitness the population is checkpointed atomically under
    ``out_dir`` (with the keys, so a resumed run reaches exactly the population an uninterrupted one would, unless
    a final phase, see ``final_training``, trained its best on before the resume), the
    best candidate's graph, lineage and picture are written to ``out_dir/best``, and ``callbacks`` are called with
    the scored population.

    Vectors stay vectors: for ``(n, F)`` data the default space is ``tabular_space`` (MLPs: a standardising batch
    norm, 1-3 dense layers with batch norm or dropout, the output layer), and the best graph takes ``(n, F)`` as it
    comes. The standardisation is part of every graph: its first vertex, a batch norm shielded from mutation whose
    running mean and variance ``fit`` sets to the training data's before training (``standardise_inputs``), so
    nothing is to be applied to the inputs of an exported model.

    ``task`` is ``"classification"`` (default: ``y`` holds class labels, one per example) or ``"regression"``:
    ``y`` holds real targets, ``(n,)`` or ``(n, T)``; the models have ``T`` linear outputs (1 for ``(n,)``: the best
    graph predicts ``(n, 1)``), train on the squared error (per example the mean over the columns), and the fitness
    on the validation split is ``MSEFitness``: ``1 / (1 + MSE / baseline)``, the baseline being the validation MSE
    of predicting the training mean (0.5: as good as the mean; 1: perfect). The summary then has the validation and
    test MSE beside that baseline's. Targets of any scale: the default spaces end in a ``FixedAffine`` set to the
    training targets' standard deviation and mean (``scale_targets``), and the loss is the squared error in units
    of that deviation (``ScaledSquaredError``), so the layers before it learn standardised targets while the graph
    predicts in the targets' units (with a ``space`` of your own the loss is the plain ``squared_error``).
    Label checks (integer labels, every class in the validation split, known test labels) are classification's
    only. A run records its task in run.json; resuming it with another is refused.

    A ``fitness`` of your own replaces the default training and scoring (e.g. an ``ng.TrainThenFitness`` with
    your ``loss``); ``fit`` then checks ``x`` and ``y`` as the task says and runs it as it is.

    The defaults (8 candidates after a screen of 24, 6 generations) fit a small machine: on MNIST-1D a run takes a
    few minutes on 2 CPU cores and its best model reaches ~97% test accuracy (README).

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
    validation and, with ``test_data=(x_test, y_test)``, test accuracy, or for regression MSE; parameters; wall time
    split into compile, train and other seconds; where the files are) is printed and written to
    ``out_dir/summary.json``.

    Without an executor members train in this process one after another, and a background thread compiles the
    next members' executables while one trains (``ng.evolution.evaluate(..., precompile=True)``; the numbers are the
    same);
    ``precompile`` (default: on exactly when there is no executor) switches it.
    ``executor`` (``ng.distributed.make_executor("devices" | "ray", ...)``) evaluates members elsewhere; the population
    is the
    same whichever executor runs it. It gets ``executor_chunk`` members at a time (all remaining ones when None),
    and the time budget is checked between chunks.

    ``run_info`` (JSON-friendly) is stored in ``out_dir/run.json`` with the run's settings when the run starts.

    ``final_training`` (a share in (0, 1); 0: none, as upstream) keeps that share of the budget for
    training the best candidate on at the end, with a step-decaying learning rate (``_final.final_plan``), keeping
    the weights that score best on the validation split: with a ``time_budget``, the search stops at
    ``(1 - final_training) * time_budget`` and the best trains until the budget's end (in fractions of an epoch
    where a whole one does not fit); without one, the best trains ``final_training / (1 - final_training)`` times
    the examples the search trained on. It needs ``fit``'s own training (the default fitness or a
    ``TrainThenFitness``), and runs when the search ends by ``max_generations`` or its time budget (not after a stop
    signal). The trained candidate replaces the best in the last checkpoint (its fitness is the search's;
    ``info["final"]`` has the final phase's epochs and validation accuracies). By default
    (None) a ``time_budget`` with fit's own training keeps ``TIMED_FINAL_TRAINING`` = 0.5 of it: the search gets the
    first half, and if that stops it the best trains for the rest (under a time budget that cuts the search, no member
    trains more than a few epochs: on Fashion-MNIST in 15 minutes, about 2, and the final phase took the search's
    best from 86.95% to about 90% test accuracy, benchmarks/RESULTS.md); a search that ends by ``max_generations``
    within its half ends the run, as without a time budget, where the default is none.

    ``final_candidates`` (default None: ``TIMED_FINAL_CANDIDATES`` = 2 under a ``time_budget``, else 1) races up
    to that many of the fittest members at the start of a timed final phase: each trains as the final phase would
    (its step decay fitted into its share) for an equal share of ``RACE_SHARE`` = 0.4 of the final phase's time, and
    the one with the best validation accuracy trains on from there for the rest; the others stay as the search left
    them. The search's fitness compares members after equal training examples, but under a time budget they train at
    very different speeds: on Fashion-MNIST in 15 minutes the fittest member (393,402 parameters, about 400 s an
    epoch) ended 2 points below the second fittest (107,770, about 120 s) trained the same way. Only members that
    trained faster in the search than every fitter entrant enter (one slower and less fit would not get further in
    the same time), so when the fittest is also the fastest it trains on alone. The trained member is the run's best
    (``best/``, the summary, first in the returned population) whatever its fitness; ``info["final"]["race"]`` has
    every entrant's fitness, size, epochs and validation score. 1: the fittest trains on alone. Racing needs a
    ``time_budget``.

    ``screening`` (default None: ``SCREENING`` = 3 for a new run of ``fit``'s own fitness, and what a resumed run
    started with) makes the first generation a screen: ``screening * population_size`` members are drawn (the
    first ``population_size`` of them are those an unscreened run draws), each trains on ``1 / screening`` of the
    examples a member of a later generation trains on (``round(epochs / screening)`` epochs, or one epoch of a
    share of the data when a generation is shorter), and the best ``population_size`` go on unchanged into
    generation 2, where evolution starts. The first generation then costs what any other does and sees three times
    the architectures. A longer run's screen keeps its share of the run: with ``max_generations`` of 12 or more (and
    no ``time_budget``) each screened member trains ``max_generations // 6`` times as much (``screen_scale``: 8
    epochs instead of 2 at 24 generations), so the members that go on are picked after longer training, and the
    screen counts as the generations its extra training would pay for (at 24 generations on MNIST-1D: 5, so the run
    ends at generation 20, having spent about the examples of a 24-generation run with the 2-epoch screen; the
    first log line says so). 1 is upstream's first generation. It needs ``fit``'s own training (the default fitness or a
    ``TrainThenFitness``); with a ``TrainThenFitness`` of your own it is off unless you set it (the run's first log
    line says whether generation 1 screens).

    ``optimiser`` (default None: each member draws its optimiser and learning rate, and they evolve, as upstream)
    trains every member with one optimiser, unevolved: an optimiser spec (``ng.Adam(1e-3)``, a schedule as its
    learning rate) or any ``optax.GradientTransformation`` (``optax.adamw(1e-3)``). The members' ``optimiser`` is
    then None and the default fitness's ``default_optimiser`` is this one (checkpoints hold no optax object; a resumed
    run takes the optimiser from the call again). ``keep_optimiser_state`` (default None: True for a new run, and
    what a resumed run started with) continues each member's optimiser state (Adam's moments, its step count) from
    generation to generation, carried through its mutations (``ng.TrainThenFitness(keep_optimiser_state=True)``);
    False starts it afresh every generation, as upstream. On MNIST-1D at the default budget keeping it gave
    95.44 +- 1.02% test accuracy over 5 seeds against 95.02 +- 1.70% (benchmarks/RESULTS.md).

    ``anneal_last`` (default None: ``ANNEAL_LAST`` = False for a new run, and what a resumed run started with)
    True trains the last generation (``max_generations``) with a step-decaying learning rate: each member trains
    its epochs in the final phase's steps (half of them at its learning rate, 0.3 at 0.3 times it, the rest at 0.1
    times; whole epochs, ``ng.evolution.learning_rate_plan``, so a generation of one epoch trains at its rate), its
    optimiser state running on through them (``ng.TrainThenFitness(learning_rate_steps=...)``). The same examples
    and generations; the members the run returns have settled at a low learning rate, and the last selection
    compares them so. Earlier generations train at the members' own rates, as upstream. A generation a time budget
    ends early is not the last (a final phase follows it instead). The annealed generation is the run's result, not
    the search's state: resuming a finished run with a larger ``max_generations`` goes on from the generation before
    it (the run keeps the last two checkpoints; from generation 1, afresh) and trains it again at the members' own
    rates, so the run reaches what an uninterrupted longer run reaches, at the cost of that generation's training
    (counted in the totals). On MNIST-1D at the default budget: 97.06 +- 1.29% test accuracy over 5 seeds against
    96.66 +- 1.60% (benchmarks/RESULTS.md). It needs ``fit``'s own training or a ``TrainThenFitness``.

    ``initial_members`` puts members of your own into a new run's first generation, in its last places (before the
    screen: they compete in it as the members drawn do): each an ``ng.Candidate``, an ``ng.Graph`` (trained with
    ``Adam(1e-3)`` at batch size 32; with ``optimiser`` given, that one) or a space to draw one from; so a search
    can start from the model you have. Default None: ``default_members`` when the space is the default one, that is
    for images one member drawn from ``conventional_space``, the CNN people write by hand (two conv + max pool
    stages, a flatten and a dense layer), and for sequences and vectors none. ``()``: every member drawn from the
    space, as upstream. On Fashion-MNIST in 15 minutes the default search ended 1.27 +- 0.69 points below that CNN
    trained alone (Adam 1e-3, batch size 128) without it, and 0.69 +- 0.12 points above it with it, having trained
    it at batch size 32 with the final phase's decaying learning rate (3 seeds, benchmarks/RESULTS.md). A resumed
    run has its first generation already.

    Returns the last scored population, best candidate first, with the run's summary (what summary.json holds) in
    its ``info["summary"]``.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> x, y, _, _ = ng.datasets.load("digits")
        >>> pop = ng.autofit.fit(x[:300], y[:300], key=jax.random.key(0), out_dir=tempfile.mkdtemp(),
        ...                      population_size=3, max_generations=1, progress=False)  # doctest: +SKIP
    """
    settings = FitSettings(
        population_size=population_size,
        max_generations=max_generations,
        time_budget=time_budget,
        validation_split=validation_split,
        epochs_per_generation=epochs_per_generation,
        executor_chunk=executor_chunk,
        precompile=precompile,
        progress=progress,
        final_training=final_training,
        task=task,
        optimiser=optimiser,
        keep_optimiser_state=keep_optimiser_state,
        screening=screening,
        final_candidates=final_candidates,
        anneal_last=anneal_last,
    )
    settings.check_fitness(fitness)
    final_training = settings.final_share(fitness)
    if executor is not None and not callable(executor):
        raise TypeError(f"fit: executor must be None or callable(fn, items), got {executor!r}")
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"fit: callbacks[{i}] must be callable as cb(population), got {cb!r}")
    key_bits(key)
    ensure_default_compilation_cache()
    out_dir = Path(out_dir)
    job = _Job.make(x, y, test_data, key, out_dir, settings, space, fitness)
    if initial_members is None:
        initial_members = () if space is not None else default_members(job.in_shape, job.nout, task=job.task)
    members = _check_members(key, initial_members, job, population_size * job.screening)
    plan = {"max_generations": max_generations, "time_budget": time_budget, "epochs_per_generation": job.epochs}
    document = job.run_document(settings, key, np.shape(y)[1:], run_info)
    _check_run_dir(out_dir, document)  # before creating anything
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir), StopSignals() as stop:
        resume = _start_session(out_dir, document, plan)
        start = time.monotonic()
        deadline = None if time_budget is None else start + float(time_budget)
        search_deadline = deadline
        if time_budget is not None and final_training is not None:
            search_deadline = start + (1.0 - final_training) * float(time_budget)
        with run_log(out_dir) as log_handler:
            display = RunProgress(
                population_size=population_size,
                max_generations=job.last_generation(max_generations),
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
                fitness=job.fitness,
                evolution=evolution or default_evolution(population_size, job.in_shape),
                executor=executor,
                executor_chunk=executor_chunk,
                progress=display,
                start=start,
                precompile=executor is None if precompile is None else precompile,
                stop=stop,
                size=population_size,
                n_train=int(job.x_tr.shape[0]),
                screening=job.screening,
                screen_scale=job.screen_scale,
                final_candidates=settings.race_size(),
                anneal_last=job.anneal_last,
            )
            try:
                display.say(job.describe(resume, out_dir, settings))
                if members and not resume:
                    display.say(
                        f"generation 1: {population_size * job.screening - len(members)} members drawn from the "
                        f"space and {len(members)} given (initial_members: the last {len(members)})"
                    )
                population, stopped = run.search(
                    resume,
                    job.space,
                    job.in_shape,
                    job.prepare,
                    draw_optimisers=optimiser is None,
                    members=members,
                )
                if final_training is not None and stopped in settings.final_after():
                    population = run.final(
                        population,
                        final_training,
                        deadline,
                        (job.x_tr, job.y_tr),
                        (job.x_val, job.y_val),
                        job.fitness.loss,
                        job.score if job.task == "regression" else None,
                    )
                    if stop.signum is not None:
                        stopped = run.stop_reason()
                tally = run.session()
                summary = run_summary(
                    out_dir,
                    population,
                    stopped=stopped,
                    session=tally,
                    totals=add_totals(run.previous, tally),
                    engine=run.engine,
                    val_data=(job.x_val, job.y_val),
                    test_data=job.test,
                    task=job.task,
                    train_targets=job.y_tr if job.task == "regression" else None,
                    screen=run.screen,
                )
                display.close()
                display.say(format_summary(summary))
                if stop.signum is not None:
                    display.say(f"stopped by {stop.name}; continue the run with the same out_dir ({out_dir})")
            finally:
                display.close()
    return _sorted(population).replace(info={"summary": summary})


def _start_session(out_dir: Path, settings: dict[str, Any], plan: dict[str, Any]) -> bool:
    """Checks the run directory again under its lock (another process may have started it), records this session
    in run.json, and says whether the run resumes (it has a checkpoint)."""
    stored = _check_run_dir(out_dir, settings)
    session = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "plan": plan}
    document = {**(stored or {}), **settings}
    if stored is not None and stored.get("test_sha256") and not settings["test_sha256"]:
        document["test_sha256"] = stored["test_sha256"]
    document.update(plan=plan, sessions=[*(stored or {}).get("sessions", []), session])
    _write_run_json(out_dir, document)
    return stored is not None and bool(run_checkpoints(out_dir))


@dataclasses.dataclass(frozen=True)
class _Job:
    """What ``fit`` searches with, made from its data and settings: the splits, the space, the training."""

    task: str
    x_tr: Any
    y_tr: Any
    x_val: Any
    y_val: Any
    in_shape: tuple[int, ...]
    classes: Any
    nout: int
    test: Any
    space: Any
    prepare: Callable[[Any], Any] | None
    fitness: Any
    score: Callable | None
    screening: int
    #: how many times the screen trains each member what it does in a run of ``SCREEN_GENERATIONS`` generations
    screen_scale: int
    anneal_last: bool
    #: whether ``fitness`` is the training fit made itself (False: the caller's)
    owns_fitness: bool

    @property
    def epochs(self) -> int | None:
        return getattr(self.fitness, "epochs", None)

    @property
    def partitions(self) -> int:
        return getattr(self.fitness, "partitions", 1)

    @classmethod
    def make(cls, x, y, test_data, key, out_dir: Path, settings: FitSettings, space, fitness) -> _Job:
        task = settings.task
        x_tr, y_tr, x_val, y_val, in_shape, classes = prepare_data(x, y, settings.validation_split, task)
        # a new run of fit's own fitness keeps optimiser states and screens; a resumed one goes on as it started
        # (runs from before an option: without it)
        keep = settings.keep_optimiser_state
        if keep is None and fitness is None:
            keep = _as_started(out_dir, "keep_optimiser_state", KEEP_OPTIMISER_STATE, _is_bool)
        owns_fitness = fitness is None
        screening = settings.screening
        if screening is None:
            screening = 1 if fitness is not None else _as_started(out_dir, "screening", SCREENING, _is_positive_int, 1)
        # an unscreened run records 1: it has no screen to scale
        new_scale = screen_scale(settings.max_generations, settings.time_budget) if screening > 1 else 1
        scale = _as_started(out_dir, "screen_scale", new_scale, _is_positive_int, 1)
        anneal = settings.anneal_last
        if anneal is None:
            anneal = fitness is None and _as_started(out_dir, "anneal_last", ANNEAL_LAST, _is_bool)
        if len(in_shape) == 1 and _stored(out_dir, "in_shape") == [*in_shape, 1]:
            # a run started before vectors stayed vectors: it searched sequences (F, 1), and resumes as it started
            x_tr, x_val, in_shape = x_tr[..., None], x_val[..., None], (*in_shape, 1)
        nout = int(classes.size) if task == "classification" else int(y_tr.shape[1])
        test = _prepare_test(test_data, classes, in_shape, nout)
        if space is not None and fitness is None:
            _check_space(key, space, in_shape, nout, task)
        loss: Any = _CROSS_ENTROPY
        steps: list[Callable[..., Any]] = []  # what the default space's graphs get from the data before any training
        if space is None and len(in_shape) == 1:
            steps.append(functools.partial(standardise_inputs, mean=x_tr.mean(axis=0), var=x_tr.var(axis=0)))
        if task == "regression":
            loss = squared_error
            if space is None:
                mean, std = target_statistics(y_tr)
                steps.append(functools.partial(scale_targets, mean=mean, std=std))
                loss = ScaledSquaredError(tuple(float(s) for s in std))
        # regression's final training picks its weights by the default score, whatever trained the search
        score: Fitness | None = None
        if fitness is None or task == "regression":
            score = _default_score(task, x_tr, y_tr, x_val, y_val)
        if fitness is None and score is not None:
            # data too large for an epoch per generation: each generation trains the next part of it (unless
            # epochs_per_generation asks for whole epochs); a resumed run goes on as it started
            new = default_partitions(x_tr.shape[0]) if settings.epochs_per_generation is None else 1
            parts = _as_started(out_dir, "partitions", new, _is_positive_int, 1)
            fitness = TrainThenFitness(
                partitions=parts,
                train_data=(x_tr, y_tr),
                fitness=score,
                loss=loss,
                invalid_fitness=0.0,
                epochs=settings.epochs_per_generation or default_epochs(x_tr.shape[0]),
                keep_optimiser_state=bool(keep),
                **({} if settings.optimiser is None else {"default_optimiser": settings.optimiser}),
            )
        return cls(
            task=task,
            x_tr=x_tr,
            y_tr=y_tr,
            x_val=x_val,
            y_val=y_val,
            in_shape=in_shape,
            classes=classes,
            nout=nout,
            test=test,
            space=default_space(in_shape, nout, task=task) if space is None else space,
            prepare=functools.partial(_apply_all, steps) if steps else None,
            fitness=fitness,
            score=score,
            screening=screening,
            screen_scale=scale,
            anneal_last=bool(anneal),
            owns_fitness=owns_fitness,
        )

    def run_document(self, settings: FitSettings, key, target_shape, run_info) -> dict[str, Any]:
        """The run's settings as run.json records them (a resume must agree on the ones in ``_SAME``)."""
        return {
            "format": RUN_FORMAT,
            "task": self.task,
            "in_shape": list(self.in_shape),
            "classes": None if self.classes is None else self.classes.tolist(),
            "targets": None if self.task == "classification" else list(target_shape),
            "n_train": int(self.x_tr.shape[0]),
            "n_val": int(self.x_val.shape[0]),
            "population_size": settings.population_size,
            "optimiser": _optimiser_record(settings.optimiser),
            "keep_optimiser_state": bool(getattr(self.fitness, "keep_optimiser_state", False)),
            "screening": self.screening,
            "screen_scale": self.screen_scale,
            "partitions": self.partitions,
            "anneal_last": self.anneal_last,
            "key": list(key_bits(key)),
            "data_sha256": data_fingerprint(self.x_tr, self.y_tr, self.x_val, self.y_val),
            "test_sha256": None if self.test is None else data_fingerprint(*self.test),
            **(run_info or {}),
        }

    def last_generation(self, max_generations: int) -> int:
        """The generation a run of ``max_generations`` ends at (``last_generation``: less with a scaled screen)."""
        n_train = int(self.x_tr.shape[0])
        return last_generation(max_generations, self.fitness, self.screening, self.screen_scale, n_train)

    def describe(self, resume: bool, out_dir: Path, settings: FitSettings) -> str:
        epochs, budget = self.epochs, settings.time_budget
        return (
            f"{'resuming' if resume else 'starting'} a run in {out_dir}: {self.x_tr.shape[0]} training and "
            f"{self.x_val.shape[0]} validation examples of shape {self.in_shape}, {_outputs(self.task, self.nout)}; "
            f"population {settings.population_size}, up to {settings.max_generations} generations"
            + (f" of {epochs} epochs" if epochs else "")
            + (f", each on the next of {self.partitions} parts of the data" if self.partitions > 1 else "")
            + (f", time budget {budget:.0f} s" if budget else "")
            + self._screen_note(settings)
        )

    def _screen_note(self, settings: FitSettings) -> str:
        """What the start line says of the first generation's screen: on, or off by default because the run trains
        with a ``TrainThenFitness`` of the caller's (a user who passes one to change a detail would not know)."""
        if self.screening > 1:
            note = f"; generation 1 screens {settings.population_size * self.screening} members"
            last = self.last_generation(settings.max_generations)
            if last == settings.max_generations:
                return note
            return (
                note + f", each trained {self.screen_scale}x a {SCREEN_GENERATIONS}-generation run's screen: it counts "
                f"as {settings.max_generations - last + 1} generations, so the run ends at generation {last}"
            )
        if settings.screening is None and isinstance(self.fitness, TrainThenFitness) and not self.owns_fitness:
            return f"; no screen with a fitness of your own (screening={SCREENING} screens its first generation)"
        return ""


def _apply_all(steps: list[Callable], graph: Any) -> Any:
    for step in steps:
        graph = step(graph)
    return graph


def _stored(out_dir: Path, name: str, *, missing: Any = None, absent: Any = None) -> Any:
    """Setting ``name`` of the run in ``out_dir``: ``missing`` if there is no run there (or not one: _check_run_dir
    says what is wrong), ``absent`` if its run.json predates the setting."""
    try:
        return json.loads((out_dir / "run.json").read_text()).get(name, absent)
    except (OSError, ValueError, AttributeError):
        return missing


def _as_started(out_dir: Path, name: str, new: Any, valid: Callable[[Any], bool], invalid: Any = None) -> Any:
    """Setting ``name`` of the run in ``out_dir`` as it started: ``new`` if there is no run there, ``_ABSENT[name]``
    if its run.json predates the setting, ``invalid`` (default ``new``) for a stored value ``valid`` refuses."""
    stored = _stored(out_dir, name, missing=new, absent=_ABSENT[name])
    return stored if valid(stored) else (new if invalid is None else invalid)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _outputs(task: str, nout: int) -> str:
    return f"{nout} classes" if task == "classification" else f"{nout} target column{'s' * (nout > 1)}"


def _default_score(task: str, x_tr, y_tr, x_val, y_val) -> Fitness:
    """The validation fitness of fit's own training: AutoFlux's ``AccuracyVsSize``, or for regression
    ``MSEFitness`` against the MSE of predicting the training mean (``FITNESS_DEFINITION``)."""
    if task == "classification":
        return AccuracyVsSize((x_val, y_val))
    # validation targets that all equal the training mean give no baseline: all the targets' spread is one
    baseline = baseline_mse(y_tr, y_val) or float(np.var(np.concatenate([y_tr, y_val])))
    return MSEFitness((x_val, y_val), baseline=baseline)


def _sorted(population: Population) -> Population:
    """Best first, by ``run_rank`` (a member the final phase trained first); unscored members last."""

    def rank(c: Candidate) -> tuple[bool, bool, float]:
        return (False, False, -math.inf) if c.fitness is None else (True, *run_rank(c))

    return population.replace(candidates=tuple(sorted(population, key=rank, reverse=True)))
