"""Layer spaces: each draws one op (``ng.Dense``, ``ng.Conv``, ...) for a given input feature shape.

Called as ``layer_space(key, in_shape, *, outsize=None) -> Op``; ``outsize`` overrides the drawn output size (the
number of neurons) of ops that have one. Architecture spaces call ``sample(rng, in_shape, outsize=...)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from .._errors import ShapeError
from .._random import host_rng
from ..graph import AvgPool, BatchNorm, Conv, Dense, MaxPool, Op
from ..graph.internal import check_activation
from ._parspace import AbstractParSpace, ParSpace, SingletonParSpace, draw_tuple, flat_choices, parspace_of

logger = logging.getLogger("naivega_jax.search")

_LOG_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("naivega_search_log_depth", default=0)


@contextlib.contextmanager
def nested_logging() -> Iterator[None]:
    """Indents the messages logged by nested logging spaces, so a hierarchy of spaces logs as a tree."""
    token = _LOG_DEPTH.set(_LOG_DEPTH.get() + 1)
    try:
        yield
    finally:
        _LOG_DEPTH.reset(token)


def log_message(level: int, message: str) -> None:
    logger.log(level, "%s%s", "   " * _LOG_DEPTH.get(), message)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_values(space: AbstractParSpace, ok: Callable[[Any], bool], what: str, expected: str) -> None:
    values = flat_choices(space)
    if values is None:
        return
    for v in values:
        if not ok(v):
            raise ValueError(f"{what}: every value must be {expected}, got {v!r} in {space!r}")


def _positive_ints(x: Any, what: str) -> AbstractParSpace:
    space = parspace_of(x, what)
    _check_values(space, lambda v: _is_int(v) and v >= 1, what, "a positive int")
    return space


def _activations(x: Any, what: str) -> AbstractParSpace:
    space = parspace_of(x, what)
    values = flat_choices(space)
    for v in values or ():
        check_activation(v, what)
    return space


def _is_pad_pairs(x: Any) -> bool:
    return (
        isinstance(x, (tuple, list))
        and len(x) > 0
        and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(i) for i in p) for p in x)
    )


def _padding_value(p: Any) -> Any:
    if isinstance(p, str) and p.upper() in ("SAME", "VALID"):
        return p.upper()
    if _is_int(p) and p >= 0:
        return int(p)
    if _is_pad_pairs(p):
        return tuple((int(lo), int(hi)) for lo, hi in p)
    return None


def _paddings(x: Any, what: str) -> AbstractParSpace:
    """Paddings: ``"SAME"``, ``"VALID"``, an int (each side of every spatial axis) or ``(lo, hi)`` pairs, or a
    list of those to choose from."""
    if isinstance(x, AbstractParSpace):
        space = x
    elif _is_pad_pairs(x) or not isinstance(x, (list, tuple, range)):
        space = SingletonParSpace(x)
    else:
        space = parspace_of(x, what)
    choices = space.choices()
    for v in choices[0] if choices is not None else ():
        if _padding_value(v) is None:
            raise ValueError(
                f"{what}: every padding must be 'SAME', 'VALID', a non-negative int or (lo, hi) pairs, got {v!r}"
            )
    if type(space) is SingletonParSpace:
        space = SingletonParSpace(_padding_value(space.values[0]))
    elif type(space) is ParSpace:
        space = ParSpace(tuple(_padding_value(v) for v in space.dims[0]))
    return space


def _explicit_padding(p: Any, rank: int) -> Any:
    p = _padding_value(p)
    return ((p, p),) * rank if isinstance(p, int) else p


def _rank_of(space: AbstractParSpace) -> int | None:
    """The number of spatial axes a kernel/window space fixes, or None when it adapts to the input."""
    if space.ndims > 1:
        return space.ndims
    choices = space.choices()
    if choices is not None and all(isinstance(v, tuple) for v in choices[0]):
        lengths = {len(v) for v in choices[0]}
        if len(lengths) == 1:
            return lengths.pop()
    return None


def _spatial_rank(rank: int | None, in_shape: tuple[int, ...], what: str) -> int:
    r = rank if rank is not None else len(in_shape) - 1
    if r < 1:
        raise ShapeError(f"{what} needs an input with spatial axes, (L, C) or (H, W, C), got feature shape {in_shape}")
    return r


class AbstractLayerSpace:
    """Base class of layer spaces: ``space(key, in_shape, *, outsize=None) -> Op``.

    Subclasses implement ``sample(rng, in_shape, *, outsize=None)``; ``name`` is a suffix architecture spaces add to
    the vertex name (empty except for ``NamedLayerSpace``).

    Example:
        >>> import naivega_jax as ng
        >>> isinstance(ng.DenseSpace(4, "relu"), ng.search.AbstractLayerSpace)
        True
    """

    @property
    def name(self) -> str:
        return ""

    def sample(self, rng: Any, in_shape: tuple[int, ...], *, outsize: int | None = None) -> Op:
        raise NotImplementedError

    def __call__(self, key: jax.Array, in_shape: tuple[int, ...], *, outsize: int | None = None) -> Op:
        return self.sample(host_rng(key, "layerspace"), tuple(in_shape), outsize=outsize)


@dataclasses.dataclass(frozen=True)
class DenseSpace(AbstractLayerSpace):
    """Dense layers: the output size is drawn from ``outsizes``, the activation from ``activations``.

    Each argument is a value, a sequence to choose from uniformly, or a parameter space.

    Example:
        >>> import jax, naivega_jax as ng
        >>> op = ng.DenseSpace(range(3, 11), ["relu", "elu"])(jax.random.key(0), (5,))
        >>> 3 <= op.nout < 11 and op.activation in ("relu", "elu")
        True
        >>> ng.DenseSpace(8, "relu")(jax.random.key(0), (5,), outsize=2)
        Dense(nout=2, activation='relu', use_bias=True)
    """

    outsizes: Any
    activations: Any = "identity"

    def __post_init__(self):
        object.__setattr__(self, "outsizes", _positive_ints(self.outsizes, "DenseSpace outsizes"))
        object.__setattr__(self, "activations", _activations(self.activations, "DenseSpace activations"))

    def sample(self, rng, in_shape, *, outsize=None):
        nout = self.outsizes.sample(rng) if outsize is None else outsize
        return Dense(int(nout), self.activations.sample(rng))


@dataclasses.dataclass(frozen=True)
class ConvSpace(AbstractLayerSpace):
    """Convolutions; 1-D or 2-D (or 3-D) by the kernel rank, each kernel dimension drawn independently.

    A scalar or a list of ints for ``kernel_sizes`` adapts to the input (one kernel dimension per spatial axis); an
    N-D space (``ng.ParSpace([1, 3], [3, 5])``, ``ng.search.CoupledParSpace([1, 3], 2)``) or a list of N-tuples fixes
    the
    rank. ``strides`` and ``dilations`` work the same way. ``paddings``: ``"SAME"``, ``"VALID"``, an int (each side of
    every spatial axis), ``(lo, hi)`` pairs per axis, or a list of those.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.ConvSpace(outsizes=[8, 16], kernel_sizes=[1, 3, 5], activations="relu")
        >>> op = space(jax.random.key(0), (8, 8, 3))
        >>> len(op.kernel_size), op.nout in (8, 16), op.padding
        (2, True, 'SAME')
    """

    outsizes: Any
    kernel_sizes: Any
    activations: Any = "identity"
    strides: Any = 1
    dilations: Any = 1
    paddings: Any = "SAME"

    def __post_init__(self):
        for field in ("outsizes", "kernel_sizes", "strides", "dilations"):
            object.__setattr__(self, field, _positive_ints(getattr(self, field), f"ConvSpace {field}"))
        object.__setattr__(self, "activations", _activations(self.activations, "ConvSpace activations"))
        object.__setattr__(self, "paddings", _paddings(self.paddings, "ConvSpace paddings"))
        ranks = {_rank_of(s) for s in (self.kernel_sizes, self.strides, self.dilations)} - {None}
        if len(ranks) > 1:
            raise ValueError(
                f"ConvSpace: kernel_sizes, strides and dilations fix different ranks {sorted(ranks)}; "
                f"got {self.kernel_sizes!r}, {self.strides!r}, {self.dilations!r}"
            )

    @property
    def rank(self) -> int | None:
        """The number of spatial axes this space fixes, or None when it follows the input."""
        ranks = {_rank_of(s) for s in (self.kernel_sizes, self.strides, self.dilations)} - {None}
        return ranks.pop() if ranks else None

    def sample(self, rng, in_shape, *, outsize=None):
        rank = _spatial_rank(self.rank, in_shape, "ConvSpace")
        nout = self.outsizes.sample(rng) if outsize is None else outsize
        kernel = draw_tuple(self.kernel_sizes, rng, rank, "ConvSpace kernel_sizes")
        act = self.activations.sample(rng)
        padding = _explicit_padding(self.paddings.sample(rng), rank)
        strides = draw_tuple(self.strides, rng, rank, "ConvSpace strides")
        dilation = draw_tuple(self.dilations, rng, rank, "ConvSpace dilations")
        return Conv(
            int(nout),
            kernel_size=tuple(int(k) for k in kernel),
            strides=tuple(int(s) for s in strides),
            dilation=tuple(int(d) for d in dilation),
            padding=padding,
            activation=act,
        )


@dataclasses.dataclass(frozen=True, init=False)
class BatchNormSpace(AbstractLayerSpace):
    """Batch normalisation with an activation drawn from ``activations`` (one name, several, a list or a space).

    The output size is the input's: ``outsize`` is ignored.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.BatchNormSpace("relu")(jax.random.key(0), (4,)).activation
        'relu'
        >>> ng.BatchNormSpace("relu", "elu")(jax.random.key(0), (4,)).activation in ("relu", "elu")
        True
    """

    activations: AbstractParSpace

    def __init__(self, *activations: Any):
        if not activations:
            raise ValueError("BatchNormSpace: expected at least one activation, got none")
        value = activations[0] if len(activations) == 1 else activations
        object.__setattr__(self, "activations", _activations(value, "BatchNormSpace activations"))

    def sample(self, rng, in_shape, *, outsize=None):
        return BatchNorm(self.activations.sample(rng))


_POOLS = {"max": MaxPool, "mean": AvgPool}
_WINDOW_STRIDES = SingletonParSpace(None)


@dataclasses.dataclass(frozen=True)
class PoolSpace(AbstractLayerSpace):
    """Max or mean pooling; windows drawn per spatial axis (rank from the input unless the space fixes it).

    ``strides=None`` uses the window as stride (as ``ng.MaxPool``); NaiveGAflux's default is ``strides=1``.
    ``paddings`` as in ``ConvSpace`` (default ``"VALID"``); ``kinds`` from ``"max"``, ``"mean"``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> op = ng.PoolSpace(2, kinds="max")(jax.random.key(0), (8, 8, 3))
        >>> type(op).__name__, op.window, op.strides
        ('MaxPool', (2, 2), (2, 2))
    """

    window_sizes: Any
    strides: Any = None
    paddings: Any = "VALID"
    kinds: Any = ("max", "mean")

    def __post_init__(self):
        object.__setattr__(self, "window_sizes", _positive_ints(self.window_sizes, "PoolSpace window_sizes"))
        strides = parspace_of(self.strides, "PoolSpace strides")
        if strides != _WINDOW_STRIDES:
            strides = _positive_ints(strides, "PoolSpace strides (None alone means the window)")
        object.__setattr__(self, "strides", strides)
        object.__setattr__(self, "paddings", _paddings(self.paddings, "PoolSpace paddings"))
        kinds = parspace_of(self.kinds, "PoolSpace kinds")
        _check_values(kinds, lambda v: v in _POOLS, "PoolSpace kinds", f"one of {sorted(_POOLS)}")
        object.__setattr__(self, "kinds", kinds)

    def sample(self, rng, in_shape, *, outsize=None):
        kind = self.kinds.sample(rng)
        rank = _spatial_rank(_rank_of(self.window_sizes), in_shape, "PoolSpace")
        window = tuple(int(w) for w in draw_tuple(self.window_sizes, rng, rank, "PoolSpace window_sizes"))
        strides = window
        if self.strides != _WINDOW_STRIDES:
            strides = tuple(int(s) for s in draw_tuple(self.strides, rng, rank, "PoolSpace strides"))
        padding = _explicit_padding(self.paddings.sample(rng), rank)
        return _POOLS[kind](window=window, strides=strides, padding=padding)


@dataclasses.dataclass(frozen=True)
class NamedLayerSpace(AbstractLayerSpace):
    """Adds ``name`` as a suffix to the vertex name: ``VertexSpace(NamedLayerSpace("dense", s))("v", ...)`` makes
    ``"v.dense"``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.NamedLayerSpace("dense", ng.DenseSpace(3, "relu")).name
        'dense'
    """

    layer_name: str
    space: AbstractLayerSpace

    def __post_init__(self):
        if not isinstance(self.layer_name, str):
            raise TypeError(f"NamedLayerSpace: name must be a str, got {self.layer_name!r}")
        if not isinstance(self.space, AbstractLayerSpace):
            raise TypeError(f"NamedLayerSpace: space must be a layer space (ng.DenseSpace, ...), got {self.space!r}")

    @property
    def name(self) -> str:
        return self.layer_name

    def sample(self, rng, in_shape, *, outsize=None):
        return self.space.sample(rng, in_shape, outsize=outsize)


@dataclasses.dataclass(frozen=True)
class LoggingLayerSpace(AbstractLayerSpace):
    """Logs ``msgfun(op)`` (default ``"Create <op> from <name>"``) at ``level`` on the ``naivega_jax.search``
    logger after drawing an op; messages of nested logging spaces are indented.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.search.LoggingLayerSpace(ng.DenseSpace(3, "relu"))(jax.random.key(0), (4,)).nout
        3
    """

    space: AbstractLayerSpace
    msgfun: Callable[[Op], str] | None = None
    level: int = logging.DEBUG

    def __post_init__(self):
        if not isinstance(self.space, AbstractLayerSpace):
            raise TypeError(f"LoggingLayerSpace: space must be a layer space (ng.DenseSpace, ...), got {self.space!r}")

    @property
    def name(self) -> str:
        return self.space.name

    def sample(self, rng, in_shape, *, outsize=None):
        with nested_logging():
            op = self.space.sample(rng, in_shape, outsize=outsize)
        if logger.isEnabledFor(self.level):
            msg = self.msgfun(op) if self.msgfun is not None else f"Create {op!r} from {self.space.name}"
            log_message(self.level, msg)
        return op
