"""Optimiser specs: frozen, hashable, JSON-friendly descriptions of optax optimisers.

A spec is configuration, not state: ``to_optax()`` builds the optax ``GradientTransformation``. Every scalar
hyperparameter (the learning rate first of all) goes through ``optax.inject_hyperparams``, so its value lives in the
optimiser *state* (traced data), never in the compiled program: two specs that differ only in hyperparameter values
share one compiled train step. ``skeleton()`` is the spec with every hyperparameter set to its default, the
hashable key a compile cache uses.

Names and semantics follow NaiveGAflux/Optimisers.jl: ``SGD`` is upstream ``Descent``; the learning rate of a chain
is the product of its members' (``WeightDecay`` counts as 1); ``ShieldedOpt`` is never mutated or crossed over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import optax


class Optimiser:
    """Base class of the optimiser specs (frozen dataclasses). Use a concrete spec such as ``ng.Adam(1e-3)``.

    Every spec has ``learning_rate``, ``with_learning_rate(lr)`` (a copy), ``to_optax()``, ``skeleton()``,
    ``to_dict()`` and ``Optimiser.from_dict(d)``.

    Example:
        >>> import naivega_jax as ng
        >>> opt = ng.Optimiser.from_dict({"type": "Adam", "learning_rate": 0.01})
        >>> opt, opt.to_dict() == ng.Adam(0.01).to_dict()
        (Adam(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-08), True)
    """

    hyperparameters: ClassVar[tuple[str, ...]] = ()

    @property
    def learning_rate(self) -> float:
        raise NotImplementedError

    def with_learning_rate(self, learning_rate: float) -> Optimiser:
        """A copy with the learning rate set (specs without a learning rate of their own return themselves)."""
        _check_number(learning_rate, "learning_rate", type(self).__name__)
        return dataclasses.replace(self, learning_rate=float(learning_rate))

    def to_optax(self) -> optax.GradientTransformation:
        """The optax transformation; scalar hyperparameters are injected state (``optax.inject_hyperparams``)."""
        hyper = {name: getattr(self, name) for name in self.hyperparameters}
        return optax.inject_hyperparams(_FACTORIES[type(self).__name__])(**hyper)

    def skeleton(self) -> Optimiser:
        """The spec with every hyperparameter at its default: equal skeletons mean equal optax structure."""
        return type(self)()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict; ``Optimiser.from_dict`` inverts it."""
        return {"type": type(self).__name__, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Optimiser:
        """The spec described by ``data`` (as written by ``to_dict``)."""
        return optimiser_from_dict(data)

    def __post_init__(self):
        for name in self.hyperparameters:
            value = getattr(self, name)
            _check_number(value, name, type(self).__name__)
            object.__setattr__(self, name, float(value))


def _check_number(value: Any, name: str, where: str) -> None:
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SGD(Optimiser):
    """Plain gradient descent ``x -= learning_rate * g`` (NaiveGAflux's ``Descent``).

    Example:
        >>> import naivega_jax as ng
        >>> ng.SGD(0.1).with_learning_rate(0.5).learning_rate
        0.5
    """

    learning_rate: float = 0.1
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate",)


@dataclasses.dataclass(frozen=True)
class Momentum(Optimiser):
    """Gradient descent with (heavy-ball) momentum.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Momentum(0.01).momentum
        0.9
    """

    learning_rate: float = 0.01
    momentum: float = 0.9
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "momentum")


@dataclasses.dataclass(frozen=True)
class Nesterov(Optimiser):
    """Gradient descent with Nesterov momentum.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Nesterov(0.001).learning_rate
        0.001
    """

    learning_rate: float = 0.001
    momentum: float = 0.9
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "momentum")


@dataclasses.dataclass(frozen=True)
class Adam(Optimiser):
    """Adam.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Adam().learning_rate
        0.001
    """

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "b1", "b2", "eps")


@dataclasses.dataclass(frozen=True)
class NAdam(Optimiser):
    """Adam with Nesterov momentum.

    Example:
        >>> import naivega_jax as ng
        >>> ng.NAdam(0.002).learning_rate
        0.002
    """

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "b1", "b2", "eps")


@dataclasses.dataclass(frozen=True)
class AdaGrad(Optimiser):
    """AdaGrad; the squared-gradient accumulators start at 0 (as upstream, whose start is ``eps``).

    Example:
        >>> import naivega_jax as ng
        >>> ng.AdaGrad().learning_rate
        0.1
    """

    learning_rate: float = 0.1
    eps: float = 1e-8
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "eps")


@dataclasses.dataclass(frozen=True)
class RMSProp(Optimiser):
    """RMSProp with decay ``rho`` of the squared-gradient average.

    Example:
        >>> import naivega_jax as ng
        >>> ng.RMSProp(0.01).rho
        0.9
    """

    learning_rate: float = 1e-3
    rho: float = 0.9
    eps: float = 1e-8
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "rho", "eps")


