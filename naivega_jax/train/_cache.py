"""A cache of ahead-of-time compiled executables, with counters and measured compile times.

``jax.jit`` keeps its own cache, but it neither says what a call cost nor lets a long search evict what it no longer
needs (reference/performance.md: memory grows ~5 MB per compile). Here every compiled function is looked up by
``(name, static options, argument treedef, argument shapes and dtypes)``: the treedef carries the ``GraphSpec``, so
two graphs with equal specs, equal batch shapes and equal optimiser skeletons share one executable, and a
learning-rate change (traced optimiser state) compiles nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass
class CacheStats:
    """Counters of the compile cache since the process started (or since ``reset``)."""

    compiles: int = 0
    cache_hits: int = 0
    compile_seconds: float = 0.0
    evictions: int = 0

    def snapshot(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Lookup:
    """One lookup: the executable, whether it was compiled now, and the seconds that took."""

    compiled: Any
    hit: bool
    seconds: float


def _aval_key(leaf: Any) -> tuple:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        dtype = np.asarray(leaf).dtype
    return (tuple(np.shape(leaf)), str(dtype), bool(getattr(leaf, "weak_type", False)))


def _placement(leaves: list) -> tuple:
    """Where a call runs: the (thread-local) default device and the devices holding the array arguments. An
    executable is compiled for one device and refuses arguments committed to another (``ng.DeviceExecutor``)."""
    devices = {(d.platform, d.id) for leaf in leaves if isinstance(leaf, jax.Array) for d in leaf.devices()}
    return (jax.config.jax_default_device, tuple(sorted(devices)))


class CompileCache:
    """Least-recently-used map from call signatures to compiled executables."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, jitted: Callable, static: dict[str, Hashable], args: tuple) -> Lookup:
        """The executable of ``jitted(*args, **static)``, compiled ahead of time on a miss."""
        leaves, treedef = jax.tree_util.tree_flatten(args)
        key = (
            name,
            tuple(sorted(static.items())),
            treedef,
            tuple(_aval_key(leaf) for leaf in leaves),
            _placement(leaves),
        )
        with self._lock:
            compiled = self._entries.get(key)
            if compiled is not None:
                self._entries.move_to_end(key)
                self.stats.cache_hits += 1
                return Lookup(compiled, True, 0.0)
        t0 = time.perf_counter()
        compiled = jitted.lower(*args, **static).compile()
        seconds = time.perf_counter() - t0
        with self._lock:
            self._entries[key] = compiled
            self.stats.compiles += 1
            self.stats.compile_seconds += seconds
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1
        return Lookup(compiled, False, seconds)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = CompileCache()


def engine_stats() -> dict[str, float]:
    """The training engine's counters since the process started: compiles, cache hits, total compile seconds,
    evictions, and the number of executables held now.

    Example:
        >>> import naivega_jax as ng
        >>> sorted(ng.engine_stats())
        ['cache_hits', 'compile_seconds', 'compiles', 'entries', 'evictions']
    """
    return {**CACHE.stats.snapshot(), "entries": len(CACHE)}


def clear_compile_cache(*, max_entries: int | None = None, jax_caches: bool = True) -> None:
    """Drops every compiled executable the engine holds (and, by default, JAX's own caches: tracing caches grow
    with every new spec). ``max_entries`` changes how many executables the engine keeps (least recently used
    ones are evicted first; default 64).

    Example:
        >>> import naivega_jax as ng
        >>> ng.clear_compile_cache(max_entries=32)
        >>> ng.engine_stats()["entries"]
        0
    """
    if max_entries is not None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"clear_compile_cache: max_entries must be a positive int, got {max_entries!r}")
        CACHE.max_entries = max_entries
    CACHE.clear()
    if jax_caches:
        jax.clear_caches()
