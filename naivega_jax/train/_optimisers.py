"""Optimiser specs: frozen, hashable, JSON-friendly descriptions of optax optimisers.

A spec is configuration, not state: ``to_optax()`` builds the optax ``GradientTransformation``. Every scalar
hyperparameter (the learning rate first of all) goes through ``optax.inject_hyperparams``, so its value lives in the
optimiser *state* (traced data), never in the compiled program: two specs that differ only in hyperparameter values
share one compiled train step. ``skeleton()`` is the spec with every hyperparameter set to its default, the
hashable key a compile cache uses.

A learning rate may also be a schedule (a callable step -> rate, such as ``optax.cosine_decay_schedule(1e-2, 1000)``),
held as a ``ScaledSchedule``: the schedule is a constant of the compiled step (part of the skeleton), its ``factor``
(what learning-rate mutation changes) is injected state like a float rate. ``Optax`` wraps a plain optax
transformation, whose hyperparameters are its own constants.

Names and semantics follow NaiveGAflux/Optimisers.jl: ``SGD`` is upstream ``Descent``; the learning rate of a chain
is the product of its members' (``WeightDecay`` counts as 1); ``ShieldedOpt`` is never mutated or crossed over.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import optax


class Optimiser:
    """Base class of the optimiser specs (frozen dataclasses). Use a concrete spec such as ``ng.Adam(1e-3)``.

    Every spec has ``learning_rate``, ``with_learning_rate(lr)`` (a copy), ``to_optax()``, ``skeleton()``,
    ``to_dict()`` and ``Optimiser.from_dict(d)``. A spec's ``learning_rate`` is a float or a ``ScaledSchedule``
    (give any optax schedule, it is wrapped); ``to_dict`` refuses a schedule (JSON holds numbers only).

    Example:
        >>> import naivega_jax as ng
        >>> opt = ng.train.Optimiser.from_dict({"type": "Adam", "learning_rate": 0.01})
        >>> opt, opt.to_dict() == ng.Adam(0.01).to_dict()
        (Adam(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-08), True)
    """

    hyperparameters: ClassVar[tuple[str, ...]] = ()

    if TYPE_CHECKING:
        # Every concrete spec is a dataclass: lets the type checker accept dataclasses.fields/replace on a spec.
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def learning_rate(self) -> float | ScaledSchedule:
        raise NotImplementedError

    def with_learning_rate(self, learning_rate: float | Callable[[Any], Any]) -> Optimiser:
        """A copy with the learning rate set: a number or a schedule (specs without a learning rate of their own
        return themselves)."""
        return dataclasses.replace(self, learning_rate=_learning_rate(learning_rate, type(self).__name__))

    def to_optax(self) -> optax.GradientTransformation:
        """The optax transformation; scalar hyperparameters are injected state (``optax.inject_hyperparams``)."""
        return optax.inject_hyperparams(self._factory())(**self._injected())

    def _injected(self) -> dict[str, float]:
        """The values ``to_optax`` injects, by name: a scheduled learning rate injects its factor only, as
        ``learning_rate_factor`` (the schedule itself is a constant of the factory)."""
        values: dict[str, float] = {}
        for name in self.hyperparameters:
            value = getattr(self, name)
            if isinstance(value, ScaledSchedule):
                values[f"{name}_factor"] = value.factor
            else:
                values[name] = value
        return values

    def _factory(self) -> Callable[..., optax.GradientTransformation]:
        factory = _FACTORIES[type(self).__name__]
        schedule = getattr(self, "learning_rate", None)
        if not isinstance(schedule, ScaledSchedule):
            return factory
        return _scheduled(factory, schedule.schedule, tuple(self._injected()))

    def skeleton(self) -> Optimiser:
        """The spec with every hyperparameter at its default: equal skeletons mean equal optax structure. A
        scheduled learning rate keeps its schedule (at factor 1): the schedule is compiled into the step."""
        schedule = getattr(self, "learning_rate", None)
        spec_type: type[Any] = type(self)  # a concrete dataclass spec, whose fields all have defaults
        if isinstance(schedule, ScaledSchedule):
            return spec_type(learning_rate=ScaledSchedule(schedule.schedule))
        return spec_type()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict; ``Optimiser.from_dict`` inverts it. A learning rate that is a schedule cannot be
        written: ``ValueError`` naming the field."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in fields.items():
            if isinstance(value, ScaledSchedule):
                raise ValueError(
                    f"{type(self).__name__}.to_dict: {name} is a schedule ({value!r}), which JSON cannot hold; only "
                    "specs with float learning rates can be saved"
                )
        return {"type": type(self).__name__, **fields}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Optimiser:
        """The spec described by ``data`` (as written by ``to_dict``)."""
        return optimiser_from_dict(data)

    def __post_init__(self):
        for name in self.hyperparameters:
            value = getattr(self, name)
            if name == "learning_rate":
                object.__setattr__(self, name, _learning_rate(value, type(self).__name__))
                continue
            _check_number(value, name, type(self).__name__)
            object.__setattr__(self, name, float(value))


def _learning_rate(value: Any, where: str) -> float | ScaledSchedule:
    """A learning rate as a spec holds it: a float, or a schedule wrapped as a ``ScaledSchedule``."""
    if callable(value):
        return value if isinstance(value, ScaledSchedule) else ScaledSchedule(value)
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"{where}: learning_rate must be a real number or a schedule (step -> rate), got {value!r}")
    _check_number(value, "learning_rate", where)
    return float(value)


def _scheduled(factory: Callable[..., Any], schedule: Callable[[Any], Any], names: tuple[str, ...]) -> Callable:
    """``factory`` with its learning rate ``learning_rate_factor * schedule(count)``: the factor stays a number
    that ``optax.inject_hyperparams`` injects (traced), the schedule counts the optimiser's own steps."""

    def scheduled(**values: Any) -> optax.GradientTransformation:
        factor = values.pop("learning_rate_factor")
        return factory(learning_rate=lambda count: factor * schedule(count), **values)

    # inject_hyperparams reads the factory's signature to tell hyperparameters apart
    scheduled.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in names]
    )
    return scheduled


