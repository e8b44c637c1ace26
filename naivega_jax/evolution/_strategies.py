"""Selection and evolution strategies: ``strategy(key, candidates) -> list[Candidate]``, pure, composable.

The NaiveGAflux ``AbstractEvolution`` family as frozen dataclasses. A strategy never changes its input; it returns a
new list (candidates are immutable, so selected ones appear in it as they are, fitness included). Composite
strategies give each part its own key (``jax.random.fold_in`` of the part's position); host-side draws use
``host_rng(key, <name>)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .._random import host_rng
from ._candidate import Candidate
from ._protocols import Evolution


def _check_count(value: object, what: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {what} must be a non-negative int, got {value!r}")


def _check_strategy(value: object, what: str, where: str) -> None:
    if not callable(value):
        raise TypeError(f"{where}: {what} must be a strategy callable as s(key, candidates) -> list, got {value!r}")


def fitness_values(candidates: Sequence[Candidate], where: str) -> np.ndarray:
    """The fitness of every candidate as float64; a clear error for a missing or non-numeric fitness."""
    values = []
    for i, c in enumerate(candidates):
        if not isinstance(c, Candidate):
            raise TypeError(f"{where}: expected candidates, got {type(c).__name__} at position {i}")
        if c.fitness is None:
            raise ValueError(
                f"{where}: candidate {i} has no fitness (None); score the population first "
                "(ng.evolution.evaluate, or ng.evolve(key, strategy, fitness, population))"
            )
        try:
            values.append(float(c.fitness))
        except (TypeError, ValueError):
            raise TypeError(f"{where}: candidate {i} has a non-numeric fitness {c.fitness!r}") from None
    return np.asarray(values, np.float64)


@dataclasses.dataclass(frozen=True)
class NoOpEvolution:
    """Returns the candidates unchanged (NaiveGAflux ``NoOpEvolution``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.evolution.NoOpEvolution()(jax.random.key(0), [1, 2, 3])
        [1, 2, 3]
    """

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        return list(candidates)


@dataclasses.dataclass(frozen=True)
class AfterEvolution:
    """``fn(evo(key, candidates))``: post-processing after a strategy (NaiveGAflux ``AfterEvolution``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1])(jax.random.key(0), [1, 2, 3])
        [3, 2, 1]
    """

    evo: Evolution
    fn: Callable[[list], Sequence[Any]]

    def __post_init__(self):
        _check_strategy(self.evo, "evo", "AfterEvolution")
        if not callable(self.fn):
            raise TypeError(f"AfterEvolution: fn must be callable(candidates) -> candidates, got {self.fn!r}")

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        return list(self.fn(self.evo(key, candidates)))


@dataclasses.dataclass(frozen=True)
class EliteSelection:
    """The ``n`` fittest candidates, best first, passed to ``evo`` (NaiveGAflux ``EliteSelection``).

    Ties keep population order. With fewer than ``n`` candidates, all of them are selected.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> cands = [ng.Candidate(g, fitness=f) for f in (0.1, 0.7, 0.4)]
        >>> [c.fitness for c in ng.EliteSelection(2)(jax.random.key(0), cands)]
        [0.7, 0.4]
    """

    n: int
    evo: Evolution = NoOpEvolution()

    def __post_init__(self):
        _check_count(self.n, "n", "EliteSelection")
        _check_strategy(self.evo, "evo", "EliteSelection")

    def __call__(self, key: jax.Array, candidates: Sequence[Candidate]) -> list:
        values = fitness_values(candidates, "EliteSelection")
        order = np.argsort(-values, kind="stable")[: self.n]
        return self.evo(key, [candidates[i] for i in order])


@dataclasses.dataclass(frozen=True)
class SusSelection:
    """Stochastic universal sampling of ``n`` candidates, passed to ``evo`` (NaiveGAflux ``SusSelection``).

    On the cumulative sum ``cs`` of the fitnesses (which must be >= 0), with ``step = cs[-1] / n`` and
    ``start = U * step``, pick ``i`` is the first candidate with ``cs >= start + i * step``: each candidate is
    picked ``floor`` or ``ceil`` of ``n * fitness / total`` times. When every fitness is 0 the candidates are
    sampled as if their fitnesses were equal (upstream would pick the first one ``n`` times).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> cands = [ng.Candidate(g, fitness=f) for f in (1.0, 0.0, 3.0)]
        >>> sorted(c.fitness for c in ng.SusSelection(4)(jax.random.key(0), cands))
        [1.0, 3.0, 3.0, 3.0]
    """

    n: int
    evo: Evolution = NoOpEvolution()

    def __post_init__(self):
        _check_count(self.n, "n", "SusSelection")
        _check_strategy(self.evo, "evo", "SusSelection")

    def __call__(self, key: jax.Array, candidates: Sequence[Candidate]) -> list:
        values = fitness_values(candidates, "SusSelection")
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"SusSelection: every fitness must be finite and >= 0, got {values.tolist()}; "
                "map the fitness (ng.MapFitness) or use TournamentSelection"
            )
        if self.n and not len(candidates):
            raise ValueError(f"SusSelection: cannot select {self.n} candidates from an empty population")
        if len(values) and values.sum() == 0:
            values = np.ones_like(values)
        cumsum = np.cumsum(values)
        step = cumsum[-1] / self.n if self.n else 0.0
        start = host_rng(key, "SusSelection").random() * step
        points = start + np.arange(self.n) * step
        picks = np.minimum(np.searchsorted(cumsum, points, side="left"), len(candidates) - 1)
        return self.evo(jax.random.fold_in(key, 1), [candidates[i] for i in picks])


@dataclasses.dataclass(frozen=True)
class TournamentSelection:
    """``n`` tournaments of ``k`` candidates each; winners are passed to ``evo`` (NaiveGAflux).

    The tournament order is the population shuffled with as little repetition as possible (``n * k`` draws: a
    partial shuffle, then whole shuffles). In each group the winner is the candidate at fitness rank
    ``argmax(u * p * (1 - p) ** r)`` for ``r = 0..k-1`` and uniform ``u``: with ``p = 1`` the best always wins.
    (Upstream's docstring says ``p(p-1)``; its code, followed here, uses ``(1-p)``.)

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> cands = [ng.Candidate(g, fitness=f) for f in (0.1, 0.7, 0.4)]
        >>> [c.fitness for c in ng.TournamentSelection(2, k=3, p=1.0)(jax.random.key(0), cands)]
        [0.7, 0.7]
    """

    n: int
    k: int = 2
    p: float = 1.0
    evo: Evolution = NoOpEvolution()

    def __post_init__(self):
        _check_count(self.n, "n", "TournamentSelection")
        _check_count(self.k, "k", "TournamentSelection")
        if self.k < 1:
            raise ValueError(f"TournamentSelection: k must be >= 1, got {self.k}")
        if not isinstance(self.p, (int, float)) or not 0 <= self.p <= 1:
            raise ValueError(f"TournamentSelection: p must be a number in [0, 1], got {self.p!r}")
        _check_strategy(self.evo, "evo", "TournamentSelection")

    def __call__(self, key: jax.Array, candidates: Sequence[Candidate]) -> list:
        values = fitness_values(candidates, "TournamentSelection")
        size = len(candidates)
        if self.n and not size:
            raise ValueError(f"TournamentSelection: cannot select {self.n} candidates from an empty population")
        rng = host_rng(key, "TournamentSelection")
        draws = self.n * self.k
        parts = [rng.permutation(size)[: draws % size]] if size else []
        parts += [rng.permutation(size) for _ in range(draws // size if size else 0)]
        order = np.concatenate(parts) if parts else np.zeros(0, int)
        weights = self.p * (1 - self.p) ** np.arange(self.k)
        selected = []
        for group in order.reshape(self.n, self.k):
            ranked = group[np.argsort(-values[group], kind="stable")]
            selected.append(candidates[ranked[np.argmax(rng.random(self.k) * weights)]])
        return self.evo(jax.random.fold_in(key, 1), selected)


@dataclasses.dataclass(frozen=True, init=False)
class CombinedEvolution:
    """Runs every strategy on the whole population and concatenates their outputs (NaiveGAflux).

    Strategy ``i`` gets ``fold_in(key, i)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.CombinedEvolution(ng.evolution.NoOpEvolution(), ng.evolution.NoOpEvolution())(jax.random.key(0), [1, 2])
        [1, 2, 1, 2]
    """

    evos: tuple[Evolution, ...]

    def __init__(self, *evos: Evolution):
        for e in evos:
            _check_strategy(e, "every strategy", "CombinedEvolution")
        object.__setattr__(self, "evos", tuple(evos))

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        out: list = []
        for i, evo in enumerate(self.evos):
            out.extend(evo(jax.random.fold_in(key, i), candidates))
        return out


@dataclasses.dataclass(frozen=True, init=False)
class EvolutionChain:
    """Applies the strategies in order, each to the previous one's output (NaiveGAflux ``EvolutionChain``).

    Strategy ``i`` gets ``fold_in(key, i)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> rev = ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1])
        >>> first2 = ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[:2])
        >>> ng.EvolutionChain(rev, first2)(jax.random.key(0), [1, 2, 3])
        [3, 2]
    """

    evos: tuple[Evolution, ...]

    def __init__(self, *evos: Evolution):
        for e in evos:
            _check_strategy(e, "every strategy", "EvolutionChain")
        object.__setattr__(self, "evos", tuple(evos))

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        out = list(candidates)
        for i, evo in enumerate(self.evos):
            out = list(evo(jax.random.fold_in(key, i), out))
        return out


@dataclasses.dataclass(frozen=True)
class PairCandidates:
    """Pairs neighbours ``(0, 1), (2, 3), ...``, runs ``evo`` on the list of pairs, and flattens (NaiveGAflux).

    An odd population is padded with its first member; the output is cut to the input's length. Typical ``evo``:
    ``ng.EvolveCandidates(ng.MapCandidate(crossover))``, whose function maps a pair to a pair.

    Example:
        >>> import jax, naivega_jax as ng
        >>> swap = ng.EvolveCandidates(lambda key, pair: pair[::-1])
        >>> ng.PairCandidates(swap)(jax.random.key(0), [1, 2, 3])
        [2, 1, 1]
    """

    evo: Evolution

    def __post_init__(self):
        _check_strategy(self.evo, "evo", "PairCandidates")

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        padded = list(candidates) + list(candidates[:1]) * (len(candidates) % 2)
        pairs = [(padded[i], padded[i + 1]) for i in range(0, len(padded), 2)]
        out: list = []
        for i, pair in enumerate(self.evo(key, pairs)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"PairCandidates: evo must return pairs, got {type(pair).__name__} at position {i}")
            out.extend(pair)
        return out[: len(candidates)]


@dataclasses.dataclass(frozen=True)
class ShuffleCandidates:
    """A random permutation of the candidates (NaiveGAflux ``ShuffleCandidates``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> sorted(ng.ShuffleCandidates()(jax.random.key(0), [1, 2, 3]))
        [1, 2, 3]
    """

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        return [candidates[i] for i in host_rng(key, "ShuffleCandidates").permutation(len(candidates))]


@dataclasses.dataclass(frozen=True)
class EvolveCandidates:
    """``[fn(fold_in(key, i), c) for i, c in enumerate(candidates)]`` (NaiveGAflux ``EvolveCandidates``).

    ``fn`` is typically an ``ng.MapCandidate``. Each member's key depends only on its position, so the result does
    not depend on the order in which the members are processed.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.EvolveCandidates(lambda key, x: 10 * x)(jax.random.key(0), [1, 2])
        [10, 20]
    """

    fn: Callable[[jax.Array, Any], Any]

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"EvolveCandidates: fn must be callable as fn(key, candidate), got {self.fn!r}")

    def __call__(self, key: jax.Array, candidates: Sequence[Any]) -> list:
        return [self.fn(jax.random.fold_in(key, i), c) for i, c in enumerate(candidates)]
