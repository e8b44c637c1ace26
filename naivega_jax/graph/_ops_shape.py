"""The ops that pool, reshape, drop, scale or merge (see ``_ops`` for what every op declares), and ``OPS``: every
op class by name, which JSON specs refer to (``register_op`` adds user ops)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import GraphError, ShapeError
from ._ops import (
    IMMUTABLE,
    STACK,
    BatchNorm,
    Conv,
    Dense,
    Input,
    Op,
    ParamAxes,
    _as_tuple,
    _explicit_pads,
    _resolve_padding,
    _single_input,
    _window_output,
)


@dataclasses.dataclass(frozen=True)
class _Pool(Op):
    window: int | tuple[int, ...] = 2
    strides: int | tuple[int, ...] | None = None
    padding: Any = "VALID"

    def __post_init__(self):
        if isinstance(self.window, list):
            object.__setattr__(self, "window", tuple(self.window))
        if isinstance(self.strides, list):
            object.__setattr__(self, "strides", tuple(self.strides))
        if isinstance(self.padding, list):
            object.__setattr__(self, "padding", tuple(tuple(p) for p in self.padding))
        rank = len(self.window) if isinstance(self.window, tuple) else 0
        if rank:
            _as_tuple(self.window, rank, "window", type(self).__name__)
        object.__setattr__(self, "padding", _resolve_padding(self.padding, type(self).__name__, rank))

    def resolve(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        rank = len(self.window) if isinstance(self.window, tuple) else len(shape) - 1
        where = f"vertex {name!r}: {type(self).__name__}"
        if rank < 1:
            raise ShapeError(f"{where} needs an input with spatial axes, got feature shape {shape}")
        window = _as_tuple(self.window, rank, "window", where)
        strides = window if self.strides is None else _as_tuple(self.strides, rank, "strides", where)
        return dataclasses.replace(
            self, window=window, strides=strides, padding=_resolve_padding(self.padding, where, rank)
        )

    def output_shape(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        rank = len(self.window)
        where = f"vertex {name!r}: {type(self).__name__}"
        if len(shape) != rank + 1:
            raise ShapeError(f"{where} with window {self.window} needs a feature map of rank {rank + 1}, got {shape}")
        return (
            *_window_output(shape[:-1], self.window, self.strides, (1,) * rank, self.padding, where),
            shape[-1],
        )

    def _reduce(self, x, init, op):
        rank = len(self.window)
        pads, _ = _explicit_pads(x.shape[1:-1], self.window, self.strides, (1,) * rank, self.padding)
        return jax.lax.reduce_window(x, init, op, (1, *self.window, 1), (1, *self.strides, 1), ((0, 0), *pads, (0, 0)))


@dataclasses.dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling over windows of the spatial axes; ``strides`` default to the window.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(4, 4, 2))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("p", ng.MaxPool(2), inp))
        >>> g(jnp.ones((1, 4, 4, 2))).shape
        (1, 2, 2, 2)
    """

    def apply(self, params, state, xs, *, train, key):
        return self._reduce(xs[0], -jnp.inf, jax.lax.max), state


@dataclasses.dataclass(frozen=True)
class AvgPool(_Pool):
    """Mean pooling over windows of the spatial axes (padding counts as zeros); ``strides`` default to the window.

    Example:
        >>> import naivega_jax as ng
        >>> ng.AvgPool((2, 2)).window
        (2, 2)
    """

    def apply(self, params, state, xs, *, train, key):
        return self._reduce(xs[0], 0.0, jax.lax.add) / math.prod(self.window), state