@dataclasses.dataclass(frozen=True)
class ScaledSchedule:
    """A learning-rate schedule whose values are multiplied by ``factor``: ``factor * schedule(count)``.

    The specs hold every schedule learning rate as one (a plain schedule at factor 1). ``LearningRateMutation``
    changes the factor, and so do ``*`` and ``/`` by a number; wrapping a ``ScaledSchedule`` again multiplies the
    factors. The division of two scalings of the same schedule is the ratio of their factors (a number).

    In training, the schedule is a constant of the compiled step (part of the compile-cache key: keep one schedule
    object, a new one compiles again) and is evaluated at the optimiser's own step count; the factor is injected
    state, so changing it compiles nothing.

    Example:
        >>> import optax
        >>> from naivega_jax.train import ScaledSchedule
        >>> s = ScaledSchedule(optax.linear_schedule(1.0, 0.0, 10), 0.5)
        >>> round(float(s(4)), 6), (s * 2).factor, ScaledSchedule(s, 3.0).factor
        (0.3, 1.0, 1.5)
    """

    schedule: Callable[[Any], Any]
    factor: float = 1.0

    def __post_init__(self):
        if not callable(self.schedule):
            raise TypeError(f"ScaledSchedule: schedule must be callable (step -> rate), got {self.schedule!r}")
        _check_number(self.factor, "factor", "ScaledSchedule")
        factor = float(self.factor)
        if isinstance(self.schedule, ScaledSchedule):
            factor *= self.schedule.factor
            object.__setattr__(self, "schedule", self.schedule.schedule)
        object.__setattr__(self, "factor", factor)

    def __call__(self, count: Any) -> Any:
        return self.factor * self.schedule(count)

    def __mul__(self, other: Any) -> ScaledSchedule:
        if isinstance(other, bool) or not hasattr(other, "__float__"):
            return NotImplemented
        return ScaledSchedule(self.schedule, self.factor * float(other))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> ScaledSchedule | float:
        if isinstance(other, ScaledSchedule):
            if other.schedule is not self.schedule:
                return NotImplemented
            return self.factor / other.factor
        if isinstance(other, bool) or not hasattr(other, "__float__"):
            return NotImplemented
        return ScaledSchedule(self.schedule, self.factor / float(other))


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

    learning_rate: float | ScaledSchedule = 0.1
    hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate",)


