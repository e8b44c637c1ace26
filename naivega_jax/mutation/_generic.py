"""Wrappers that compose mutations: probability, weighting by utility, chains, filters, logging, recording.

A wrapper called on one entity (``w(key, x)``) decides for that entity. Called vertex-level
(``w(key, graph, names)``) it decides per name and then calls its wrapped mutation ONCE with the selected names, so
that, for example, ``NoutMutation`` solves every size change it was given in one problem.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import _draw
from ._base import Mutation, check_mutation, probability, split
from ._shield import allow_mutation

logger = logging.getLogger("naivega_jax.mutation")


class _Decorating(Mutation):
    """Shared behaviour of wrappers around one mutation ``m``: forwarded class flags and per-name selection."""

    m: Mutation

    @property
    def target(self) -> str:
        return self.m.target

    @property
    def vertex_level(self) -> bool:
        return self.m.vertex_level

    @property
    def is_crossover(self) -> bool:
        return self.m.is_crossover

    def wrapped(self) -> tuple[Mutation, ...]:
        return (self.m,)

    def _keep(self, key, x) -> bool:
        raise NotImplementedError

    def _keep_names(self, key, graph, names: tuple) -> Sequence[bool]:
        raise NotImplementedError

    def __call__(self, key, x, names=None):
        kd, km = split(key)
        if names is None:
            return self.m(km, x) if self._keep(kd, x) else x
        names = tuple(names)
        chosen = tuple(n for n, keep in zip(names, self._keep_names(kd, x, names)) if keep)
        return self.m(km, x, chosen) if chosen else x


@dataclasses.dataclass(frozen=True)
class MutationProbability(_Decorating):
    """Applies ``m`` with probability ``p`` (per vertex when vertex-level).

    An int ``p`` is a percentage as upstream (``30`` means 0.3), except that ``1`` means 1.0.

    Example:
        >>> import jax, naivega_jax as ng
        >>> m = ng.MutationProbability(ng.TrainBatchSizeMutation(1.0, 1.0), 1.0)
        >>> never = ng.MutationProbability(ng.TrainBatchSizeMutation(1.0, 1.0), 0)
        >>> m(jax.random.key(0), 16), never(jax.random.key(0), 16)
        (32, 16)
    """

    m: Mutation
    p: float

    def __post_init__(self):
        check_mutation(self.m, "MutationProbability")
        object.__setattr__(self, "p", probability(self.p, "MutationProbability(p=...)"))

    def _keep(self, key, x):
        return bool(_draw.uniform(key) < self.p)

    def _keep_names(self, key, graph, names):
        return _draw.uniform(key, len(names)) < self.p


@dataclasses.dataclass(frozen=True)
class WeightedMutationProbability(_Decorating):
    """Applies ``m`` with a probability computed per entity: ``pfun(graph, name)`` (vertex-level) or ``pfun(x)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> double = ng.TrainBatchSizeMutation(1.0, 1.0)
        >>> m = ng.mutation.WeightedMutationProbability(double, lambda bs: 1.0 if bs < 20 else 0.0)
        >>> m(jax.random.key(0), 16), m(jax.random.key(0), 30)
        (32, 30)
    """

    m: Mutation
    pfun: Callable[..., float]

    def __post_init__(self):
        check_mutation(self.m, "WeightedMutationProbability")
        if not callable(self.pfun):
            raise TypeError(f"WeightedMutationProbability: pfun must be callable, got {self.pfun!r}")

    def _keep(self, key, x):
        return bool(_draw.uniform(key) < probability(self.pfun(x), "WeightedMutationProbability: pfun(x)"))

    def _keep_names(self, key, graph, names):
        ps = np.array([probability(self.pfun(graph, n), f"WeightedMutationProbability: pfun({n!r})") for n in names])
        return _draw.uniform(key, len(names)) < ps


def utility_probabilities(
    graph, names: Sequence[str], pbase: float, spread: float, high: bool, utility: Callable | None
) -> np.ndarray:
    """Per-vertex mutation probabilities that favour high (or low) mean neuron utility, averaging about ``pbase``.

    ``p = pbase ** normexp(v, spread)`` (high) or ``pbase ** (1 / normexp(v, 1 / spread))`` (low), where
    ``normexp = (2 max^s - u^s) / (2 max^s - mean^s)``, ``u`` is v's mean neuron utility and ``max``/``mean`` are
    over the mean utilities of every mutable, unshielded vertex of the graph. A vertex without utility, or a NaN
    result, gets ``pbase``; results are clamped to [0, 1] (NaiveGAflux ``weighted_neuronutility_high/low``).
    """
    if utility is None:
        from ._utility import default_utility

        utility = default_utility
    pool = [n for n in graph.vertex_names if allow_mutation(graph, n)]
    means: dict[str, float] = {}
    for n in dict.fromkeys([*pool, *names]):
        u = utility(graph, n)
        if u is not None and np.size(u) > 0:
            means[n] = float(np.mean(np.asarray(u, dtype=np.float64)))
    pool_means = np.array([means[n] for n in pool if n in means])
    s = spread if high else 1.0 / spread
    out = np.full(len(names), pbase, np.float64)
    if pool_means.size == 0:
        return out
    with np.errstate(all="ignore"):
        top, mid = 2.0 * np.max(pool_means) ** s, np.mean(pool_means) ** s
        for i, n in enumerate(names):
            if n not in means:
                continue
            e = (top - means[n] ** s) / (top - mid)
            p = pbase**e if high else pbase ** (1.0 / e)
            out[i] = pbase if np.isnan(p) else np.clip(p, 0.0, 1.0)
    return out


class _UtilityProbability(_Decorating):
    """Shared behaviour of the high- and low-utility probabilities; ``favour_high`` picks the direction."""

    favour_high: ClassVar[bool] = True
    pbase: float
    spread: float
    utility: Callable | None

    def __post_init__(self):
        _check_utility_args(self, type(self).__name__)

    def probabilities(self, graph: Any, names: Sequence[str]) -> np.ndarray:
        """The mutation probability of each named vertex."""
        return utility_probabilities(graph, names, self.pbase, self.spread, self.favour_high, self.utility)

    def _keep_names(self, key, graph, names):
        return _draw.uniform(key, len(names)) < self.probabilities(graph, names)

    def __call__(self, key, graph, names=None):
        _need_names(self, names)
        return super().__call__(key, graph, names)


@dataclasses.dataclass(frozen=True)
class HighUtilityMutationProbability(_UtilityProbability):
    """Vertex-level: applies ``m`` with probability about ``pbase``, higher for vertices of high neuron utility.

    ``spread`` sets how much the probabilities differ; ``utility(graph, name)`` gives a vertex's per-neuron
    utility (None: no utility, the vertex gets ``pbase``); by default the weight-magnitude utility.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> u = lambda graph, name: [1.0, 2.0] if name == "d2" else [0.1] * graph.nout(name)
        >>> m = ng.HighUtilityMutationProbability(ng.ActivationFunctionMutation("elu"), 0.5, utility=u)
        >>> m.probabilities(g, ["d1", "d2"]).round(3).tolist()
        [0.386, 0.579]
    """

    m: Mutation
    pbase: float
    spread: float = 0.5
    utility: Callable | None = None


@dataclasses.dataclass(frozen=True)
class LowUtilityMutationProbability(_UtilityProbability):
    """Vertex-level: applies ``m`` with probability about ``pbase``, higher for vertices of low neuron utility.

    Arguments as ``HighUtilityMutationProbability`` (default ``spread=2``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> u = lambda graph, name: [1.0, 2.0] if name == "d2" else [0.1] * graph.nout(name)
        >>> m = ng.LowUtilityMutationProbability(ng.ActivationFunctionMutation("elu"), 0.5, utility=u)
        >>> m.probabilities(g, ["d1", "d2"]).round(3).tolist()
        [0.603, 0.415]
    """

    m: Mutation
    pbase: float
    spread: float = 2.0
    utility: Callable | None = None
    favour_high: ClassVar[bool] = False


def _check_utility_args(w, where: str) -> None:
    check_mutation(w.m, where)
    object.__setattr__(w, "pbase", probability(w.pbase, f"{where}(pbase=...)"))
    if isinstance(w.spread, bool) or not isinstance(w.spread, (int, float)) or not w.spread > 0:
        raise ValueError(f"{where}: spread must be a positive number, got {w.spread!r}")
    object.__setattr__(w, "spread", float(w.spread))
    if w.utility is not None and not callable(w.utility):
        raise TypeError(f"{where}: utility must be None or a callable (graph, name) -> array, got {w.utility!r}")


def _need_names(w, names) -> None:
    if names is None:
        raise TypeError(
            f"{type(w).__name__} weighs vertices by utility: call it as m(key, graph, names), e.g. through "
            "ng.VertexMutation"
        )


@dataclasses.dataclass(frozen=True, init=False)
class MutationChain(Mutation):
    """Applies each mutation in turn to the result of the previous one; vertex-level, each sees every name.

    Example:
        >>> import jax, naivega_jax as ng
        >>> m = ng.MutationChain(ng.TrainBatchSizeMutation(1.0, 1.0), ng.TrainBatchSizeMutation(-0.5, -0.5))
        >>> m(jax.random.key(0), 16)
        16
    """

    ms: tuple[Mutation, ...]

    def __init__(self, *ms: Mutation):
        if not ms:
            raise ValueError("MutationChain: needs at least one mutation, got none")
        for m in ms:
            check_mutation(m, "MutationChain")
        kinds = {(m.target, m.vertex_level, m.is_crossover) for m in ms}
        if len(kinds) != 1:
            raise ValueError(
                "MutationChain: every mutation must act on the same thing in the same way, got "
                + ", ".join(f"{type(m).__name__} (target={m.target!r}, vertex_level={m.vertex_level})" for m in ms)
            )
        object.__setattr__(self, "ms", tuple(ms))

    @property
    def target(self) -> str:
        return self.ms[0].target

    @property
    def vertex_level(self) -> bool:
        return self.ms[0].vertex_level

    @property
    def is_crossover(self) -> bool:
        return self.ms[0].is_crossover

    def wrapped(self) -> tuple[Mutation, ...]:
        return self.ms

    def __call__(self, key, x, names=None):
        keys = split(key, len(self.ms))
        for k, m in zip(keys, self.ms):
            if names is None:
                x = m(k, x)
            else:
                present = tuple(n for n in names if _present(x, n))
                x = m(k, x, present) if present else x
        return x


def _present(graph, name) -> bool:
    spec = getattr(graph, "spec", None)
    return spec is None or not isinstance(name, str) or name in spec


@dataclasses.dataclass(frozen=True)
class MutationFilter(_Decorating):
    """Applies ``m`` only where ``predicate`` holds: ``predicate(graph, name)`` (vertex-level) or ``predicate(x)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> m = ng.MutationFilter(lambda bs: bs > 20, ng.TrainBatchSizeMutation(1.0, 1.0))
        >>> m(jax.random.key(0), 16), m(jax.random.key(0), 30)
        (16, 60)
    """

    predicate: Callable[..., bool]
    m: Mutation

    def __post_init__(self):
        check_mutation(self.m, "MutationFilter")
        if not callable(self.predicate):
            raise TypeError(f"MutationFilter: predicate must be callable, got {self.predicate!r}")

    def _keep(self, key, x):
        return bool(self.predicate(x))

    def _keep_names(self, key, graph, names):
        return [bool(self.predicate(graph, n)) for n in names]


_LOG_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("naivega_jax_mutation_log_depth", default=0)


@dataclasses.dataclass(frozen=True)
class LogMutation(_Decorating):
    """Logs ``strfun(graph, name)`` per vertex (or ``strfun(x)``), then applies ``m`` to all of them.

    Messages go to the standard ``logging`` logger ``"naivega_jax.mutation"`` at ``level``; messages logged by
    mutations inside ``m`` are indented one step more, so nested mutations read as a tree.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.LogMutation(lambda bs: f"mutate {bs}", ng.TrainBatchSizeMutation(1.0, 1.0))(jax.random.key(0), 8)
        16
    """

    strfun: Callable[..., str]
    m: Mutation
    level: int = logging.INFO

    def __post_init__(self):
        check_mutation(self.m, "LogMutation")
        if not callable(self.strfun):
            raise TypeError(f"LogMutation: strfun must be callable, got {self.strfun!r}")

    def __call__(self, key, x, names=None):
        depth = _LOG_DEPTH.get()
        for msg in [self.strfun(x)] if names is None else [self.strfun(x, n) for n in names]:
            logger.log(self.level, "%s%s", "   " * depth, msg)
        token = _LOG_DEPTH.set(depth + 1)
        try:
            return self.m(key, x) if names is None else self.m(key, x, tuple(names))
        finally:
            _LOG_DEPTH.reset(token)


def log_prefix() -> str:
    """The indentation for a log message from inside nested ``LogMutation``s."""
    return "   " * _LOG_DEPTH.get()


class MutationRecord(NamedTuple):
    """What ``RecordMutation.record`` returns: the result, what was mutated, and the events of the leaves."""

    result: Any
    mutated: tuple
    events: tuple


@dataclasses.dataclass(frozen=True)
class RecordMutation(_Decorating):
    """Records what ``m`` mutated, as a returned value instead of upstream's mutable list.

    Calling it is calling ``m``; ``record(key, x, names=None)`` returns a ``MutationRecord``: the result, the
    mutated entities (the names passed on, or the one-element tuple of the result) and the events reported by the
    leaf mutations (see ``ng.mutation.record_events``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> rec = ng.mutation.RecordMutation(ng.TrainBatchSizeMutation(1.0, 1.0)).record(jax.random.key(0), 8)
        >>> rec.result, rec.mutated
        (16, (16,))
    """

    m: Mutation

    def __post_init__(self):
        check_mutation(self.m, "RecordMutation")

    def __call__(self, key, x, names=None):
        return self.m(key, x) if names is None else self.m(key, x, tuple(names))

    def record(self, key, x, names=None) -> MutationRecord:
        from ._base import record_events

        result, events = record_events(self.__call__, key, x, names)
        mutated = (result,) if names is None else tuple(names)
        return MutationRecord(result, mutated, events)