@dataclasses.dataclass(frozen=True)
class AdamW(Optimiser):
    """Adam with decoupled weight decay (``optax.adamw``: the decay is scaled by the learning rate).

    Example:
        >>> import naivega_jax as ng
        >>> ng.AdamW(1e-3, weight_decay=1e-2).weight_decay
        0.01
    """

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 1e-4
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "b1", "b2", "eps", "weight_decay")


@dataclasses.dataclass(frozen=True)
class WeightDecay(Optimiser):
    """Adds ``weight_decay * x`` to the gradient; put it before a rule in an ``OptimiserChain``.

    It has no learning rate of its own: ``learning_rate`` is 1 and ``with_learning_rate`` returns it unchanged
    (learning-rate mutation and crossover skip it).

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.WeightDecay(5e-4), ng.SGD(0.1))
        >>> chain.learning_rate, ng.WeightDecay().with_learning_rate(0.3)
        (0.1, WeightDecay(weight_decay=0.0005))
    """

    weight_decay: float = 5e-4
    hyperparameters: ClassVar[tuple[str, ...]] = ("weight_decay",)

    @property
    def learning_rate(self) -> float:
        return 1.0

    def with_learning_rate(self, learning_rate: float) -> WeightDecay:
        return self


@dataclasses.dataclass(frozen=True, init=False)
class OptimiserChain(Optimiser):
    """Applies its optimisers in order (``optax.chain``); its learning rate is the product of its members'.

    ``with_learning_rate(lr)`` rescales the first member that has an adjustable learning rate (neither a
    ``WeightDecay`` nor a ``ShieldedOpt``) so that the product becomes ``lr``.

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.Momentum(0.5), ng.SGD(0.2))
        >>> round(chain.learning_rate, 6), round(chain.with_learning_rate(0.5).optimisers[0].learning_rate, 6)
        (0.1, 2.5)
    """

    optimisers: tuple[Optimiser, ...]

    def __init__(self, *optimisers: Optimiser):
        if len(optimisers) == 1 and isinstance(optimisers[0], (tuple, list)):
            optimisers = tuple(optimisers[0])
        if not optimisers:
            raise ValueError("OptimiserChain: needs at least one optimiser, got none")
        for o in optimisers:
            if not isinstance(o, Optimiser):
                raise TypeError(f"OptimiserChain: members must be optimiser specs (ng.Adam(...), ...), got {o!r}")
        object.__setattr__(self, "optimisers", tuple(optimisers))

    @property
    def learning_rate(self) -> float:
        return math.prod(o.learning_rate for o in self.optimisers)

    def with_learning_rate(self, learning_rate: float) -> OptimiserChain:
        _check_number(learning_rate, "learning_rate", "OptimiserChain")
        members = list(self.optimisers)
        for i, o in enumerate(members):
            if _adjustable(o):
                rest = self.learning_rate / o.learning_rate
                members[i] = o.with_learning_rate(float(learning_rate) / rest)
                return OptimiserChain(*members)
        return self

    def to_optax(self) -> optax.GradientTransformation:
        return optax.chain(*(o.to_optax() for o in self.optimisers))

    def skeleton(self) -> OptimiserChain:
        return OptimiserChain(*(o.skeleton() for o in self.optimisers))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "OptimiserChain", "optimisers": [o.to_dict() for o in self.optimisers]}


@dataclasses.dataclass(frozen=True)
class ShieldedOpt(Optimiser):
    """Wraps an optimiser so that mutation and crossover leave it alone; it trains exactly as the wrapped one.

    Example:
        >>> import naivega_jax as ng
        >>> s = ng.ShieldedOpt(ng.Momentum(0.1))
        >>> s.learning_rate, s.with_learning_rate(1.0) == s
        (0.1, True)
    """

    optimiser: Optimiser

    def __post_init__(self):
        if not isinstance(self.optimiser, Optimiser):
            raise TypeError(f"ShieldedOpt: optimiser must be an optimiser spec, got {self.optimiser!r}")

    @property
    def learning_rate(self) -> float:
        return self.optimiser.learning_rate

    def with_learning_rate(self, learning_rate: float) -> ShieldedOpt:
        return self

    def to_optax(self) -> optax.GradientTransformation:
        return self.optimiser.to_optax()

    def skeleton(self) -> Optimiser:
        return self.optimiser.skeleton()

    def to_dict(self) -> dict[str, Any]:
        return {"type": "ShieldedOpt", "optimiser": self.optimiser.to_dict()}


def _adjustable(o: Optimiser) -> bool:
    return not isinstance(o, (WeightDecay, ShieldedOpt))


