"""Ops: what a vertex computes, as frozen, hashable, serialisable dataclasses.

Every op declares
* its size trait (``ABSORB``: output size independent of input size, Dense/Conv; ``STACK``: output size is the sum
  of the inputs', concat; ``INVARIANT``: output size equals every input's, batch-norm, pools, dropout, scale, add;
  ``IMMUTABLE``: sizes never change, inputs and flatten),
* which axis of each parameter and state array holds its output and input neurons (``ParamAxes``), so that weight
  surgery is written once for every op,
* ``output_shape`` (validating), ``init`` (numpy, from a host generator) and ``apply`` (jnp, pure).

Feature shapes exclude the batch axis and are channels-last: vectors ``(C,)``, sequences ``(L, C)``, images
``(H, W, C)``. A vertex's number of neurons (``nout``) is the size of the last axis of its output.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import GraphError, ShapeError
from ._activations import activation, check_activation

ABSORB = "absorb"
STACK = "stack"
INVARIANT = "invariant"
IMMUTABLE = "immutable"

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ParamAxes:
    """Where an array's neurons are, and how a new output neuron is filled.

    Attributes:
        out: axis indexed by the vertex's output neurons, or None.
        inp: axis indexed by the vertex's input neurons (absorbing ops only), or None.
        new: fill of a new output neuron: ``"fanin"`` (small random, scaled by the fan-in) or a constant.

    Example:
        >>> import naivega_jax as ng
        >>> ng.Dense(3).param_axes()["kernel"]
        ParamAxes(out=1, inp=0, new='fanin')
    """

    out: int | None
    inp: int | None = None
    new: str | float = 0.0


@dataclasses.dataclass(frozen=True)
class PartialIdentityInit:
    """Identity shifted by offsets: output neuron ``out_offset + i`` copies input neuron ``in_offset + i``.

    Used per path of a fork so that the concatenated paths form an identity together.

    Example:
        >>> import naivega_jax as ng
        >>> ng.graph.PartialIdentityInit(in_offset=2, out_offset=0).in_offset
        2
    """

    in_offset: int = 0
    out_offset: int = 0


WEIGHT_INITS = ("default", "identity", "zero")


def check_weight_init(init: object, where: str) -> None:
    if not (isinstance(init, PartialIdentityInit) or init in WEIGHT_INITS):
        raise GraphError(
            f"{where}: unknown weight init {init!r}; expected one of {WEIGHT_INITS} or "
            "ng.graph.PartialIdentityInit(...)"
        )


def _identity_matrix(nin: int, nout: int, init: Any) -> np.ndarray:
    w = np.zeros((nin, nout), np.float32)
    i0, o0 = (init.in_offset, init.out_offset) if isinstance(init, PartialIdentityInit) else (0, 0)
    n = min(nin - i0, nout - o0)
    if n > 0:
        w[np.arange(i0, i0 + n), np.arange(o0, o0 + n)] = 1.0
    return w


def _as_tuple(value: Any, n: int, what: str, where: str) -> tuple[int, ...]:
    t = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(t) != n or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in t):
        raise GraphError(f"{where}: {what} must be a positive int or {n} positive ints, got {value!r}")
    return tuple(int(v) for v in t)


def _check_nout(nout: object, where: str) -> None:
    if isinstance(nout, bool) or not isinstance(nout, (int, np.integer)) or nout < 1:
        raise GraphError(f"{where}: nout must be a positive int, got {nout!r}")


def _single_input(name: str, op: Op, in_shapes: tuple[Shape, ...]) -> Shape:
    if len(in_shapes) != 1:
        raise GraphError(f"vertex {name!r}: {type(op).__name__} takes exactly 1 input, got {len(in_shapes)}")
    return in_shapes[0]


def _resolve_padding(padding: Any, where: str, rank: int) -> Any:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise GraphError(f"{where}: padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
        return padding.upper()
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise GraphError(f"{where}: padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}") from None
    if rank and len(pads) != rank:
        raise GraphError(f"{where}: padding needs {rank} (lo, hi) pairs for {rank} spatial axes, got {padding!r}")
    return pads


def _explicit_pads(spatial: Shape, window: Shape, strides: Shape, dilation: Shape, padding: Any):
    effective = tuple((k - 1) * d + 1 for k, d in zip(window, dilation))
    if isinstance(padding, str):
        return tuple(jax.lax.padtype_to_pads(spatial, effective, strides, padding)), effective
    return padding, effective


def _window_output(spatial: Shape, window: Shape, strides: Shape, dilation: Shape, padding: Any, where: str):
    pads, effective = _explicit_pads(spatial, window, strides, dilation, padding)
    out = []
    for size, k, s, (lo, hi) in zip(spatial, effective, strides, pads):
        n = (size + lo + hi - k) // s + 1
        if n < 1:
            raise ShapeError(
                f"{where}: window {window} (dilated {effective}) with padding {padding!r} does not fit "
                f"the input's spatial shape {spatial}"
            )
        out.append(n)
    return tuple(out)


class Op:
    """Base class of every op. Subclasses are frozen dataclasses (register them with ``ng.graph.register_op`` for JSON).

    Example:
        >>> import naivega_jax as ng
        >>> isinstance(ng.Dense(3), ng.graph.Op), ng.Dense(3).trait
        (True, 'absorb')
    """

    trait: ClassVar[str] = INVARIANT
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    has_activation: ClassVar[bool] = False

    if TYPE_CHECKING:
        # Every concrete op is a dataclass: lets the type checker accept dataclasses.fields/replace on an Op.
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def resolve(self, name: str, in_shapes: tuple[Shape, ...]) -> Op:
        """The same op with every shorthand made explicit for these input shapes (e.g. ``kernel_size=3``)."""
        return self

    def output_shape(self, name: str, in_shapes: tuple[Shape, ...]) -> Shape:
        raise NotImplementedError

    def param_axes(self) -> Mapping[str, ParamAxes]:
        return {}

    def state_axes(self) -> Mapping[str, ParamAxes]:
        return {}

    def init(self, rng: np.random.Generator, in_shapes: tuple[Shape, ...], weight_init: Any = "default"):
        """Returns ``(params, state)`` as dicts of numpy float32 arrays."""
        return {}, {}

    def apply(self, params, state, xs, *, train: bool, key: jax.Array | None):
        """Returns ``(y, new_state)``; ``xs`` is a tuple with one batched array per input."""
        raise NotImplementedError

    def replace(self, **changes) -> Op:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Input(Op):
    """The op of an input vertex: feature shape without the batch axis. Build it with ``ng.input_vertex``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.input_vertex("in", shape=(8, 8, 3)).op
        Input(shape=(8, 8, 3))
    """

    shape: tuple[int, ...]
    trait: ClassVar[str] = IMMUTABLE
    min_inputs: ClassVar[int] = 0
    max_inputs: ClassVar[int | None] = 0

    def __post_init__(self):
        if (
            not isinstance(self.shape, tuple)
            or not self.shape
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in self.shape)
        ):
            raise GraphError(f"input shape must be a non-empty tuple of positive ints, got {self.shape!r}")

    def output_shape(self, name, in_shapes):
        return self.shape


@dataclasses.dataclass(frozen=True)
class Dense(Op):
    """Fully connected layer ``activation(x @ kernel + bias)`` on a vector input ``(C,)``.

    Params: ``kernel`` (nin, nout), ``bias`` (nout,).

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3, "relu"), inp))
        >>> g(jnp.ones((2, 5))).shape
        (2, 3)
    """

    nout: int
    activation: str = "identity"
    use_bias: bool = True
    trait: ClassVar[str] = ABSORB
    has_activation: ClassVar[bool] = True

    def __post_init__(self):
        _check_nout(self.nout, "Dense")
        check_activation(self.activation, "Dense")

    def output_shape(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        if len(shape) != 1:
            raise ShapeError(
                f"vertex {name!r}: Dense needs a vector input (C,), got feature shape {shape}; "
                "put a GlobalPool or Flatten vertex before it"
            )
        return (self.nout,)

    def param_axes(self):
        axes = {"kernel": ParamAxes(out=1, inp=0, new="fanin")}
        if self.use_bias:
            axes["bias"] = ParamAxes(out=0)
        return axes

    def init(self, rng, in_shapes, weight_init="default"):
        nin = in_shapes[0][-1]
        if weight_init == "default":
            kernel = rng.standard_normal((nin, self.nout)).astype(np.float32) / np.float32(math.sqrt(nin))
        elif weight_init == "zero":
            kernel = np.zeros((nin, self.nout), np.float32)
        else:
            kernel = _identity_matrix(nin, self.nout, weight_init)
        params = {"kernel": kernel}
        if self.use_bias:
            params["bias"] = np.zeros((self.nout,), np.float32)
        return params, {}

    def apply(self, params, state, xs, *, train, key):
        y = xs[0] @ params["kernel"]
        if self.use_bias:
            y = y + params["bias"]
        return activation(self.activation)(y), state


@dataclasses.dataclass(frozen=True)
class Conv(Op):
    """N-D convolution, channels-last; the rank comes from ``kernel_size`` (an int means every spatial axis).

    Params: ``kernel`` ``(*kernel_size, nin, nout)``, ``bias`` (nout,). ``padding``: ``"SAME"``, ``"VALID"`` or one
    ``(lo, hi)`` pair per spatial axis.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c", ng.Conv(4, (3, 3)), inp))
        >>> g(jnp.ones((2, 8, 8, 3))).shape
        (2, 8, 8, 4)
    """

    nout: int
    kernel_size: int | tuple[int, ...] = 3
    strides: int | tuple[int, ...] = 1
    dilation: int | tuple[int, ...] = 1
    padding: Any = "SAME"
    activation: str = "identity"
    use_bias: bool = True
    trait: ClassVar[str] = ABSORB
    has_activation: ClassVar[bool] = True

    def __post_init__(self):
        _check_nout(self.nout, "Conv")
        check_activation(self.activation, "Conv")
        for field in ("kernel_size", "strides", "dilation"):
            if isinstance(getattr(self, field), list):
                object.__setattr__(self, field, tuple(getattr(self, field)))
        if isinstance(self.padding, list):
            object.__setattr__(self, "padding", tuple(tuple(p) for p in self.padding))
        rank = len(self.kernel_size) if isinstance(self.kernel_size, tuple) else 0
        if rank:
            _as_tuple(self.kernel_size, rank, "kernel_size", "Conv")
        object.__setattr__(self, "padding", _resolve_padding(self.padding, "Conv", rank))

    @property
    def rank(self) -> int:
        return len(self.kernel_size) if isinstance(self.kernel_size, tuple) else 0

    def resolve(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        rank = self.rank or len(shape) - 1
        if rank < 1:
            raise ShapeError(
                f"vertex {name!r}: Conv needs an input with spatial axes (L, C) or (H, W, C), got feature shape {shape}"
            )
        where = f"vertex {name!r}: Conv"
        return dataclasses.replace(
            self,
            kernel_size=_as_tuple(self.kernel_size, rank, "kernel_size", where),
            strides=_as_tuple(self.strides, rank, "strides", where),
            dilation=_as_tuple(self.dilation, rank, "dilation", where),
            padding=_resolve_padding(self.padding, where, rank),
        )

    def output_shape(self, name, in_shapes):
        shape = _single_input(name, self, in_shapes)
        if len(shape) != self.rank + 1:
            raise ShapeError(
                f"vertex {name!r}: a {self.rank}-D Conv (kernel_size {self.kernel_size}) needs a feature map of rank "
                f"{self.rank + 1} (spatial axes then channels), got feature shape {shape}"
            )
        spatial = _window_output(
            shape[:-1], self.kernel_size, self.strides, self.dilation, self.padding, f"vertex {name!r}: Conv"
        )
        return (*spatial, self.nout)

    def param_axes(self):
        axes = {"kernel": ParamAxes(out=-1, inp=-2, new="fanin")}
        if self.use_bias:
            axes["bias"] = ParamAxes(out=0)
        return axes

    def init(self, rng, in_shapes, weight_init="default"):
        nin = in_shapes[0][-1]
        shape = (*self.kernel_size, nin, self.nout)
        if weight_init == "default":
            fan_in = nin * math.prod(self.kernel_size)
            kernel = rng.standard_normal(shape).astype(np.float32) / np.float32(math.sqrt(fan_in))
        else:
            kernel = np.zeros(shape, np.float32)
            if weight_init != "zero":
                # The tap SAME padding aligns with the output position: exact for every kernel when undilated.
                centre = tuple((k - 1) // 2 for k in self.kernel_size)
                kernel[centre] = _identity_matrix(nin, self.nout, weight_init)
        params = {"kernel": kernel}
        if self.use_bias:
            params["bias"] = np.zeros((self.nout,), np.float32)
        return params, {}

    def apply(self, params, state, xs, *, train, key):
        x = xs[0]
        spatial = "HWDXYZ"[: self.rank] if self.rank <= 3 else None
        if spatial is None:
            raise ShapeError(f"Conv of rank {self.rank} is not supported; use 1, 2 or 3 spatial axes")
        pads, _ = _explicit_pads(x.shape[1:-1], self.kernel_size, self.strides, self.dilation, self.padding)
        dn = jax.lax.conv_dimension_numbers(
            x.shape, params["kernel"].shape, ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
        )
        y = jax.lax.conv_general_dilated(
            x, params["kernel"], self.strides, pads, rhs_dilation=self.dilation, dimension_numbers=dn
        )
        if self.use_bias:
            y = y + params["bias"]
        return activation(self.activation)(y), state


@dataclasses.dataclass(frozen=True)
class BatchNorm(Op):
    """Batch normalisation over every axis but the channels, then an activation.

    Params ``scale``, ``bias``; state ``mean``, ``var`` (running statistics, updated in training mode with
    ``new = momentum * old + (1 - momentum) * batch``).

    Example:
        >>> import naivega_jax as ng
        >>> ng.BatchNorm("relu").momentum
        0.9
    """

    activation: str = "identity"
    momentum: float = 0.9
    epsilon: float = 1e-5
    has_activation: ClassVar[bool] = True

    def __post_init__(self):
        check_activation(self.activation, "BatchNorm")
        if not 0.0 <= self.momentum < 1.0:
            raise GraphError(f"BatchNorm: momentum must be in [0, 1), got {self.momentum!r}")
        if not self.epsilon > 0:
            raise GraphError(f"BatchNorm: epsilon must be > 0, got {self.epsilon!r}")

    def output_shape(self, name, in_shapes):
        return _single_input(name, self, in_shapes)

    def param_axes(self):
        return {"scale": ParamAxes(out=0, new=1.0), "bias": ParamAxes(out=0, new=0.0)}

    def state_axes(self):
        return {"mean": ParamAxes(out=0, new=0.0), "var": ParamAxes(out=0, new=1.0)}

    def init(self, rng, in_shapes, weight_init="default"):
        n = in_shapes[0][-1]
        ones, zeros = np.ones((n,), np.float32), np.zeros((n,), np.float32)
        return {"scale": ones, "bias": zeros}, {"mean": zeros.copy(), "var": ones.copy()}

    def apply(self, params, state, xs, *, train, key):
        x = xs[0]
        if train:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            m = self.momentum
            state = {"mean": m * state["mean"] + (1 - m) * mean, "var": m * state["var"] + (1 - m) * var}
        else:
            mean, var = state["mean"], state["var"]
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon) * params["scale"] + params["bias"]
        return activation(self.activation)(y), state
