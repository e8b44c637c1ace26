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

from ._xla_cache import ensure_default_compilation_cache


@dataclasses.dataclass
class CacheStats:
    """Counters of the compile cache since the process started (or since ``reset``)."""

    compiles: int = 0
    cache_hits: int = 0
    compile_seconds: float = 0.0
    disk_hits: int = 0
    evictions: int = 0
    jax_cache_clears: int = 0

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


#: XLA options for the engine's compiles, per platform (a switch for benchmarks and tests). On XLA:CPU the newer
#: "fusion emitters" generate each fused loop through its own MLIR pipeline; the older emitters take ~25% less
#: compile CPU for the search's train steps, which then run 4-9% slower (benchmarks/RESULTS.md): a net gain while
#: compiling dominates a search.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_cpu_use_fusion_emitters": False}}
_REJECTED: set[str] = set()


_DISK = threading.local()


def _on_event(event: str, **_: Any) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _DISK.hits = getattr(_DISK, "hits", 0) + 1


jax.monitoring.register_event_listener(_on_event)


def _platform(leaves: list) -> str:
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            return next(iter(leaf.devices())).platform
    device = jax.config.jax_default_device
    if device is not None and not isinstance(device, str):
        return device.platform
    return jax.default_backend()


def _compile(jitted: Callable, static: dict, args: tuple, platform: str) -> Any:
    """``jitted.lower(...).compile(...)`` with this platform's ``COMPILER_OPTIONS``; options an XLA build does
    not know are dropped (once, for the rest of the process)."""
    lowered = jitted.lower(*args, **static)
    options = COMPILER_OPTIONS.get(platform)
    if options and platform not in _REJECTED:
        try:
            return lowered.compile(compiler_options=dict(options))
        except Exception as error:  # jax raises JaxRuntimeError (INVALID_ARGUMENT) for an unknown option
            if "option" not in str(error).lower():
                raise
            _REJECTED.add(platform)
    return lowered.compile()


def _placement(leaves: list) -> tuple:
    """Where a call runs: the (thread-local) default device and the devices holding the array arguments. An
    executable is compiled for one device and refuses arguments committed to another (``ng.DeviceExecutor``)."""
    devices = {(d.platform, d.id) for leaf in leaves if isinstance(leaf, jax.Array) for d in leaf.devices()}
    return (jax.config.jax_default_device, tuple(sorted(devices)))


class CompileCache:
    """Least-recently-used map from call signatures to compiled executables.

    Evicting an executable is not enough to keep memory flat: JAX's own tracing and lowering caches keep ~4 MB per
    compiled spec (measured: RSS +40 MB per 10 new specs with 8 executables held; flat with ``jax.clear_caches()``
    every 20 compiles). So every ``clear_jax_every`` compiles JAX's caches are cleared too; the executables held
    here survive that.
    """

    def __init__(self, max_entries: int = 64, clear_jax_every: int = 32):
        self.max_entries = max_entries
        self.clear_jax_every = clear_jax_every
        self._since_clear = 0
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, jitted: Callable, static: dict[str, Hashable], args: tuple) -> Lookup:
        """The executable of ``jitted(*args, **static)``, compiled ahead of time on a miss."""
        leaves, treedef = jax.tree_util.tree_flatten(args)
        platform = _platform(leaves)
        key = (
            name,
            tuple(sorted(static.items())),
            treedef,
            tuple(_aval_key(leaf) for leaf in leaves),
            _placement(leaves),
            tuple(sorted(COMPILER_OPTIONS.get(platform, {}).items())),
        )
        with self._lock:
            compiled = self._entries.get(key)
            if compiled is not None:
                self._entries.move_to_end(key)
                self.stats.cache_hits += 1
                return Lookup(compiled, True, 0.0)
        ensure_default_compilation_cache()
        disk_before = getattr(_DISK, "hits", 0)
        t0 = time.perf_counter()
        compiled = _compile(jitted, static, args, platform)
        seconds = time.perf_counter() - t0
        with self._lock:
            self._entries[key] = compiled
            self.stats.compiles += 1
            self.stats.compile_seconds += seconds
            self.stats.disk_hits += getattr(_DISK, "hits", 0) > disk_before
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1
            self._since_clear += 1
            clear = self._since_clear >= self.clear_jax_every
            if clear:
                self._since_clear = 0
                self.stats.jax_cache_clears += 1
        if clear:
            jax.clear_caches()
        return Lookup(compiled, False, seconds)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = CompileCache()


def engine_stats() -> dict[str, float]:
    """The training engine's counters since the process started: compiles (executables the engine did not hold;
    ``disk_hits`` of them came from the persistent compilation cache), cache hits, total compile seconds,
    evictions, clears of JAX's caches, and the number of executables held now.

    Example:
        >>> import naivega_jax as ng
        >>> sorted(ng.engine_stats())
        ['cache_hits', 'compile_seconds', 'compiles', 'disk_hits', 'entries', 'evictions', 'jax_cache_clears']
    """
    return {**CACHE.stats.snapshot(), "entries": len(CACHE)}


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"clear_compile_cache: {name} must be a positive int, got {value!r}")
    return value


def clear_compile_cache(
    *, max_entries: int | None = None, clear_jax_every: int | None = None, jax_caches: bool = True
) -> None:
    """Drops every compiled executable the engine holds (and, by default, JAX's own caches).

    ``max_entries`` changes how many executables the engine keeps (least recently used ones are evicted first;
    default 64); ``clear_jax_every`` how many compiles pass between automatic clears of JAX's tracing caches
    (default 32; they grow ~4 MB per new spec otherwise).

    Example:
        >>> import naivega_jax as ng
        >>> ng.clear_compile_cache(max_entries=32)
        >>> ng.engine_stats()["entries"]
        0
    """
    if max_entries is not None:
        CACHE.max_entries = _positive(max_entries, "max_entries")
    if clear_jax_every is not None:
        CACHE.clear_jax_every = _positive(clear_jax_every, "clear_jax_every")
    CACHE.clear()
    if jax_caches:
        jax.clear_caches()
