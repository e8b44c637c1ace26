"""Optimiser mutations and crossovers (NaiveGAflux ``src/mutation/optimiser.jl``, ``src/crossover/optimiser.jl``).

They act on the optimiser specs of ``naivega_jax.train`` (``m(key, spec) -> spec``), recurse into
``OptimiserChain``s and leave ``ShieldedOpt`` alone. A candidate without an optimiser (None) is returned as is, and
so is a plain optax transformation (a bare ``optax.GradientTransformation`` or an ``Optax``, also as a chain
member): its hyperparameters are its own, these mutations need a spec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ..train import (
    Optimiser,
    OptimiserChain,
    ScaledSchedule,
    ShieldedOpt,
    WeightDecay,
    is_plain_optax,
    map_optimisers,
    merge_optimisers,
)
from . import _draw
from ._base import Mutation, check_mutation, report, split

LR_MIN, LR_MAX = 1e-6, 1.0


def _rules(optimiser: Optimiser) -> list[Optimiser]:
    seen: list[Optimiser] = []

    def visit(o: Optimiser) -> Optimiser:
        seen.append(o)
        return o

    map_optimisers(visit, optimiser)
    return seen


def _map_with_draws(fn: Callable[[Optimiser, float], Optimiser], key: jax.Array, optimiser: Optimiser, salt: str):
    """``map_optimisers`` where the i-th unshielded rule also gets the i-th of a fresh U[0, 1) draw."""
    draws = iter(np.atleast_1d(_draw.uniform(key, len(_rules(optimiser)), salt)))
    return map_optimisers(lambda o: fn(o, float(next(draws))), optimiser)


def _check_optimiser(o: Any, where: str) -> None:
    if o is not None and not isinstance(o, Optimiser) and not is_plain_optax(o):
        raise TypeError(
            f"{where}: expected an optimiser spec (ng.Adam(...), ...), an optax GradientTransformation or None, "
            f"got {o!r}"
        )


def _kept(o: Any) -> bool:
    """Whether a mutation or crossover returns ``o`` as it is: no optimiser, a shielded one, or plain optax."""
    return o is None or isinstance(o, ShieldedOpt) or is_plain_optax(o)


def nudge_learning_rate(learning_rate: float | ScaledSchedule, u: float) -> float | ScaledSchedule:
    """``clamp(lr + (u - 0.5) * lr * 0.3, 1e-6, 1.0)``: a change of at most ±15% (upstream ``nudgelr``). A
    schedule is scaled by ``1 + (u - 0.5) * 0.3`` (its values are not clamped)."""
    if isinstance(learning_rate, ScaledSchedule):
        return learning_rate * (1.0 + (u - 0.5) * 0.3)
    return float(min(max(learning_rate + (u - 0.5) * learning_rate * 0.3, LR_MIN), LR_MAX))


def _rate(learning_rate: Any) -> Any:
    """A learning rate for an event record: the number, or the schedule's repr."""
    return learning_rate if isinstance(learning_rate, (int, float)) else repr(learning_rate)


@dataclasses.dataclass(frozen=True)
class LearningRateMutation(Mutation):
    """Moves the learning rate of every unshielded rule by up to ±15%, clamped to [1e-6, 1].

    ``lr <- clamp(lr + (U - 0.5) * lr * 0.3, 1e-6, 1.0)`` with one ``U ~ U[0, 1)`` per rule. ``WeightDecay`` has
    no learning rate and is kept. A schedule learning rate (a ``ScaledSchedule``) has its factor multiplied by
    ``1 + (U - 0.5) * 0.3`` instead. Plain optax transformations are kept as they are.

    Example:
        >>> import jax, naivega_jax as ng
        >>> lr = ng.LearningRateMutation()(jax.random.key(0), ng.SGD(0.1)).learning_rate
        >>> 0.085 <= lr <= 0.115
        True
    """

    target = "optimiser"

    def __call__(self, key: jax.Array, optimiser: Optimiser) -> Optimiser:
        _check_optimiser(optimiser, "LearningRateMutation")
        if optimiser is None or is_plain_optax(optimiser):
            return optimiser
        new = _map_with_draws(
            lambda o, u: o.with_learning_rate(nudge_learning_rate(o.learning_rate, u)), key, optimiser, "lr"
        )
        report("LearningRateMutation", old=_rate(optimiser.learning_rate), new=_rate(new.learning_rate))
        return new


