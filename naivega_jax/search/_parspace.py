"""Parameter spaces: what a search space draws a single hyperparameter (a size, a kernel, an activation) from.

A parameter space is called with a key, ``space(key) -> value``; spaces that compose them call ``space.sample(rng)``
with a host generator (anything with numpy's ``integers(n)``), so a whole architecture is drawn from one stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .._random import host_rng


def draw_index(rng: Any, n: int) -> int:
    """A uniform index in ``range(n)`` from a host generator (numpy ``Generator`` or a test stand-in)."""
    return int(rng.integers(n))


class AbstractParSpace:
    """Base class of parameter spaces: ``space(key)`` draws a value (an ``ndims``-tuple when ``ndims > 1``).

    Subclasses implement ``sample(rng)`` (``rng`` has numpy's ``integers(n)``) and ``ndims``; ``choices()`` (the
    values each dimension can take) lets layer spaces validate their arguments at construction.

    Example:
        >>> import naivega_jax as ng
        >>> isinstance(ng.ParSpace([1, 2]), ng.search.AbstractParSpace)
        True
    """

    @property
    def ndims(self) -> int:
        raise NotImplementedError

    def sample(self, rng: Any) -> Any:
        raise NotImplementedError

    def choices(self) -> tuple[tuple[Any, ...], ...] | None:
        """The values each dimension can take, or None when unknown."""
        return None

    def __call__(self, key: jax.Array) -> Any:
        return self.sample(host_rng(key, "parspace"))


def _sequence_of_values(values: Any, what: str) -> tuple[Any, ...]:
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)):
        raise TypeError(f"{what}: expected a non-empty sequence of values, got {values!r}")
    t = tuple(values)
    if not t:
        raise ValueError(f"{what}: expected a non-empty sequence of values, got an empty {type(values).__name__}")
    return t


@dataclasses.dataclass(frozen=True, init=False)
class SingletonParSpace(AbstractParSpace):
    """A space with exactly one value per dimension: ``SingletonParSpace(3)() -> 3``, ``(1, 2)() -> (1, 2)``.

    Drawing consumes no randomness.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.search.SingletonParSpace(1, 2, 3)(jax.random.key(0))
        (1, 2, 3)
        >>> ng.search.SingletonParSpace("relu")(jax.random.key(0))
        'relu'
    """

    values: tuple[Any, ...]

    def __init__(self, *values: Any):
        if not values:
            raise ValueError("SingletonParSpace: expected at least one value, got none")
        object.__setattr__(self, "values", tuple(values))

    @property
    def ndims(self) -> int:
        return len(self.values)

    def sample(self, rng: Any) -> Any:
        return self.values[0] if len(self.values) == 1 else self.values

    def choices(self):
        return tuple((v,) for v in self.values)


def Singleton2DParSpace(value: Any) -> SingletonParSpace:
    """A 2-D singleton space ``(value, value)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.search.Singleton2DParSpace(7)(jax.random.key(0))
        (7, 7)
    """
    return SingletonParSpace(value, value)


@dataclasses.dataclass(frozen=True, init=False)
class ParSpace(AbstractParSpace):
    """Draws each dimension independently and uniformly from its own sequence of values.

    ``ParSpace(values)`` is 1-D and draws one value; ``ParSpace((1, 2, 3), (4, 5))`` is 2-D and draws a tuple such
    as ``(3, 4)``. Every dimension needs a non-empty sequence (a list, tuple or range).

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.ParSpace(range(3, 11))(jax.random.key(0)) in range(3, 11)
        True
        >>> a, b = ng.ParSpace((1, 2, 3), (4, 5))(jax.random.key(1))
        >>> a in (1, 2, 3) and b in (4, 5)
        True
    """

    dims: tuple[tuple[Any, ...], ...]

    def __init__(self, *dims: Sequence[Any]):
        if not dims:
            raise ValueError("ParSpace: expected at least one sequence of values, got none")
        object.__setattr__(self, "dims", tuple(_sequence_of_values(d, "ParSpace") for d in dims))

    @property
    def ndims(self) -> int:
        return len(self.dims)

    def sample(self, rng: Any) -> Any:
        drawn = tuple(d[draw_index(rng, len(d))] for d in self.dims)
        return drawn[0] if len(drawn) == 1 else drawn

    def choices(self):
        return self.dims


def ParSpace1D(*values: Any) -> ParSpace:
    """A 1-D ``ParSpace`` of the given values.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.search.ParSpace1D("relu", "elu")(jax.random.key(0)) in ("relu", "elu")
        True
    """
    return ParSpace(values)


def ParSpace2D(values: Sequence[Any]) -> ParSpace:
    """A 2-D ``ParSpace`` drawing both dimensions independently from ``values`` (so kernels may be non-square).

    Example:
        >>> import jax, naivega_jax as ng
        >>> h, w = ng.search.ParSpace2D([1, 3, 5])(jax.random.key(0))
        >>> h in (1, 3, 5) and w in (1, 3, 5)
        True
    """
    return ParSpace(values, values)


@dataclasses.dataclass(frozen=True, init=False)
class CoupledParSpace(AbstractParSpace):
    """Draws one value and repeats it ``n`` times (square kernels: ``CoupledParSpace([1, 3, 5], 2)``).

    ``values`` is a sequence or a 1-D parameter space.

    Example:
        >>> import jax, naivega_jax as ng
        >>> h, w = ng.search.CoupledParSpace([1, 3, 5], 2)(jax.random.key(0))
        >>> h == w
        True
    """

    space: AbstractParSpace
    n: int

    def __init__(self, values: Any, n: int):
        space = values if isinstance(values, AbstractParSpace) else ParSpace(values)
        if space.ndims != 1:
            raise ValueError(
                f"CoupledParSpace: values must be a sequence or a 1-D space, got {space.ndims}-D {space!r}"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"CoupledParSpace: n must be a positive int, got {n!r}")
        object.__setattr__(self, "space", space)
        object.__setattr__(self, "n", n)

    @property
    def ndims(self) -> int:
        return self.n

    def sample(self, rng: Any) -> Any:
        value = self.space.sample(rng)
        return value if self.n == 1 else (value,) * self.n

    def choices(self):
        inner = self.space.choices()
        return None if inner is None else inner * self.n


def parspace_of(x: Any, what: str = "value") -> AbstractParSpace:
    """A 1-D parameter space from a value (a singleton), a sequence (uniform choice) or a space (itself).

    Strings and tuples given as a single value are singletons only when not a sequence of choices: a ``str`` is a
    value, a list/tuple/range is a sequence of choices.
    """
    if isinstance(x, AbstractParSpace):
        return x
    if isinstance(x, (list, tuple, range)) or (isinstance(x, np.ndarray) and x.ndim == 1):
        return ParSpace(_sequence_of_values(x, what))
    return SingletonParSpace(x)


def widen(space: AbstractParSpace, n: int, what: str = "value") -> AbstractParSpace:
    """``space`` as an ``n``-D space: a 1-D space of ``n``-tuples is kept, other 1-D spaces draw per dimension."""
    if space.ndims == n:
        return space
    if space.ndims == 1:
        choices = space.choices()
        if choices is not None and all(isinstance(v, tuple) and len(v) == n for v in choices[0]):
            return space
        if isinstance(space, SingletonParSpace):
            return SingletonParSpace(*(space.values * n))
        if isinstance(space, ParSpace):
            return ParSpace(*(space.dims * n))
        if isinstance(space, CoupledParSpace):
            return CoupledParSpace(space.space, n)
    raise ValueError(f"{what}: expected a 1-D or {n}-D parameter space, got {space.ndims}-D {space!r}")


def draw_tuple(space: AbstractParSpace, rng: Any, n: int, what: str) -> tuple[Any, ...]:
    """Draws an ``n``-tuple from ``space`` widened to ``n`` dimensions."""
    value = widen(space, n, what).sample(rng)
    return value if isinstance(value, tuple) else (value,)


def flat_choices(space: AbstractParSpace) -> list[Any] | None:
    """Every scalar value the space can produce (tuple values flattened), or None when unknown."""
    choices = space.choices()
    if choices is None:
        return None
    out: list[Any] = []
    for dim in choices:
        for v in dim:
            out.extend(v if isinstance(v, tuple) else (v,))
    return out
