"""Fitness functions that score without training: accuracy, size, time, and combinators of other fitnesses.

Every fitness is a frozen dataclass called as ``fitness(key, candidate) -> candidate``; the returned candidate has
``fitness`` set (and, for fitnesses that train, the trained graph). Combinators pass the candidate a fitness
returned on to the next one, as NaiveGAflux's fitnesses share one (mutable) candidate.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ShapeError
from ..graph import Graph, nparams
from ..train import cached_executable
from ._candidate import Candidate
from ._protocols import Fitness

logger = logging.getLogger("naivega_jax")


def _check_positive_int(value: object, what: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")


def _check_callable(value: object, what: str, where: str) -> None:
    if not callable(value):
        raise TypeError(f"{where}: {what} must be callable as f(key, candidate) -> candidate, got {value!r}")


def _call_base(base: Fitness, key: jax.Array, candidate: Candidate, where: str) -> Candidate:
    result = base(key, candidate)
    if not isinstance(result, Candidate):
        raise TypeError(f"{where}: the fitness {base!r} returned {type(result).__name__}, expected a Candidate")
    if result.fitness is None:
        raise ValueError(f"{where}: the fitness {base!r} returned a candidate whose fitness is None")
    return result


def _split_data(data: Any, where: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``(x, y)`` as host arrays: x a tuple (one array per graph input), y integer labels (one-hot -> argmax)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{where}: data must be a pair (x, y), got {type(data).__name__}")
    x, y = data
    xs = tuple(np.asarray(a) for a in x) if isinstance(x, (tuple, list)) else (np.asarray(x),)
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.floating):
        if y.ndim < 2:
            raise ValueError(f"{where}: float labels must be one-hot (..., classes), got shape {y.shape}")
        labels = np.argmax(y, axis=-1)
    elif np.issubdtype(y.dtype, np.integer):
        labels = y
    else:
        raise TypeError(f"{where}: labels must be integers or one-hot floats, got dtype {y.dtype}")
    if labels.ndim < 1:
        raise ValueError(f"{where}: labels need a leading example axis, got shape {y.shape}")
    for i, a in enumerate(xs):
        if a.ndim < 1 or a.shape[0] != labels.shape[0]:
            raise ShapeError(f"{where}: x[{i}] has shape {a.shape} but there are {labels.shape[0]} labels")
    return xs, labels.astype(np.int32)


def _pad_batches(xs: tuple[np.ndarray, ...], labels: np.ndarray, batch_size: int) -> tuple:
    """Device-resident batches of one fixed size; the last is padded with zero inputs and label -1."""
    n = labels.shape[0]
    bs = min(batch_size, n)
    nb = -(-n // bs)
    pad = nb * bs - n

    def padded(a: np.ndarray, fill: float) -> np.ndarray:
        return np.concatenate([a, np.full((pad, *a.shape[1:]), fill, a.dtype)]) if pad else a

    xs = tuple(padded(a, 0) for a in xs)
    labels = padded(labels, -1)
    return tuple(
        (tuple(jnp.asarray(a[i * bs : (i + 1) * bs]) for a in xs), jnp.asarray(labels[i * bs : (i + 1) * bs]))
        for i in range(nb)
    )


@jax.jit
def _count_correct(graph: Graph, xs: tuple, labels: jax.Array) -> jax.Array:
    predicted = jnp.argmax(graph(*xs), axis=-1)
    if predicted.shape != labels.shape:
        raise ShapeError(
            f"AccuracyFitness: the graph's predictions have shape {predicted.shape} (argmax over the last axis) "
            f"but the labels have shape {labels.shape}"
        )
    return jnp.sum(predicted == labels)


@dataclasses.dataclass(frozen=True, eq=False)
class AccuracyFitness:
    """Accuracy of ``argmax(graph(x), -1) == y`` over every example (NaiveGAflux ``AccuracyFitness``).

    Evaluates in batches of one fixed size (the last padded), so each graph spec compiles once whatever the data
    size. The data lives on the default device from construction on.

    Args:
        data: ``(x, y)``: x an array (or a tuple of arrays, one per graph input) with examples on the first axis;
            y integer labels (negative labels are ignored) or one-hot floats.
        batch_size: evaluation batch size.

    Empty data scores 0.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> g = g.replace(params={"d": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}})
        >>> x, y = np.array([[1.0, 0], [0, 1], [1, 0], [0, 1]]), np.array([0, 1, 1, 1])
        >>> ng.AccuracyFitness((x, y), batch_size=3)(jax.random.key(0), ng.Candidate(g)).fitness
        0.75
    """

    data: Any = dataclasses.field(repr=False)
    batch_size: int = 256

    if TYPE_CHECKING:
        # set in __post_init__ with object.__setattr__; not dataclass fields
        _total: int = dataclasses.field(init=False)
        _batches: tuple[tuple[Any, Any], ...] = dataclasses.field(init=False)

    def __post_init__(self):
        _check_positive_int(self.batch_size, "batch_size", "AccuracyFitness")
        xs, labels = _split_data(self.data, "AccuracyFitness")
        object.__setattr__(self, "_total", int(np.sum(labels >= 0)))
        object.__setattr__(self, "_batches", _pad_batches(xs, labels, self.batch_size) if labels.shape[0] else ())

    def __repr__(self) -> str:
        return f"AccuracyFitness(<{self._total} labels>, batch_size={self.batch_size})"

    def accuracy(self, graph: Graph) -> float:
        """The accuracy of ``graph`` on the data (0 for empty data)."""
        if len(graph.output_names) != 1:
            raise ValueError(f"AccuracyFitness needs a graph with one output, got outputs {list(graph.output_names)}")
        if not self._total:
            return 0.0
        count = self._executable(graph, background=False)
        correct = sum(count(graph, xs, labels) for xs, labels in self._batches)
        return int(correct) / self._total

    def _executable(self, graph: Graph, *, background: bool) -> Any:
        # the training engine's compile cache: its compile options and tiers (a few batches of inference get the
        # fast-compiling tier on XLA:CPU), and elites keep their executable across the periodic clears of JAX's
        # caches
        return cached_executable(
            _count_correct,
            graph,
            *self._batches[0],
            compile_tier="auto",
            runs=len(self._batches),
            background=background,
        )

    def precompile(self, candidate: Candidate) -> None:
        """Compiles ahead the executable that scoring ``candidate`` will use (for ``ng.evolution.evaluate(...,
        precompile=True)``)."""
        if self._total and len(candidate.graph.output_names) == 1:
            self._executable(candidate.graph, background=True)

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        return candidate.replace(fitness=self.accuracy(candidate.graph))


@dataclasses.dataclass(frozen=True)
class SizeFitness:
    """The number of trainable parameters (NaiveGAflux ``SizeFitness``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.SizeFitness()(jax.random.key(0), ng.Candidate(g)).fitness
        9
    """

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        return candidate.replace(fitness=nparams(candidate.graph))


@dataclasses.dataclass(frozen=True)
class TimeFitness:
    """Times ``base`` (wall clock, until the returned graph's arrays are ready).

    NaiveGAflux returns the pair ``(elapsed, value)``; selection here needs one number, so by default the fitness
    stays ``base``'s value and the elapsed seconds go to ``info["time"]``. With ``combine`` the fitness is
    ``combine(elapsed, value)`` (``info["time"]`` is set too).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> c = ng.TimeFitness(ng.SizeFitness())(jax.random.key(0), ng.Candidate(g))
        >>> c.fitness, c.info["time"] >= 0
        (9, True)
    """

    base: Fitness
    combine: Callable[[float, Any], Any] | None = None

    def __post_init__(self):
        _check_callable(self.base, "base", "TimeFitness")
        if self.combine is not None and not callable(self.combine):
            raise TypeError(f"TimeFitness: combine must be None or callable(elapsed, value), got {self.combine!r}")

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        start = time.perf_counter()
        result = _call_base(self.base, key, candidate, "TimeFitness")
        jax.block_until_ready(result.graph)
        elapsed = time.perf_counter() - start
        value = result.fitness if self.combine is None else self.combine(elapsed, result.fitness)
        return result.replace(fitness=value, info={**result.info, "time": elapsed})


@dataclasses.dataclass(frozen=True, init=False)
class AggFitness:
    """Folds the values of several fitnesses with a binary ``aggfun`` (NaiveGAflux ``AggFitness``).

    Each fitness gets its own key (``fold_in(key, position)``) and the candidate the previous one returned, with
    the fitness field reset to the incoming one (so e.g. an ``EwmaFitness`` inside still sees the old value).

    Example:
        >>> import jax, operator, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> f = ng.AggFitness(operator.add, ng.SizeFitness(), ng.MapFitness(lambda n: 1 / n, ng.SizeFitness()))
        >>> round(f(jax.random.key(0), ng.Candidate(g)).fitness, 4)
        9.1111
    """

    aggfun: Callable[[Any, Any], Any]
    fitnesses: tuple[Fitness, ...]

    def __init__(self, aggfun: Callable[[Any, Any], Any], *fitnesses: Fitness):
        if not callable(aggfun):
            raise TypeError(f"AggFitness: aggfun must be a binary function (e.g. operator.add), got {aggfun!r}")
        if not fitnesses:
            raise ValueError("AggFitness: give an aggregation function and at least one fitness")
        for f in fitnesses:
            _check_callable(f, "every fitness", "AggFitness")
        object.__setattr__(self, "aggfun", aggfun)
        object.__setattr__(self, "fitnesses", tuple(fitnesses))

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        values, current = [], candidate
        for i, f in enumerate(self.fitnesses):
            current = _call_base(
                f, jax.random.fold_in(key, i), current.replace(fitness=candidate.fitness), "AggFitness"
            )
            values.append(current.fitness)
        return current.replace(fitness=functools.reduce(self.aggfun, values))


@dataclasses.dataclass(frozen=True)
class MapFitness:
    """``fn(value)`` of ``base``'s value (NaiveGAflux ``MapFitness``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.MapFitness(lambda n: -n, ng.SizeFitness())(jax.random.key(0), ng.Candidate(g)).fitness
        -9
    """

    fn: Callable[[Any], Any]
    base: Fitness

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"MapFitness: fn must be callable(value) -> value, got {self.fn!r}")
        _check_callable(self.base, "base", "MapFitness")

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        result = _call_base(self.base, key, candidate, "MapFitness")
        return result.replace(fitness=self.fn(result.fitness))


@dataclasses.dataclass(frozen=True)
class EwmaFitness:
    """Exponentially weighted moving average ``(1 - alpha) * current + alpha * previous`` (NaiveGAflux).

    ``previous`` is the candidate's ``previous_fitness``: its own last fitness, or for a new candidate its parent's
    (``info["parent_fitness"]``, kept by ``ng.MapCandidate``). Without one the fitness is ``base``'s value.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.EwmaFitness(ng.SizeFitness())(jax.random.key(0), ng.Candidate(g, fitness=5)).fitness
        7.0
    """

    base: Fitness
    alpha: float = 0.5

    def __post_init__(self):
        _check_callable(self.base, "base", "EwmaFitness")
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise ValueError(f"EwmaFitness: alpha must be a number in [0, 1], got {self.alpha!r}")

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        previous = candidate.previous_fitness
        result = _call_base(self.base, key, candidate, "EwmaFitness")
        if previous is None:
            return result
        fitness = cast(float, result.fitness)  # _call_base rejects None
        return result.replace(fitness=(1 - self.alpha) * fitness + self.alpha * previous)


def _format_nparams(n: int) -> str:
    if n > 1e8:
        return f"{n / 1e9:5.2f}G"
    if n > 1e5:
        return f"{n / 1e6:5.2f}M"
    return f"{n / 1e3:5.2f}k"


def fitness_message(candidate: Candidate) -> str:
    """The default ``LogFitness`` line: generation, vertices, parameters and fitness of a scored candidate.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.evolution.fitness_message(ng.Candidate(g, fitness=0.5))
        ' Candidate (generation 1)\\tvertices:   2\\tparams:  0.01k\\tfitness: 0.5'
    """
    g = candidate.graph
    return (
        f" Candidate (generation {candidate.generation})\tvertices: {len(g.vertex_names):3d}\t"
        f"params: {_format_nparams(nparams(g))}\tfitness: {candidate.fitness}"
    )


@dataclasses.dataclass(frozen=True)
class LogFitness:
    """Logs one line per scored candidate to the ``"naivega_jax"`` logger (NaiveGAflux ``LogFitness``).

    Unlike upstream there is no per-generation counter (fitness objects carry no state); the line names the
    generation instead. ``msgfun(candidate) -> str`` replaces the default ``ng.evolution.fitness_message``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.evolution.LogFitness(ng.SizeFitness())(jax.random.key(0), ng.Candidate(g)).fitness
        9
    """

    base: Fitness
    level: int = logging.INFO
    msgfun: Callable[[Candidate], str] | None = None

    def __post_init__(self):
        _check_callable(self.base, "base", "LogFitness")

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        result = _call_base(self.base, key, candidate, "LogFitness")
        logger.log(self.level, (self.msgfun or fitness_message)(result))
        return result


def sizevs(accuracy: float, nparams: int, digits: int = 2) -> float:
    """AutoFlux's score: accuracy rounded to ``digits``, plus ``min(10**-(digits+1), 1/nparams)``.

    The size term only breaks ties between equally accurate candidates, in favour of the smaller one.

    Example:
        >>> import naivega_jax as ng
        >>> round(ng.evolution.sizevs(0.12345678, 1), 6), round(ng.evolution.sizevs(0.12345678, 100_000), 6)
        (0.121, 0.12001)
    """
    size_term = 10.0 ** -(digits + 1) if nparams <= 0 else min(10.0 ** -(digits + 1), 1 / nparams)
    return round(float(accuracy), digits) + size_term


@dataclasses.dataclass(frozen=True, eq=False)
class AccuracyVsSize:
    """AutoFlux's default validation fitness: ``sizevs(accuracy, nparams, digits)`` (see ``ng.evolution.sizevs``).

    Args:
        data: ``(x, y)`` as for ``ng.AccuracyFitness``.
        digits: decimals the accuracy is rounded to.
        batch_size: evaluation batch size.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> f = ng.evolution.AccuracyVsSize((np.zeros((4, 2)), np.zeros(4, int)))
        >>> f(jax.random.key(0), ng.Candidate(g)).fitness
        1.001
    """

    data: Any = dataclasses.field(repr=False)
    digits: int = 2
    batch_size: int = 256

    if TYPE_CHECKING:
        # set in __post_init__ with object.__setattr__; not a dataclass field
        _accuracy: AccuracyFitness = dataclasses.field(init=False)

    def __post_init__(self):
        if isinstance(self.digits, bool) or not isinstance(self.digits, int) or self.digits < 0:
            raise ValueError(f"AccuracyVsSize: digits must be a non-negative int, got {self.digits!r}")
        object.__setattr__(self, "_accuracy", AccuracyFitness(self.data, self.batch_size))

    def __repr__(self) -> str:
        return f"AccuracyVsSize(<{self._accuracy._total} labels>, digits={self.digits}, batch_size={self.batch_size})"

    def precompile(self, candidate: Candidate) -> None:
        """Compiles ahead the executable that scoring ``candidate`` will use (``AccuracyFitness.precompile``)."""
        self._accuracy.precompile(candidate)

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        acc = self._accuracy.accuracy(candidate.graph)
        return candidate.replace(fitness=sizevs(acc, nparams(candidate.graph), self.digits))