@dataclasses.dataclass(frozen=True)
class OptimiserMutation(Mutation):
    """Replaces every unshielded rule: by a random type of ``types`` with the same learning rate, or by ``fn(rule)``.

    Args:
        types: a sequence of optimiser classes (``[ng.Momentum, ng.Nesterov, ng.Adam]``), each rule becomes
            ``T().with_learning_rate(rule.learning_rate)`` for a random ``T`` (``WeightDecay`` rules are kept); or a
            callable ``fn(rule) -> rule``.

    Chains are recursed into; ``ShieldedOpt`` and plain optax (on their own or in a chain) are left alone.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.OptimiserMutation([ng.Adam])(jax.random.key(0), ng.SGD(0.1))
        Adam(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-08)
        >>> chain = ng.OptimiserChain(ng.Nesterov(0.1), ng.ShieldedOpt(ng.Adam(0.1)))
        >>> tenfold = ng.OptimiserMutation(lambda o: o.with_learning_rate(10 * o.learning_rate))
        >>> [round(o.learning_rate, 6) for o in tenfold(None, chain).optimisers]
        [1.0, 0.1]
    """

    types: Any
    target = "optimiser"

    def __post_init__(self):
        t = self.types
        if isinstance(t, type) or not callable(t):
            try:
                t = tuple([t] if isinstance(t, type) else t)
            except TypeError:
                raise TypeError(
                    "OptimiserMutation: types must be a sequence of optimiser classes or a callable, "
                    f"got {self.types!r}"
                ) from None
            if not t:
                raise ValueError("OptimiserMutation: types must not be empty")
            for c in t:
                if not (isinstance(c, type) and issubclass(c, Optimiser)) or issubclass(
                    c, (OptimiserChain, ShieldedOpt)
                ):
                    raise TypeError(
                        f"OptimiserMutation: types must be optimiser rule classes (ng.SGD, ng.Adam, ...), got {c!r}"
                    )
            object.__setattr__(self, "types", t)

    def __call__(self, key: jax.Array, optimiser: Optimiser) -> Optimiser:
        _check_optimiser(optimiser, "OptimiserMutation")
        if optimiser is None or is_plain_optax(optimiser):
            return optimiser
        if callable(self.types) and not isinstance(self.types, tuple):
            new = map_optimisers(self.types, optimiser)
        else:
            types = self.types

            def replace(o: Optimiser, u: float) -> Optimiser:
                if isinstance(o, WeightDecay):
                    return o
                cls = types[min(int(u * len(types)), len(types) - 1)]
                return cls().with_learning_rate(o.learning_rate)

            new = _map_with_draws(replace, key, optimiser, "type")
        report("OptimiserMutation", old=repr(optimiser), new=repr(new))
        return new


@dataclasses.dataclass(frozen=True)
class AddOptimiserMutation(Mutation):
    """Adds the rule ``fn(chain)`` to the optimiser, making it a chain; rules of the same type are merged.

    ``fn`` gets the existing optimiser as an ``OptimiserChain``; if the chain already has rules of the new rule's
    type they are merged with it (learning rates multiplied, see ``ng.train.merge_optimisers``). ``ShieldedOpt`` and
    plain
    optax are returned unchanged.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.AddOptimiserMutation(lambda o: ng.SGD(0.1))(jax.random.key(0), ng.Momentum(0.2))
        OptimiserChain(optimisers=(Momentum(learning_rate=0.2, momentum=0.9), SGD(learning_rate=0.1)))
    """

    fn: Callable[[OptimiserChain], Optimiser]
    target = "optimiser"

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"AddOptimiserMutation: fn must be a callable chain -> optimiser, got {self.fn!r}")

    def __call__(self, key: jax.Array, optimiser: Optimiser) -> Optimiser:
        _check_optimiser(optimiser, "AddOptimiserMutation")
        if _kept(optimiser):
            return optimiser
        chain = optimiser if isinstance(optimiser, OptimiserChain) else OptimiserChain(optimiser)
        new = self.fn(chain)
        if not isinstance(new, Optimiser):
            raise TypeError(f"AddOptimiserMutation: fn must return an optimiser spec, got {new!r}")
        result = OptimiserChain(*merge_optimisers(new, *chain.optimisers, kind=type(new)))
        report("AddOptimiserMutation", added=repr(new), new=repr(result))
        return result


def optimiser_swap(key: jax.Array, pair: tuple[Optimiser, Optimiser]) -> tuple[Optimiser, Optimiser]:
    """Swaps two rules, unless either is shielded or plain optax (the default of ``OptimiserCrossover``)."""
    a, b = pair
    if _kept(a) or _kept(b):
        return a, b
    return b, a


