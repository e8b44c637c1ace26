"""Activation functions by name, so ops stay hashable and serialisable."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._errors import GraphError

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
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
        >>> ng.register_activation("square", jnp.square, overwrite=True)
        >>> float(ng.activation("square")(jnp.array(3.0)))
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
        >>> ng.activation("relu")(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise GraphError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)} "
            "or a name added with ng.register_activation"
        ) from None


def activation_names() -> tuple[str, ...]:
    """The names of every registered activation, sorted.

    Example:
        >>> import naivega_jax as ng
        >>> "relu" in ng.activation_names()
        True
    """
    return tuple(sorted(_ACTIVATIONS))


def check_activation(name: object, where: str) -> None:
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise GraphError(
            f"{where}: unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)} "
            "or a name added with ng.register_activation"
        )
