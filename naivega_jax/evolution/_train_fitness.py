"""Fitness strategies that train: ``TrainThenFitness`` and ``TrainAccuracyFitness`` (NaiveGAflux semantics).

Training goes through the compile-aware engine (``ng.train_graph``): one pass (``epochs``) over the generation's
data with the candidate's optimiser (state created fresh every call, as upstream) and batch size. A NaN/Inf loss
stops training; the candidate then keeps its untrained graph, gets ``invalid_fitness``, and ``info["failure"]``
says why. Training that runs out of device memory (XLA ``RESOURCE_EXHAUSTED``) is retried once with half the batch
size; if that fails too the candidate gets ``invalid_fitness`` and the reason. Compile and train seconds, steps and
cache counters go to ``candidate.info``.

Fixed ``train_data`` is copied to the device once, when the fitness is built (``_OwnedData``), and the engine gets
that copy: a generation trains dozens of candidates on the same data, and copying it per candidate would cost a
transfer of the whole set each time on an accelerator.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..train import Adam, Optimiser, TrainResult, as_optimiser, is_plain_optax, precompile_training, train_graph
from ..train.internal import CALL_STAT_KEYS, DRIVERS, batches_on_device, opt_state_fits
from ._candidate import Candidate
from ._protocols import Fitness

logger = logging.getLogger("naivega_jax")

_CE = optax.softmax_cross_entropy_with_integer_labels
_DEFAULT_OPTIMISER = Adam(1e-3)


def _check_config(self: Any, where: str) -> None:
    data = self.train_data
    if not callable(data) and not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(
            f"{where}: train_data must be a pair (x, y) or a callable train_data(generation) -> (x, y), "
            f"got {type(data).__name__}"
        )
    if not callable(self.loss):
        raise TypeError(f"{where}: loss must be callable as loss(outputs, y) -> per-example values, got {self.loss!r}")
    epochs = self.epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"{where}: epochs must be a positive int, got {epochs!r}")
    if not isinstance(self.default_optimiser, Optimiser) and not is_plain_optax(self.default_optimiser):
        raise TypeError(
            f"{where}: default_optimiser must be an optimiser spec (ng.Adam(1e-3), ...) or an optax "
            f"GradientTransformation, got {self.default_optimiser!r}"
        )
    if self.driver not in DRIVERS:
        raise ValueError(f"{where}: driver must be one of {DRIVERS}, got {self.driver!r}")
    if not isinstance(self.keep_optimiser_state, bool):
        raise TypeError(f"{where}: keep_optimiser_state must be True or False, got {self.keep_optimiser_state!r}")
    parts = getattr(self, "partitions", 1)
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"{where}: partitions must be a positive int, got {parts!r}")
    if parts > 1 and callable(data):
        raise ValueError(f"{where}: partitions={parts} needs fixed train_data (x, y); train_data is a function")
    if not isinstance(self.invalid_fitness, (int, float)) or isinstance(self.invalid_fitness, bool):
        raise TypeError(f"{where}: invalid_fitness must be a number, got {self.invalid_fitness!r}")
    if hasattr(self, "learning_rate_steps"):
        object.__setattr__(self, "learning_rate_steps", _check_steps(self.learning_rate_steps, where))
    if not callable(data):
        _check_data(data[0], data[1], self.loss, where)


def _check_steps(steps: Any, where: str) -> tuple[tuple[float, float], ...]:
    """``learning_rate_steps`` as a tuple of ``(share, factor)`` float pairs; raises on anything else."""
    if not isinstance(steps, (tuple, list)):
        raise TypeError(f"{where}: learning_rate_steps must be a sequence of (share, factor) pairs, got {steps!r}")
    checked = []
    for step in steps:
        ok = isinstance(step, (tuple, list)) and len(step) == 2 and all(_positive(v) for v in step)
        if not ok or not step[0] <= 1:
            raise ValueError(
                f"{where}: learning_rate_steps must hold (share, factor) pairs with 0 < share <= 1 and factor > 0, "
                f"got {step!r}"
            )
        checked.append((float(step[0]), float(step[1])))
    return tuple(checked)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def learning_rate_plan(epochs: int, steps: Sequence[tuple[float, float]] = ()) -> list[tuple[int, float]]:
    """``(epochs, learning-rate factor)`` per call when ``epochs`` whole epochs train in ``steps``, ``(share, factor)``
    pairs: each step ``max(1, round(share * epochs))`` epochs (at most those left), the last step the rest; steps of
    0 epochs are dropped. No steps: all the epochs at the learning rate.

    Example:
        >>> from naivega_jax.evolution import learning_rate_plan
        >>> decay = ((0.5, 1.0), (0.3, 0.3), (0.2, 0.1))
        >>> learning_rate_plan(10, decay), learning_rate_plan(5, decay)
        ([(5, 1.0), (3, 0.3), (2, 0.1)], [(2, 1.0), (2, 0.3), (1, 0.1)])
        >>> learning_rate_plan(2, decay), learning_rate_plan(1, decay), learning_rate_plan(3)
        ([(1, 1.0), (1, 0.3)], [(1, 1.0)], [(3, 1.0)])
    """
    if not steps:
        return [(epochs, 1.0)] if epochs > 0 else []
    plan, left = [], epochs
    for i, (share, factor) in enumerate(steps):
        n = left if i == len(steps) - 1 else min(left, max(1, round(share * epochs)))
        if n > 0:
            plan.append((n, factor))
            left -= n
    return plan


def _check_data(x: Any, y: Any, loss: Callable, where: str) -> None:
    """What can be checked without a graph, before any training: examples present, as many labels as examples,
    no NaN/Inf inputs, and (for the default loss) integer labels >= 0."""
    leaves = list(x.values()) if isinstance(x, Mapping) else list(x) if isinstance(x, (tuple, list)) else [x]
    y = np.asarray(y)
    n = y.shape[0] if y.ndim else 0
    for i, leaf in enumerate(leaves):
        a = np.asarray(leaf)
        name = "x" if len(leaves) == 1 else f"x[{i}]"
        if a.ndim == 0 or a.shape[0] == 0:
            raise ValueError(f"{where}: train_data {name} is empty (shape {a.shape}); give at least one example")
        if a.shape[0] != n:
            raise ValueError(f"{where}: train_data {name} has {a.shape[0]} examples but y has shape {y.shape}")
        if np.issubdtype(a.dtype, np.inexact):
            bad = ~np.isfinite(a)
            if bad.any():
                first = tuple(int(j) for j in np.argwhere(bad)[0])
                raise ValueError(
                    f"{where}: train_data {name} holds {int(bad.sum())} NaN or Inf values (the first, {a[first]}, "
                    f"at index {first}); clean the data first"
                )
    if loss is _CE:
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{where}: the default loss takes integer class labels, one per example; got y of dtype {y.dtype} "
                f"and shape {y.shape}"
            )
        if y.min() < 0:
            j = int(np.argmin(y))
            raise ValueError(f"{where}: class labels must be >= 0, got {int(y[j])} at index {j}")


def _default_device() -> jax.Device:
    """The device the calling thread computes on: ``jax.default_device`` if set (``ng.distributed.DeviceExecutor`` sets
    it per
    thread), else the first device."""
    default = jax.config.jax_default_device  # type: ignore[attr-defined]  # jax's Config declares its options at run time
    if isinstance(default, jax.Device):
        return default
    return jax.devices(default)[0] if isinstance(default, str) else jax.devices()[0]


def _device_copy(x: Any) -> Any:
    """``x`` (an array, or a tuple, list or dict of arrays) as new ``jax.Array``s on the default device; a
    ``jax.Array`` cannot change and is kept as it is."""
    if isinstance(x, Mapping):
        return {k: _device_copy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_device_copy(v) for v in x)
    return x if isinstance(x, jax.Array) else jnp.array(x, copy=True)


class _OwnedData:
    """A train fitness's fixed ``(x, y)``: copied when the fitness is built, so what it trains on is the data as it
    was then, whatever later happens to the caller's arrays, and no candidate copies it again.

    Where the engine gathers batches on the device (off CPU), a thread training on another device
    (``ng.distributed.DeviceExecutor``) gets its own copy there, made the first time it asks; on CPU the engine cuts
    batches
    from a zero-copy host view of the one copy. Pickles as host arrays (``ng.distributed.RayExecutor`` ships the
    fitness).
    """

    def __init__(self, x: Any, y: Any):
        x, y = _device_copy(x), _device_copy(y)
        self.labels = np.asarray(jax.device_get(y))  # for the label range check without a transfer per candidate
        self._copies = {_default_device(): (x, y)}
        self._first = (x, y)
        self._lock = threading.Lock()

    def here(self) -> tuple[Any, Any]:
        """``(x, y)`` on the calling thread's default device."""
        if not batches_on_device():
            return self._first
        device = _default_device()
        with self._lock:
            found = self._copies.get(device)
            if found is None:
                found = self._copies[device] = jax.device_put(self._first, device)
        return found

    def __reduce__(self):
        return _OwnedData, jax.device_get(self._first)