@dataclasses.dataclass(frozen=True)
class GlobalPool(Op):
    """Pools every spatial axis away: ``(..., C) -> (C,)`` by ``"max"`` or ``"mean"``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.GlobalPool("max").kind
        'max'
    """

    kind: str = "mean"

    def __post_init__(self):
        if self.kind not in ("max", "mean"):
            raise GraphError(f"GlobalPool: kind must be 'max' or 'mean', got {self.kind!r}")

    def output_shape(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        if len(shape) < 2:
            raise ShapeError(f"vertex {name!r}: GlobalPool needs spatial axes before the channels, got {shape}")
        return (shape[-1],)

    def apply(self, params, state, xs, *, train, key):
        x = xs[0]
        axes = tuple(range(1, x.ndim - 1))
        return (jnp.max(x, axes) if self.kind == "max" else jnp.mean(x, axes)), state


@dataclasses.dataclass(frozen=True)
class Flatten(Op):
    """Flattens a feature map to a vector, channels fastest. Its size is fixed: widths do not change through it.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2, 3, 4))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("f", ng.Flatten(), inp))
        >>> g(jnp.ones((5, 2, 3, 4))).shape
        (5, 24)
    """

    trait: ClassVar[str] = IMMUTABLE

    def output_shape(self, name, in_shapes):
        return (math.prod(_single_input(name, self, in_shapes)),)

    def apply(self, params, state, xs, *, train, key):
        x = xs[0]
        return x.reshape(x.shape[0], -1), state


@dataclasses.dataclass(frozen=True)
class Dropout(Op):
    """Zeroes each element with probability ``rate`` in training mode (scaling the rest); identity in inference.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Dropout(0.5).rate
        0.5
    """

    rate: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.rate < 1.0:
            raise GraphError(f"Dropout: rate must be in [0, 1), got {self.rate!r}")

    def output_shape(self, name, in_shapes):
        return _single_input(name, self, in_shapes)

    def apply(self, params, state, xs, *, train, key):
        x = xs[0]
        if not train or self.rate == 0.0:
            return x, state
        if key is None:
            raise GraphError("Dropout in training mode needs a key: call ng.apply(graph, x, train=True, key=key)")
        keep = jax.random.bernoulli(key, 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), 0.0), state


@dataclasses.dataclass(frozen=True)
class Scale(Op):
    """Learnable per-channel scale (and optional bias), starting at ``factor``; size-invariant.

    A residual block initialised as identity computes ``x + x``; a ``Scale(0.5)`` after the add restores ``x``.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("s", ng.Scale(0.5), inp))
        >>> g(jnp.ones((1, 3))).tolist()
        [[0.5, 0.5, 0.5]]
    """

    factor: float = 1.0
    use_bias: bool = False

    def output_shape(self, name, in_shapes):
        return _single_input(name, self, in_shapes)

    def param_axes(self):
        axes = {"scale": ParamAxes(out=0, new=float(self.factor))}
        if self.use_bias:
            axes["bias"] = ParamAxes(out=0, new=0.0)
        return axes

    def init(self, rng, in_shapes, weight_init="default"):
        n = in_shapes[0][-1]
        params = {"scale": np.full((n,), self.factor, np.float32)}
        if self.use_bias:
            params["bias"] = np.zeros((n,), np.float32)
        return params, {}

    def apply(self, params, state, xs, *, train, key):
        y = xs[0] * params["scale"]
        if self.use_bias:
            y = y + params["bias"]
        return y, state


@dataclasses.dataclass(frozen=True)
class Concat(Op):
    """Concatenates its inputs along the channel axis; the other axes must agree. Build with ``ng.concat``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.graph.Concat().output_shape("c", ((4, 4, 2), (4, 4, 3)))
        (4, 4, 5)
    """

    trait: ClassVar[str] = STACK
    max_inputs: ClassVar[int | None] = None

    def output_shape(self, name, in_shapes):
        spatial = {s[:-1] for s in in_shapes}
        if len(spatial) != 1:
            raise ShapeError(
                f"vertex {name!r}: concat inputs must agree on every axis but the channels, got shapes {in_shapes}"
            )
        return (*in_shapes[0][:-1], sum(s[-1] for s in in_shapes))

    def apply(self, params, state, xs, *, train, key):
        return (xs[0] if len(xs) == 1 else jnp.concatenate(xs, axis=-1)), state


@dataclasses.dataclass(frozen=True)
class Add(Op):
    """Elementwise sum of its inputs, which must have equal shapes. Build with ``ng.add``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.graph.Add().output_shape("a", ((4, 3), (4, 3)))
        (4, 3)
    """

    max_inputs: ClassVar[int | None] = None

    def output_shape(self, name, in_shapes):
        if len(set(in_shapes)) != 1:
            raise ShapeError(f"vertex {name!r}: add inputs must have equal shapes, got {in_shapes}")
        return in_shapes[0]

    def apply(self, params, state, xs, *, train, key):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y, state


OPS: dict[str, type[Op]] = {
    cls.__name__: cls
    for cls in (
        Input,
        Dense,
        Conv,
        BatchNorm,
        MaxPool,
        AvgPool,
        GlobalPool,
        Flatten,
        Dropout,
        Scale,
        Concat,
        Add,
    )
}


def register_op(cls: type[Op]) -> type[Op]:
    """Registers a user op class (a frozen dataclass subclassing ``ng.graph.Op``) so JSON specs can name it.

    Example:
        >>> import naivega_jax as ng
        >>> ng.graph.register_op(ng.Dense) is ng.Dense
        True
    """
    if not (isinstance(cls, type) and issubclass(cls, Op) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"register_op: expected a dataclass subclass of ng.graph.Op, got {cls!r}")
    OPS[cls.__name__] = cls
    return cls