def learning_rate_swap(key: jax.Array, pair: tuple[Optimiser, Optimiser]) -> tuple[Optimiser, Optimiser]:
    """Swaps only the learning rates of two rules; shielded rules, plain optax and ``WeightDecay`` are left alone."""
    a, b = pair
    if any(_kept(o) or isinstance(o, WeightDecay) for o in pair):
        return a, b
    return a.with_learning_rate(b.learning_rate), b.with_learning_rate(a.learning_rate)


@dataclasses.dataclass(frozen=True)
class OptimiserCrossover(Mutation):
    """Crossover of two optimisers: ``c(key, (a, b)) -> (a', b')``; swaps them by default.

    Chains are zipped member by member (``crossover`` applied to each pair; the longer chain keeps its tail), so
    ``OptimiserCrossover(ng.MutationProbability(OptimiserCrossover(), 0.2))`` swaps each member with probability
    0.2. Pairs involving a ``ShieldedOpt`` or a plain optax transformation are left alone.

    Args:
        crossover: a pair crossover ``(key, (a, b)) -> (a', b')``: ``optimiser_swap`` by default, or a crossover
            mutation (such as a wrapped ``OptimiserCrossover``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> a = ng.OptimiserChain(ng.SGD(0.1), ng.WeightDecay(), ng.Momentum(0.1))
        >>> b = ng.OptimiserChain(ng.Adam(), ng.AdamW(), ng.NAdam(), ng.RMSProp())
        >>> a2, b2 = ng.OptimiserCrossover()(jax.random.key(0), (a, b))
        >>> [type(o).__name__ for o in a2.optimisers], [type(o).__name__ for o in b2.optimisers]
        (['Adam', 'AdamW', 'NAdam'], ['SGD', 'WeightDecay', 'Momentum', 'RMSProp'])
    """

    crossover: Any = optimiser_swap
    target = "optimiser"
    is_crossover = True

    def __post_init__(self):
        if isinstance(self.crossover, Mutation):
            check_mutation(self.crossover, type(self).__name__)
            if self.crossover.target != "optimiser" or not self.crossover.is_crossover:
                raise TypeError(
                    f"{type(self).__name__}: crossover must be an optimiser crossover, got {self.crossover!r}"
                )
        elif not callable(self.crossover):
            raise TypeError(
                f"{type(self).__name__}: crossover must be callable (key, (a, b)) -> (a, b), got {self.crossover!r}"
            )

    def wrapped(self) -> tuple[Mutation, ...]:
        return (self.crossover,) if isinstance(self.crossover, Mutation) else ()

    def __call__(self, key: jax.Array, pair: tuple[Optimiser, Optimiser]) -> tuple[Optimiser, Optimiser]:
        a, b = pair
        _check_optimiser(a, type(self).__name__)
        _check_optimiser(b, type(self).__name__)
        if _kept(a) or _kept(b):
            return a, b
        if not (isinstance(a, OptimiserChain) or isinstance(b, OptimiserChain)):
            new = tuple(self.crossover(key, (a, b)))
        else:
            ma = a.optimisers if isinstance(a, OptimiserChain) else (a,)
            mb = b.optimisers if isinstance(b, OptimiserChain) else (b,)
            n = min(len(ma), len(mb))
            keys = split(key, n)
            pairs = [tuple(self.crossover(k, (x, y))) for k, x, y in zip(keys, ma, mb)]
            na = (*(p[0] for p in pairs), *ma[n:])
            nb = (*(p[1] for p in pairs), *mb[n:])
            new = (_rechain(a, na), _rechain(b, nb))
        report(type(self).__name__, old=[repr(a), repr(b)], new=[repr(o) for o in new])
        return new[0], new[1]


def _rechain(original: Optimiser, members: Sequence[Optimiser]) -> Optimiser:
    return OptimiserChain(*members) if isinstance(original, OptimiserChain) else members[0]


@dataclasses.dataclass(frozen=True)
class LearningRateCrossover(OptimiserCrossover):
    """Swaps only the learning rates of two optimisers (member by member for chains); types are kept.

    ``WeightDecay`` and shielded rules are left alone.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.LearningRateCrossover()(jax.random.key(0), (ng.SGD(0.1), ng.Momentum(0.2)))
        (SGD(learning_rate=0.2), Momentum(learning_rate=0.1, momentum=0.9))
    """

    crossover: Any = learning_rate_swap
