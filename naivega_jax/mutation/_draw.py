"""Every random number a mutation draws on the host comes from here.

Tests replace these functions with fixed sequences (as upstream tests use a ``MockRng``), so modules call them as
``_draw.uniform(...)``. ``salts`` keep unrelated draws from the same key independent.
"""

from __future__ import annotations

from typing import Any

import jax

from .._random import host_rng


def uniform(key: jax.Array, size: int | None = None, *salts: str | int) -> Any:
    """``size`` draws of U[0, 1) from ``key`` (a float when ``size`` is None)."""
    return host_rng(key, "uniform", *salts).random(size)


def normal(key: jax.Array, size: int | None = None, *salts: str | int) -> Any:
    """``size`` standard-normal draws from ``key`` (a float when ``size`` is None)."""
    return host_rng(key, "normal", *salts).standard_normal(size)


def choose(key: jax.Array, n: int, *salts: str | int) -> int:
    """A uniform index in ``range(n)``, through ``uniform``."""
    return min(int(uniform(key, None, "choose", *salts) * n), n - 1)
