"""Host-side randomness derived from explicit JAX keys.

Structural choices and parameter initialisation happen on the host in numpy (initialising with jax ops compiles a
kernel per new shape: ~10x slower on CPU). The numpy generator is seeded from the JAX
key's bits plus salts, so the same key always gives the same numbers and nothing reads a global RNG.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np


def key_bits(key: jax.Array) -> tuple[int, ...]:
    """The raw bits of a typed or legacy uint32 JAX key, as Python ints."""
    if not isinstance(key, jax.Array) and not isinstance(key, np.ndarray):
        raise TypeError(f"key must be a jax.random key (jax.random.key(seed)), got {type(key).__name__}: {key!r}")
    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    if data.dtype != np.uint32 or data.ndim != 1:
        raise TypeError(f"key must be a single jax.random key, got an array of dtype {data.dtype} shape {data.shape}")
    return tuple(int(v) for v in np.asarray(data))


def salt(value: str | int) -> int:
    """A stable 32-bit salt for a name (crc32, unlike hash() it does not change between processes)."""
    if isinstance(value, str):
        return zlib.crc32(value.encode())
    return int(value) & 0xFFFFFFFF


def host_rng(key: jax.Array, *salts: str | int) -> np.random.Generator:
    """A numpy Generator determined by ``key`` and the salts (names stay stable when other vertices change)."""
    return np.random.default_rng([*key_bits(key), *(salt(s) for s in salts)])