def part_size(n: int, parts: int) -> int:
    """Examples in each of ``parts`` parts of ``n`` examples, as ``TrainThenFitness(partitions=parts)`` splits them:
    ``ceil(n / parts)``.

    Example:
        >>> from naivega_jax.evolution import part_size
        >>> part_size(10, 3), part_size(54000, 3)
        (4, 18000)
    """
    return -(-n // parts)


def partition(x: Any, y: Any, parts: int, index: int) -> tuple[Any, Any]:
    """Part ``index`` of ``parts`` of ``(x, y)``: ``ceil(n / parts)`` consecutive examples from ``index * ceil(n /
    parts)``, the last part wrapping round to the first examples, so that every part has one size (one compiled
    executable) and every example is in a part.

    Example:
        >>> import numpy as np
        >>> from naivega_jax.evolution._train_fitness import partition
        >>> x = np.arange(10)
        >>> [partition(x, x, 3, i)[1].tolist() for i in range(3)]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]
    """
    n = int(np.shape(y)[0])
    size = part_size(n, parts)
    start = index * size
    if start + size <= n:
        return x[start : start + size], y[start : start + size]
    rows = np.arange(start, start + size) % n
    return np.asarray(x)[rows], np.asarray(y)[rows]


def _owned(self: Any, candidate: Candidate) -> _OwnedData:
    """The fixed data ``candidate`` trains on: all of it, or with ``partitions`` its generation's part."""
    parts = self._parts
    return self._data if parts is None else parts[(candidate.generation - 1) % len(parts)]


def _own(self: Any) -> None:
    """Copies fixed ``train_data`` for the fitness (``_OwnedData``): whole, or as its ``partitions`` parts."""
    parts = getattr(self, "partitions", 1)
    data = None if callable(self.train_data) or parts > 1 else _OwnedData(*self.train_data)
    split = None
    if parts > 1:
        x, y = self.train_data
        split = tuple(_OwnedData(*partition(x, y, parts, i)) for i in range(parts))
    object.__setattr__(self, "_data", data)
    object.__setattr__(self, "_parts", split)


def _check_label_range(graph: Any, y: Any, loss: Callable, where: str) -> None:
    """For the default loss: every label indexes one of the graph's outputs (optax would give NaN or garbage)."""
    if loss is not _CE or len(graph.output_names) != 1:
        return
    shape = graph.shape(graph.output_names[0])
    y = np.asarray(y)
    if len(shape) != 1 or y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        return
    j = int(np.argmax(y)) if y.max() >= shape[0] else int(np.argmin(y))
    if not 0 <= y[j] < shape[0]:
        raise ValueError(
            f"{where}: class label {int(y[j])} (at index {j}) is out of range for a graph with {shape[0]} outputs; "
            f"labels must lie in 0..{shape[0] - 1}"
        )


def _is_out_of_memory(error: BaseException) -> bool:
    """``MemoryError``, or an XLA runtime error saying ``RESOURCE_EXHAUSTED`` or out of memory."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower())


def _brief(error: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _engine_settings(self: Any, candidate: Candidate, batch_size: int) -> dict[str, Any]:
    """The keyword arguments ``train_graph`` and ``precompile_training`` share for ``candidate``, so that a
    precompiled executable is the one training asks for."""
    return {
        "optimiser": self.default_optimiser if candidate.optimiser is None else candidate.optimiser,
        "loss": self.loss,
        "batch_size": batch_size,
        "epochs": self.epochs,
        "driver": self.driver,
        "activation_utility": self.activation_utility,
    }


def _train(self: Any, key: jax.Array, candidate: Candidate, where: str) -> tuple[Candidate, TrainResult | None]:
    """Trains the candidate's graph; returns the candidate with the trained graph and the measurements in info.

    Out of device memory: one retry at half the batch size (the candidate keeps that batch size, and
    ``info["out_of_memory"]`` says so); a second one gives ``(candidate with info["failure"], None)``.
    """
    if not isinstance(candidate, Candidate):
        raise TypeError(f"{where}: expected an ng.Candidate, got {type(candidate).__name__}")
    if callable(self.train_data):
        data = self.train_data(candidate.generation)
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"{where}: train_data(generation) must return a pair (x, y), got {type(data).__name__}")
        labels = data[1]
    else:
        owned = _owned(self, candidate)
        data, labels = owned.here(), owned.labels
    _check_label_range(candidate.graph, labels, self.loss, where)
    batch_size, oom = candidate.batch_size, None
    opt_state = _resumable_state(self, candidate)
    while True:
        try:
            result = _train_steps(self, key, candidate, data, batch_size, opt_state)
            break
        except Exception as e:
            if not _is_out_of_memory(e):
                raise
            note = f"out of memory at batch size {batch_size} ({_brief(e)})"
            if oom is not None or batch_size == 1:
                failure = f"{oom}; {note}" if oom else note
                logger.warning("%s: %s", where, failure)
                return candidate.replace(info={**candidate.info, "failure": failure}), None
            oom, batch_size = note, batch_size // 2
            logger.warning("%s: %s; retrying at batch size %d", where, note, batch_size)
    finite = result.losses[np.isfinite(result.losses)]
    info = {
        **candidate.info,
        **({"out_of_memory": f"{oom}; trained at batch size {batch_size}"} if oom else {}),
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "train_steps": result.steps,
        "train_examples": _examples_seen(result.steps, batch_size, int(np.shape(labels)[0])),
        "train_epochs": result.epochs,
        "compiles": result.compiles,
        "cache_hits": result.cache_hits,
        "fast_compiles": result.fast_compiles,
        "disk_hits": result.disk_hits,
        "background_compiles": result.background_compiles,
        "background_compile_seconds": result.background_compile_seconds,
        "driver": result.driver,
        "train_loss": float(finite[-1]) if finite.size else math.nan,
    }
    if result.nonfinite:
        logger.warning("%s", result.failure)
        info["failure"] = result.failure
    kept = result.opt_state if self.keep_optimiser_state and not result.nonfinite else None
    return candidate.replace(graph=result.graph, batch_size=batch_size, info=info, opt_state=kept), result


def _train_steps(
    self: Any, key: jax.Array, candidate: Candidate, data: Any, batch_size: int, opt_state: Any
) -> TrainResult:
    """``train_graph`` over the fitness's epochs: one call, or with ``learning_rate_steps`` one call per step of
    ``learning_rate_plan`` (step ``i`` with ``fold_in(key, i)``), the graph and the optimiser state running on from
    step to step, stopping at a NaN/Inf loss; the calls' results as one."""
    settings = _engine_settings(self, candidate, batch_size)
    plan = learning_rate_plan(self.epochs, getattr(self, "learning_rate_steps", ()))
    if len(plan) == 1 and plan[0][1] == 1.0:
        return train_graph(key, candidate.graph, *data, shuffle=self.shuffle, opt_state=opt_state, **settings)
    base = as_optimiser(settings["optimiser"])
    graph, results = candidate.graph, []
    for i, (epochs, factor) in enumerate(plan):
        optimiser = base if factor == 1.0 else base.with_learning_rate(base.learning_rate * factor)
        result = train_graph(
            jax.random.fold_in(key, i),
            graph,
            *data,
            shuffle=self.shuffle,
            opt_state=opt_state,
            **{**settings, "optimiser": optimiser, "epochs": epochs},
        )
        results.append(result)
        if result.nonfinite:
            break
        graph, opt_state = result.graph, result.opt_state
    return _joined(results)


def _joined(results: Sequence[TrainResult]) -> TrainResult:
    """Consecutive ``train_graph`` calls' results as one: the last call's graph, state and outcome; the steps, epochs,
    seconds and engine counters added up; the losses and predictions in order."""
    last = results[-1]
    if len(results) == 1:
        return last
    correct = [r.correct for r in results]
    added = {
        name: sum(getattr(r, name) for r in results) for name in ("steps", "epochs", "train_seconds", *CALL_STAT_KEYS)
    }
    return dataclasses.replace(
        last,
        losses=np.concatenate([r.losses for r in results]),
        correct=None if any(c is None for c in correct) else np.concatenate(correct),  # type: ignore[arg-type]
        **added,
    )


def _resumable_state(self: Any, candidate: Candidate) -> Any:
    """``candidate.opt_state`` if the fitness keeps optimiser states and the engine would take it for the candidate's
    optimiser and graph, else None (a fresh state)."""
    state = candidate.opt_state
    if not self.keep_optimiser_state or state is None:
        return None
    optimiser = _engine_settings(self, candidate, candidate.batch_size)["optimiser"]
    return state if opt_state_fits(optimiser, candidate.graph.params, state) else None


def _examples_seen(steps: int, batch_size: int, n: int) -> int:
    """Training examples that ``steps`` steps at ``batch_size`` consumed from ``n`` (an epoch's last batch is padded:
    its padding is not counted). The unit in which search strategies' budgets compare."""
    per_epoch = -(-n // batch_size)
    epochs, rest = divmod(steps, per_epoch)
    return epochs * n + min(rest * batch_size, n)


def _precompile(self: Any, candidate: Candidate) -> None:
    """Compiles ahead the training executable ``_train`` will ask for (``ng.train.precompile_training``); only for fixed
    ``train_data`` (a callable one may keep state that a second thread should not touch)."""
    if callable(self.train_data) or not isinstance(candidate, Candidate):
        return
    data = _owned(self, candidate).here()
    settings = _engine_settings(self, candidate, candidate.batch_size)
    plan = learning_rate_plan(self.epochs, getattr(self, "learning_rate_steps", ()))
    precompile_training(candidate.graph, *data, **{**settings, "epochs": plan[0][0] if plan else self.epochs})


def _invalid(self: Any, candidate: Candidate) -> Candidate:
    return candidate.replace(fitness=self.invalid_fitness)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainThenFitness:
    """Trains the candidate, then scores the trained candidate with ``fitness`` (NaiveGAflux ``TrainThenFitness``).

    Args:
        train_data: ``(x, y)``, copied to the device when the fitness is built (later changes to the arrays are not
            seen: build a new fitness for new data); or ``train_data(generation) -> (x, y)`` (e.g. the same data for
            every candidate of a generation), trained on as it is at each call (off CPU, numpy arrays it returns
            are copied to the device for every candidate; return jax arrays to copy them once).
        fitness: scores the trained candidate: ``fitness(key, candidate) -> candidate`` (e.g. ``AccuracyFitness``).
        loss: ``loss(outputs, y)`` -> per-example values ``(batch,)``, or values of the outputs' shape (averaged
            per example), as ``ng.train_graph`` takes; any other shape raises ``ng.ShapeError`` when the step is
            traced, so every candidate fails with that reason (``ng.evolution.evaluate`` logs it and gives the invalid
            fitness).
        invalid_fitness: the fitness when a loss is NaN or Inf (training stops; ``info["failure"]`` gets
            ``"NaN loss detected when training!"``, as upstream's warning), or when training runs out of device
            memory at the candidate's batch size and again at half of it (``info["failure"]`` names both).
        epochs: passes over the data per call.
        default_optimiser: used when ``candidate.optimiser`` is None.
        driver: the engine's epoch driver (``"auto"``, ``"loop"``, ``"scan"``).
        shuffle: shuffle the training data every epoch (by the key).
        activation_utility: give every mutable vertex a stored activation-contribution utility before training
            (utilities a graph already stores are always updated by training; the size solver prefers them).
        keep_optimiser_state: False (upstream): the optimiser state is new at every call, so Adam's moments and
            step count restart every generation. True: training continues from ``candidate.opt_state`` (the state
            its last training ended with, carried through mutations by ``ng.MapCandidate`` with
            ``ng.remap_opt_state``) and the trained candidate keeps its final state. A state that does not fit (none
            yet, another kind of optimiser) starts fresh.
        partitions: split fixed ``train_data`` into this many consecutive parts of ``ceil(n / partitions)``
            examples (the last wraps round to the first examples); a candidate of generation ``g`` trains ``epochs``
            epochs on part ``(g - 1) % partitions``. So one generation costs a part, every member of a generation
            sees the same examples, and the generations move on through the data, as upstream's
            ``RepeatPartitionIterator`` does on data too large for an epoch per generation. 1 (default): all of it.
        learning_rate_steps: ``(share, factor)`` pairs: the ``epochs`` train in steps, each ``share`` of them (whole
            epochs, ``learning_rate_plan``) at ``factor`` times the candidate's learning rate, the optimiser state
            running on from step to step (e.g. ``((0.5, 1.0), (0.3, 0.3), (0.2, 0.1))``: a step decay). A plain
            optax optimiser has no learning rate to scale: its steps train at its own. () (default): one pass at
            the learning rate, as upstream.

    The candidate's ``batch_size`` is the training batch size; after an out-of-memory retry the candidate keeps the
    halved batch size that trained, and ``info["out_of_memory"]`` records the first error. ``info`` gains
    ``compile_seconds``, ``train_seconds``, ``train_steps``, ``train_examples`` (examples the steps trained on,
    padding excluded: the unit search budgets compare in), ``train_epochs`` (epochs completed), ``compiles``,
    ``cache_hits``, ``driver`` and ``train_loss`` (the last finite step loss).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0]] * 16, np.float32); y = np.array([0, 1] * 16, np.int32)
        >>> score = lambda key, c: c.replace(fitness=ng.evaluate_accuracy(c.graph, x, y))
        >>> f = ng.TrainThenFitness((x, y), fitness=score, default_optimiser=ng.SGD(0.5), epochs=3)
        >>> c = f(jax.random.key(1), ng.Candidate(g, batch_size=8))
        >>> c.fitness, c.info["train_steps"], c.info["train_examples"], "failure" in c.info
        (1.0, 12, 96, False)
    """

    train_data: Any = dataclasses.field(repr=False)
    _: dataclasses.KW_ONLY
    fitness: Fitness
    loss: Callable = _CE
    invalid_fitness: float = 0.0
    epochs: int = 1
    default_optimiser: Optimiser = _DEFAULT_OPTIMISER
    driver: str = "auto"
    shuffle: bool = True
    activation_utility: bool = False
    keep_optimiser_state: bool = False
    partitions: int = 1
    learning_rate_steps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self):
        _check_config(self, "TrainThenFitness")
        if not callable(self.fitness):
            raise TypeError(
                f"TrainThenFitness: fitness must be callable as fitness(key, candidate) -> candidate, "
                f"got {self.fitness!r}"
            )
        _own(self)

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        train_key, fitness_key = jax.random.split(key)
        trained, result = _train(self, train_key, candidate, "TrainThenFitness")
        if result is None or result.nonfinite:
            return _invalid(self, trained)
        scored = self.fitness(fitness_key, trained)
        if not isinstance(scored, Candidate):
            raise TypeError(
                f"TrainThenFitness: the fitness {self.fitness!r} returned {type(scored).__name__}, expected a Candidate"
            )
        return scored

    def precompile(self, candidate: Candidate) -> None:
        """Compiles ahead what scoring ``candidate`` will compile: its training step, then what ``fitness`` compiles
        if it has a ``precompile`` of its own (``ng.AccuracyFitness``, ``ng.evolution.AccuracyVsSize``).
        ``ng.evolution.evaluate(...,
        precompile=True)`` calls this from a background thread for the members still to come."""
        _precompile(self, candidate)
        inner = getattr(self.fitness, "precompile", None)
        if callable(inner):
            inner(candidate)


def train_accuracy(correct: np.ndarray, drop: float) -> float:
    """Mean of ``correct`` after dropping its first ``floor(drop * len)`` entries (upstream's start index)."""
    correct = np.asarray(correct)
    if correct.size == 0:
        return 0.0
    return float(np.mean(correct[math.floor(drop * correct.size) :]))


@dataclasses.dataclass(frozen=True, eq=False)
class TrainAccuracyFitness:
    """Training accuracy, recorded during the training pass itself (NaiveGAflux ``TrainAccuracyFitness``).

    The first ``drop`` fraction of the examples seen (``floor(drop * n)``, in training order, over all epochs) is
    ignored, so a freshly mutated candidate is not judged on its first steps. No second pass over any data; beware
    that evolution then favours candidates that overfit. Other arguments as ``TrainThenFitness``.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0]] * 16, np.float32); y = np.array([0, 1] * 16, np.int32)
        >>> f = ng.TrainAccuracyFitness((x, y), drop=0.5, default_optimiser=ng.SGD(0.5), epochs=4)
        >>> f(jax.random.key(1), ng.Candidate(g, batch_size=8)).fitness
        1.0
    """

    train_data: Any = dataclasses.field(repr=False)
    _: dataclasses.KW_ONLY
    drop: float = 0.5
    loss: Callable = _CE
    invalid_fitness: float = 0.0
    epochs: int = 1
    default_optimiser: Optimiser = _DEFAULT_OPTIMISER
    driver: str = "auto"
    shuffle: bool = True
    activation_utility: bool = False
    keep_optimiser_state: bool = False

    def __post_init__(self):
        _check_config(self, "TrainAccuracyFitness")
        if isinstance(self.drop, bool) or not isinstance(self.drop, (int, float)) or not 0 <= self.drop < 1:
            raise ValueError(f"TrainAccuracyFitness: drop must be a number in [0, 1), got {self.drop!r}")
        _own(self)

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        trained, result = _train(self, key, candidate, "TrainAccuracyFitness")
        if result is None or result.nonfinite:
            return _invalid(self, trained)
        if result.correct is None:
            raise ValueError(
                "TrainAccuracyFitness: needs a graph with one (batch, classes) output and integer or one-hot labels"
            )
        return trained.replace(fitness=train_accuracy(result.correct, self.drop))

    def precompile(self, candidate: Candidate) -> None:
        """Compiles ahead the training step scoring ``candidate`` will use (see ``TrainThenFitness.precompile``)."""
        _precompile(self, candidate)