@dataclasses.dataclass(frozen=True)
class Momentum(Optimiser):
    """Gradient descent with (heavy-ball) momentum.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Momentum(0.01).momentum
        0.9
    """

    learning_rate: float | ScaledSchedule = 0.01
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

    learning_rate: float | ScaledSchedule = 0.001
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

    learning_rate: float | ScaledSchedule = 1e-3
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

    learning_rate: float | ScaledSchedule = 1e-3
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

    learning_rate: float | ScaledSchedule = 0.1
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

    learning_rate: float | ScaledSchedule = 1e-3
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

    learning_rate: float | ScaledSchedule = 1e-3
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

    def with_learning_rate(self, learning_rate: float | Callable[[Any], Any]) -> WeightDecay:
        return self


@dataclasses.dataclass(frozen=True, init=False)
class OptimiserChain(Optimiser):
    """Applies its optimisers in order (``optax.chain``); its learning rate is the product of its members'.

    ``with_learning_rate(lr)`` rescales the first member that has an adjustable learning rate (neither a
    ``WeightDecay``, a ``ShieldedOpt`` nor an ``Optax``) so that the product becomes ``lr``. With one scheduled
    member the product is that member's ``ScaledSchedule`` times the others' rates (more than one: ``TypeError``).

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
    def learning_rate(self) -> float | ScaledSchedule:
        rate: float | ScaledSchedule = 1.0
        for o in self.optimisers:
            rate = rate * o.learning_rate
        return rate

    def with_learning_rate(self, learning_rate: float | Callable[[Any], Any]) -> OptimiserChain:
        learning_rate = _learning_rate(learning_rate, "OptimiserChain")
        members = list(self.optimisers)
        for i, o in enumerate(members):
            if _adjustable(o):
                total: Any = self.learning_rate  # a ScaledSchedule whenever o's is one
                rest = total / o.learning_rate
                members[i] = o.with_learning_rate(learning_rate / rest)
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
    def learning_rate(self) -> float | ScaledSchedule:
        return self.optimiser.learning_rate

    def with_learning_rate(self, learning_rate: float | Callable[[Any], Any]) -> ShieldedOpt:
        return self

    def to_optax(self) -> optax.GradientTransformation:
        return self.optimiser.to_optax()

    def skeleton(self) -> Optimiser:
        return self.optimiser.skeleton()

    def to_dict(self) -> dict[str, Any]:
        return {"type": "ShieldedOpt", "optimiser": self.optimiser.to_dict()}


@dataclasses.dataclass(frozen=True, eq=False)
class Optax(Optimiser):
    """A plain optax transformation as an optimiser: ``ng.Optax(optax.adamw(1e-3), key="adamw-1e-3")``.

    Wherever an optimiser spec is accepted, a bare ``optax.GradientTransformation`` is too and is wrapped as
    ``Optax(transform)``. Differences from the specs:

    * Compile-cache identity: without ``key``, the transformation object itself. Training twice with the same object
      compiles once; a new ``optax.adamw(1e-3)`` per call is a new object and compiles again. With a ``key``
      (any hashable), equal keys are equal optimisers and share every compiled step: you promise that equal keys
      mean the same transformation.
    * Its hyperparameters are constants of the compiled step, not traced state: another learning rate is another
      transformation (and another compile). Use ``optax.inject_hyperparams`` inside it, or a spec, to trace them.
    * The update sees the parameters as the graph's tree (``{vertex: {name: array}}``), never the engine's flat
      vector, so transformations that look at arrays one by one (LAMB's trust ratio, ``optax.masked``,
      ``optax.multi_transform``) behave as they do elsewhere.
    * Mutations and crossovers leave it unchanged (as ``ShieldedOpt``); ``learning_rate`` is ``nan`` (unknown here)
      and ``with_learning_rate`` returns it as it is; ``to_dict`` raises (a transformation is not JSON).

    Example:
        >>> import optax, naivega_jax as ng
        >>> from naivega_jax.train import Optax
        >>> a, b = Optax(optax.adamw(1e-3), key="adamw"), Optax(optax.adamw(1e-3), key="adamw")
        >>> a == b, Optax(a.transform) == Optax(optax.adamw(1e-3)), ng.LearningRateMutation()(None, a) is a
        (True, False, True)
    """

    transform: optax.GradientTransformation
    key: Hashable | None = None

    def __post_init__(self):
        if not isinstance(self.transform, optax.GradientTransformation):
            raise TypeError(
                f"Optax: transform must be an optax GradientTransformation (optax.adamw(1e-3), ...), got "
                f"{self.transform!r}"
            )
        try:
            hash(self.key)
        except TypeError:
            raise TypeError(f"Optax: key must be hashable (a string, a tuple, ...), got {self.key!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Optax):
            return NotImplemented
        if self.key is not None or other.key is not None:
            return self.key == other.key
        return self.transform is other.transform

    def __hash__(self) -> int:
        return hash(("Optax", self.key)) if self.key is not None else hash(("Optax", id(self.transform)))

    def __repr__(self) -> str:
        return f"Optax(<{type(self.transform).__name__} at {id(self.transform):#x}>, key={self.key!r})"

    @property
    def learning_rate(self) -> float:
        return math.nan

    def with_learning_rate(self, learning_rate: Any) -> Optax:
        return self

    def to_optax(self) -> optax.GradientTransformation:
        return self.transform

    def _injected(self) -> dict[str, float]:
        return {}

    def skeleton(self) -> Optax:
        return self

    def to_dict(self) -> dict[str, Any]:
        raise ValueError(
            f"Optax.to_dict: an optax transformation (key={self.key!r}) cannot be written as JSON; only optimiser "
            "specs with float learning rates (ng.Adam(1e-3), ...) can be saved"
        )


def as_optimiser(optimiser: Any) -> Any:
    """``optimiser`` with a bare optax transformation wrapped as ``Optax``; anything else as it is."""
    if isinstance(optimiser, optax.GradientTransformation):
        return Optax(optimiser)
    return optimiser


def is_plain_optax(optimiser: Any) -> bool:
    """Whether ``optimiser`` is a plain optax transformation (bare or as ``Optax``), which mutations leave alone."""
    return isinstance(optimiser, (Optax, optax.GradientTransformation))


def _adjustable(o: Optimiser) -> bool:
    return not isinstance(o, (WeightDecay, ShieldedOpt, Optax))


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
}  # Optax is not here: a transformation cannot be read back from JSON


def optimiser_from_dict(data: Mapping[str, Any]) -> Optimiser:
    """The optimiser spec described by ``data`` (as written by ``spec.to_dict()``).

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.WeightDecay(1e-3), ng.ShieldedOpt(ng.SGD(0.1)))
        >>> ng.train.optimiser_from_dict(chain.to_dict()) == chain
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
    """Applies ``fn`` to every rule of ``optimiser``, recursing into chains; ``ShieldedOpt`` and ``Optax`` members
    are kept as they are (NaiveGAflux's ``optmap`` as used by ``OptimiserMutation``).

    Example:
        >>> import naivega_jax as ng
        >>> chain = ng.OptimiserChain(ng.Nesterov(0.1), ng.ShieldedOpt(ng.Adam(0.1)))
        >>> ng.train.map_optimisers(lambda o: o.with_learning_rate(10 * o.learning_rate), chain).learning_rate
        0.1
    """
    if isinstance(optimiser, (ShieldedOpt, Optax)):
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
        >>> round(ng.train.merge_optimisers(ng.SGD(0.1), ng.SGD(2.0), ng.SGD(0.4)).learning_rate, 6)
        0.08
        >>> ng.train.merge_optimisers(ng.SGD(0.1), ng.Momentum(0.2), kind=ng.SGD)
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
    if isinstance(first, Optax):
        raise TypeError("merge_optimisers: plain optax transformations (ng.Optax) cannot be merged; chain them")
    if isinstance(first, ShieldedOpt):
        return ShieldedOpt(merge_optimisers(*(o.optimiser for o in optimisers if isinstance(o, ShieldedOpt))))
    if isinstance(first, WeightDecay):
        return WeightDecay(math.prod(o.weight_decay for o in optimisers if isinstance(o, WeightDecay)))
    return first.with_learning_rate(math.prod(o.learning_rate for o in optimisers))
