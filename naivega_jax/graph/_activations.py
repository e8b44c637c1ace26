"""Activation functions by name, so ops stay hashable and serialisable."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._errors import GraphError

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """``jax.nn.elu`` through ``exp(x) - 1`` instead of ``expm1``: XLA:CPU's older fusion emitters (the engine's full
    tier) compile ``expm1`` to scalar code, ~6x slower than this for a layer's forward and backward pass (within 2e-7
    of ``jax.nn.elu``: the absolute error of ``exp(x) - 1`` near 0). The gradient at 0 is ``alpha``, as
    ``jax.nn.elu``'s."""
    negative = jnp.where(x > 0, 0.0, x)
    return jnp.where(x > 0, x, alpha * (jnp.exp(negative) - 1.0))


def _selu(x: jax.Array) -> jax.Array:
    """``jax.nn.selu`` (``scale * elu(x, alpha)``) through ``_elu``."""
    return _SELU_SCALE * _elu(x, _SELU_ALPHA)


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x,
    "relu": jax.nn.relu,
    "elu": _elu,
    "selu": _selu,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
    "softplus": jax.nn.softplus,
    "relu6": jax.nn.relu6,
    "hard_tanh": jax.nn.hard_tanh,
}


def register_activation(name: str, fn: Callable[[jax.Array], jax.Array], *, overwrite: bool = False) -> None:
    """Makes ``fn`` available to every op under ``name``.

    Graphs that use it can only be loaded in processes that register it too.

    Example:
        >>> import jax.numpy as jnp, naivega_jax as ng
        >>> ng.graph.register_activation("square", jnp.square, overwrite=True)
        >>> float(ng.graph.activation("square")(jnp.array(3.0)))
        9.0
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_activation: name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"register_activation: fn for {name!r} must be callable, got {fn!r}")
    if name in _ACTIVATIONS and not overwrite:
        raise GraphError(f"register_activation: {name!r} is already registered; pass overwrite=True to replace it")
    _ACTIVATIONS[name] = fn


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation function registered as ``name``.

    Example:
        >>> import jax.numpy as jnp, naivega_jax as ng
        >>> ng.graph.activation("relu")(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise GraphError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)} "
            "or a name added with ng.graph.register_activation"
        ) from None


def activation_names() -> tuple[str, ...]:
    """The names of every registered activation, sorted.

    Example:
        >>> import naivega_jax as ng
        >>> "relu" in ng.graph.activation_names()
        True
    """
    return tuple(sorted(_ACTIVATIONS))


def check_activation(name: object, where: str) -> None:
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise GraphError(
            f"{where}: unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)} "
            "or a name added with ng.graph.register_activation"
        )