_FACTORIES: dict[str, Callable[..., optax.GradientTransformation]] = {
    "SGD": lambda learning_rate: optax.sgd(learning_rate),
    "Momentum": lambda learning_rate, momentum: optax.sgd(learning_rate, momentum=momentum),
    "Nesterov": lambda learning_rate, momentum: optax.sgd(learning_rate, momentum=momentum, nesterov=True),
    "Adam": lambda learning_rate, b1, b2, eps: optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
    "NAdam": lambda learning_rate, b1, b2, eps: optax.nadam(learning_rate, b1=b1, b2=b2, eps=eps),
    "AdaGrad": lambda learning_rate, eps: optax.adagrad(learning_rate, initial_accumulator_value=0.0, eps=eps),
    "RMSProp": lambda learning_rate, rho, eps: optax.rmsprop(learning_rate, decay=rho, eps=eps),
    "AdamW": lambda learning_rate, b1, b2, eps, weight_decay: optax.adamw(
        learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    ),
    "WeightDecay": lambda weight_decay: optax.add_decayed_weights(weight_decay),
}

OPTIMISERS: dict[str, type[Optimiser]] = {
    cls.__name__: cls
    for cls in (SGD, Momentum, Nesterov, Adam, NAdam, AdaGrad, RMSProp, AdamW, WeightDecay, OptimiserChain, ShieldedOpt)
}


def optimiser_from_dict(data: Mapping[str, Any]) -> Optimiser:
    """The optimiser spec described by ``data`` (as written by ``spec.to_dict()``).

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.WeightDecay(1e-3), ng.ShieldedOpt(ng.SGD(0.1)))
        >>> ng.optimiser_from_dict(chain.to_dict()) == chain
        True
    """
    if not isinstance(data, Mapping) or data.get("type") not in OPTIMISERS:
        raise ValueError(f"optimiser_from_dict: expected a dict with 'type' one of {sorted(OPTIMISERS)}, got {data!r}")
    kind = data["type"]
    if kind == "OptimiserChain":
        return OptimiserChain(*(optimiser_from_dict(d) for d in data["optimisers"]))
    if kind == "ShieldedOpt":
        return ShieldedOpt(optimiser_from_dict(data["optimiser"]))
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        return OPTIMISERS[kind](**fields)
    except TypeError as e:
        raise ValueError(f"optimiser_from_dict: bad fields for {kind}: {fields!r} ({e})") from None


def map_optimisers(fn: Callable[[Optimiser], Optimiser], optimiser: Optimiser) -> Optimiser:
    """Applies ``fn`` to every rule of ``optimiser``, recursing into chains; ``ShieldedOpt`` members are kept as
    they are (NaiveGAflux's ``optmap`` as used by ``OptimiserMutation``).

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.Nesterov(0.1), ng.ShieldedOpt(ng.Adam(0.1)))
        >>> ng.map_optimisers(lambda o: o.with_learning_rate(10 * o.learning_rate), chain).learning_rate
        0.1
    """
    if isinstance(optimiser, ShieldedOpt):
        return optimiser
    if isinstance(optimiser, OptimiserChain):
        return OptimiserChain(*(map_optimisers(fn, o) for o in optimiser.optimisers))
    if not isinstance(optimiser, Optimiser):
        raise TypeError(f"map_optimisers: optimiser must be an optimiser spec, got {optimiser!r}")
    return fn(optimiser)


def merge_optimisers(*optimisers: Optimiser, kind: type[Optimiser] | None = None) -> Any:
    """Merges optimisers of one type into one (NaiveGAflux's ``mergeopts``).

    Without ``kind`` every argument must have the same type; the result is the first with the product of all
    learning rates (``WeightDecay``: the product of the decays; ``ShieldedOpt``: the merge of the wrapped ones,
    shielded). With ``kind``, the members of that type are merged and a tuple is returned: the others in their
    order, then the merged one (how ``AddOptimiserMutation`` builds its chain).

    Example:
        >>> import naivega_jax as ng
        >>> round(ng.merge_optimisers(ng.SGD(0.1), ng.SGD(2.0), ng.SGD(0.4)).learning_rate, 6)
        0.08
        >>> ng.merge_optimisers(ng.SGD(0.1), ng.Momentum(0.2), kind=ng.SGD)
        (Momentum(learning_rate=0.2, momentum=0.9), SGD(learning_rate=0.1))
    """
    if kind is not None:
        same = [o for o in optimisers if isinstance(o, kind)]
        others = tuple(o for o in optimisers if not isinstance(o, kind))
        return (*others, merge_optimisers(*same)) if same else others
    if not optimisers:
        raise ValueError("merge_optimisers: needs at least one optimiser")
    first = optimisers[0]
    if any(type(o) is not type(first) for o in optimisers):
        raise TypeError(
            "merge_optimisers: without kind= every optimiser must have the same type, got "
            f"{[type(o).__name__ for o in optimisers]}"
        )
    if isinstance(first, OptimiserChain):
        raise TypeError("merge_optimisers: chains cannot be merged; merge their members instead")
    if isinstance(first, ShieldedOpt):
        return ShieldedOpt(merge_optimisers(*(o.optimiser for o in optimisers)))
    if isinstance(first, WeightDecay):
        return WeightDecay(math.prod(o.weight_decay for o in optimisers))
    return first.with_learning_rate(math.prod(o.learning_rate for o in optimisers))
