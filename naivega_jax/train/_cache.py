"""A cache of ahead-of-time compiled executables, with counters and measured compile times.

``jax.jit`` keeps its own cache, but it neither says what a call cost nor lets a long search evict what it no longer
needs. Here every compiled function is looked up by
``(name, static options, argument treedef, argument shapes and dtypes)``: the treedef carries the ``GraphSpec``, so
two graphs with equal specs, equal batch shapes and equal optimiser skeletons share one executable, and a
learning-rate change (traced optimiser state) compiles nothing.

What a long search holds here, and the bound on each (benchmarks/bench_memory.py, benchmarks/RESULTS.md "Memory of a
long search"): the executables (``max_entries``, ~4 MB resident each for the search's train steps on XLA:CPU); JAX's
own tracing and lowering caches (cleared every ``clear_jax_every`` compiles, unless a host program turns that off with
``set_jax_cache_clearing``); and the C heap's freed pages, which glibc keeps resident after XLA's compiles free them
unless asked to give them back (``release_free_heap`` after every compile).
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass
class CacheStats:
    """Counters of the compile cache since the process started (or since ``reset``)."""

    compiles: int = 0
    fast_compiles: int = 0
    cache_hits: int = 0
    compile_seconds: float = 0.0
    background_compiles: int = 0
    background_compile_seconds: float = 0.0
    disk_hits: int = 0
    evictions: int = 0
    jax_cache_clears: int = 0
    heap_releases: int = 0

    def snapshot(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CompileRecord:
    """One compile: its seconds, whether at the fast tier, whether XLA read it from the persistent compilation
    cache, and whether it was made ahead of need (``background=True``)."""

    seconds: float
    fast: bool
    disk_hit: bool
    background: bool


@dataclasses.dataclass
class Lookup:
    """One lookup: the executable, whether it was compiled now, and the seconds that took (waiting included).

    ``compile`` is the compile this lookup accounts for: its own on a miss; on a caller's first hit of an executable
    compiled ahead of need, that compile (each counted once, for the call that uses it); otherwise None.
    """

    compiled: Any
    hit: bool
    seconds: float
    compile: CompileRecord | None = None


def _aval_key(leaf: Any) -> tuple:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        dtype = np.asarray(leaf).dtype
    return (tuple(np.shape(leaf)), str(dtype), bool(getattr(leaf, "weak_type", False)))


#: XLA options for the engine's compiles, per platform (a switch for benchmarks and tests). On XLA:CPU the newer "fusion
#: emitters" generate each fused loop through its own MLIR pipeline: the older emitters take ~35% less compile CPU for
#: the search's train steps, which then run 10-25% slower: a fusion that writes into a dying operand's buffer keeps
#: LLVM's runtime overlap check, which fails, and runs as a scalar loop (RESULTS.md, "in-place fusions"). On 2 cores the
#: search is compile-bound, so it keeps these (benchmarks/studies/bench_tier_policy.py: the max tier everywhere took
#: ~1.45x the wall time). LLVM at optimisation level 1 instead of XLA's default 3 takes another ~20% off the compile and
#: leaves the steps as fast or 5% faster (benchmarks/RESULTS.md, "Compile options"): less unrolling and vectorising of
#: loops that the search's small layers do not fill.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {
    "cpu": {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}
}

#: Compile tiers: ``"full"`` compiles with ``COMPILER_OPTIONS``; ``"fast"`` adds ``FAST_COMPILER_OPTIONS`` on top;
#: ``"max"`` compiles with ``MAX_COMPILER_OPTIONS`` instead. On XLA:CPU the backend's optimisation level 0 compiles the
#: search's train steps ~2.5x faster and runs them ~3x slower (benchmarks/studies/bench_tiers.py): the engine picks it
#: for calls too short to earn back a full compile, and for inference on a few batches; XLA's newer fusion emitters (at
#: LLVM level 1, which compiled ~15% faster than XLA's default level with steps as fast) compile slower and step faster,
#: which pays only for long calls. Platforms without entries compile every tier alike (one executable).
FAST_COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_backend_optimization_level": 0}}
MAX_COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_backend_optimization_level": 1}}
TIERS = ("fast", "full", "max")


@dataclasses.dataclass(frozen=True)
class TierModel:
    """The cost model behind ``compile_tier="auto"`` on one platform, relative to the ``"full"`` tier: per byte a
    step accesses (XLA's cost analysis), the seconds a fast-tier step takes longer and a max-tier step takes less;
    per line of the lowered program, the seconds a fast-tier compile saves and a max-tier compile adds."""

    fast_step_per_byte: float
    fast_compile_per_line: float
    max_step_per_byte: float
    max_compile_per_line: float


#: Medians over 24 rows (6 graphs of the search's space x batch sizes 16, 32, 64, 128; XLA:CPU, 2 cores) of
#: benchmarks/studies/bench_tiers.py: a fast-tier step takes 0.035-0.13 ns longer per byte it accesses and its compile
#: saves 0.29-0.68 ms per line of the lowered program; a max-tier step takes -0.001-0.009 ns less per byte (median
#: 0.905x the full tier's time) and its compile 0.24-0.72 ms more per line (median 1.72x).
TIER_MODEL: dict[str, TierModel] = {"cpu": TierModel(0.083e-9, 0.46e-3, 0.0033e-9, 0.54e-3)}


def choose_tier(cost: dict[str, float], steps: int, platform: str) -> str:
    """The tier that compiles and runs a program of this ``cost`` ``steps`` times soonest, by ``TIER_MODEL``.

    Example:
        >>> from naivega_jax.train._cache import choose_tier
        >>> cost = {"bytes": 5e7, "lines": 2500.0, "flops": 1e8}
        >>> [choose_tier(cost, n, "cpu") for n in (56, 560, 10**6)], choose_tier(cost, 56, "gpu")
        (['fast', 'full', 'max'], 'full')
    """
    model = TIER_MODEL.get(platform)
    if model is None:
        return "full"
    extra = {"full": 0.0}  # seconds relative to the full tier
    tiers = distinct_tiers(platform)
    if "fast" in tiers:
        extra["fast"] = steps * model.fast_step_per_byte * cost["bytes"] - model.fast_compile_per_line * cost["lines"]
    if "max" in tiers:
        extra["max"] = model.max_compile_per_line * cost["lines"] - steps * model.max_step_per_byte * cost["bytes"]
    return min(extra, key=lambda tier: (extra[tier], TIERS.index(tier) != 1))


def distinct_tiers(platform: str) -> tuple[str, ...]:
    """The tiers whose options differ from the full tier's on ``platform``, and ``"full"``: one tier where all are
    alike (then no program needs its cost analysed)."""
    full = tier_options(platform, "full")
    return tuple(t for t in TIERS if t == "full" or tier_options(platform, t) != full)


def tier_options(platform: str, tier: str) -> dict[str, Any]:
    """The XLA compile options of ``tier`` (``"fast"``, ``"full"`` or ``"max"``) on ``platform``."""
    if tier not in TIERS:
        raise ValueError(f"compile tier must be one of {TIERS}, got {tier!r}")
    if tier == "max":
        return dict(MAX_COMPILER_OPTIONS.get(platform, COMPILER_OPTIONS.get(platform, {})))
    options = dict(COMPILER_OPTIONS.get(platform, {}))
    if tier == "fast":
        options.update(FAST_COMPILER_OPTIONS.get(platform, {}))
    return options


_REJECTED: set[str] = set()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError, TypeError):  # no glibc (musl, macOS, Windows): nothing to call
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_heap() -> bool:
    """Gives the C heap's free pages back to the operating system (glibc's ``malloc_trim(0)``); True if any went.

    XLA's compiles allocate hundreds of MB in short bursts, in whichever of glibc's per-thread arenas (up to 8 per
    core) the compiling thread has. Freed, that memory stays resident: glibc returns a heap's pages by itself only
    from its top, and one live block above them pins them. A search that compiles thousands of programs then looks
    like it leaks (benchmarks/bench_memory.py: 984 MB after generation 10, 1343 MB after 63, of which 529 MB free
    heap). ``malloc_trim(0)`` walks every arena and returns each free page to the system, ~10-20 ms for a 1 GB heap.
    It changes no allocator setting (unlike ``MALLOC_ARENA_MAX`` or ``mallopt``); later allocations fault pages back
    in. A no-op (False) where the C library has no ``malloc_trim``.

    Example:
        >>> from naivega_jax.train._cache import release_free_heap
        >>> release_free_heap() in (True, False)
        True
    """
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


_DISK = threading.local()


def _on_event(event: str, **_: Any) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _DISK.hits = getattr(_DISK, "hits", 0) + 1


jax.monitoring.register_event_listener(_on_event)


def _platform(leaves: list) -> str:
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            return next(iter(leaf.devices())).platform
    device = jax.config.jax_default_device  # type: ignore[attr-defined]  # jax's Config declares its options at run time
    if device is not None and not isinstance(device, str):
        return device.platform
    return jax.default_backend()


def _compile(lowered: Any, platform: str, options: dict[str, Any]) -> Any:
    """``lowered.compile(...)`` with ``options``; options an XLA build does not know are dropped (once, for the
    rest of the process)."""
    if options and platform not in _REJECTED:
        try:
            return lowered.compile(compiler_options=dict(options))
        except Exception as error:  # jax raises JaxRuntimeError (INVALID_ARGUMENT) for an unknown option
            if "option" not in str(error).lower():
                raise
            _REJECTED.add(platform)
    return lowered.compile()


def _cost(lowered: Any) -> dict[str, float]:
    """What the tier choice looks at: XLA's cost analysis of the unoptimised program and its size in HLO lines."""
    try:
        analysis = lowered.cost_analysis() or {}
    except Exception:  # a backend without cost analysis: the size alone
        analysis = {}
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return {
        "flops": float(analysis.get("flops", 0.0)),
        "bytes": float(analysis.get("bytes accessed", 0.0)),
        "lines": float(lowered.as_text().count("\n")),
    }


def _placement(leaves: list) -> tuple:
    """Where a call runs: the (thread-local) default device and the devices holding the array arguments. An
    executable is compiled for one device and refuses arguments committed to another
    (``ng.distributed.DeviceExecutor``)."""
    devices = {(d.platform, d.id) for leaf in leaves if isinstance(leaf, jax.Array) for d in leaf.devices()}
    return (jax.config.jax_default_device, tuple(sorted(devices)))  # type: ignore[attr-defined]  # jax's Config declares its options at run time


class CompileCache:
    """Least-recently-used map from call signatures to compiled executables.

    Evicting an executable is not enough to keep memory flat. JAX's own tracing and lowering caches keep what every
    compile traced (~1.5 MB a search's train step; tens of thousands of Python objects), so every
    ``clear_jax_every`` compiles JAX's caches are cleared too; the executables held here survive that. A clear costs
    the search ~2 s: JAX's dispatch recompiles its eager operations (key splits, conversions) afterwards, which is
    why it is not done after every compile. ``jax.clear_caches`` is process-wide: it empties the caches of the host
    program's own jitted functions too, so ``clear_jax=False`` (``ng.train.set_jax_cache_clearing``) turns it off. And
    the memory that compiles free stays resident in the C heap unless given back: with ``release_heap`` (default) the
    compiling thread calls ``release_free_heap`` after every compile.
    """

    def __init__(
        self, max_entries: int = 64, clear_jax_every: int = 32, release_heap: bool = True, clear_jax: bool = True
    ):
        self.max_entries = max_entries
        self.clear_jax_every = clear_jax_every
        self.clear_jax = clear_jax
        self.release_heap = release_heap
        self._since_clear = 0
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._costs: collections.OrderedDict[Hashable, dict[str, float]] = collections.OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._ahead: dict[Hashable, CompileRecord] = {}  # compiled ahead of need, not yet used by a caller
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        name: str,
        jitted: jax.stages.Wrapped,
        static: dict[str, Hashable],
        args: tuple,
        tier: str | Callable[[dict[str, float], str], str] = "full",
        *,
        background: bool = False,
    ) -> Lookup:
        """The executable of ``jitted(*args, **static)`` compiled at ``tier``, compiled ahead of time on a miss.

        ``tier`` is ``"fast"``, ``"full"``, ``"max"``, or a function of the lowered program's cost (``flops``,
        ``bytes`` from XLA's cost analysis, ``lines`` of HLO text) and the platform that returns one of them; the cost
        is computed once per signature and remembered, so the choice is a pure function of the program (same inputs,
        same tier, same numbers).

        Thread-safe: a caller asking for an executable that another thread is compiling waits for it instead of
        compiling it again. ``background=True`` marks a compile made ahead of need (``precompile_training``): it is
        counted in ``background_compiles``/``background_compile_seconds`` instead of ``compile_seconds`` (the time
        training waited for compilers) and ``cache_hits``.
        """
        leaves, treedef = jax.tree_util.tree_flatten(args)
        platform = _platform(leaves)
        signature = (
            name,
            tuple(sorted(static.items())),
            treedef,
            tuple(_aval_key(leaf) for leaf in leaves),
            _placement(leaves),
        )
        lowered, seconds = None, 0.0
        if callable(tier):
            if distinct_tiers(platform) == ("full",):
                tier = "full"
            else:
                with self._lock:
                    cost = self._costs.get(signature)
                if cost is None:
                    t0 = time.perf_counter()
                    lowered = jitted.lower(*args, **static)
                    cost = _cost(lowered)
                    seconds += time.perf_counter() - t0
                    with self._lock:
                        self._costs[signature] = cost
                        while len(self._costs) > 4 * self.max_entries:
                            self._costs.popitem(last=False)
                tier = tier(cost, platform)
        options = tier_options(platform, tier)
        key = (*signature, tuple(sorted(options.items())) if platform not in _REJECTED else ())
        while True:
            with self._lock:
                compiled = self._entries.get(key)
                if compiled is not None:
                    self._entries.move_to_end(key)
                    if background:
                        self.stats.background_compile_seconds += seconds
                        return Lookup(compiled, True, seconds)
                    self.stats.cache_hits += 1
                    self.stats.compile_seconds += seconds
                    return Lookup(compiled, True, seconds, self._ahead.pop(key, None))
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    break
            t0 = time.perf_counter()  # another thread compiles it: wait, then take it from the cache
            pending.wait()
            seconds += time.perf_counter() - t0
        disk_before = getattr(_DISK, "hits", 0)
        record = None
        try:
            t0 = time.perf_counter()
            compiled = _compile(lowered or jitted.lower(*args, **static), platform, options)
            seconds += time.perf_counter() - t0
        finally:
            with self._lock:
                done = self._pending.pop(key)
                if compiled is not None:
                    fast = tier == "fast" and "fast" in distinct_tiers(platform)
                    record = CompileRecord(seconds, fast, getattr(_DISK, "hits", 0) > disk_before, background)
                    self._store(key, compiled, fast)
                    self.stats.disk_hits += record.disk_hit
                    if background:
                        self._ahead[key] = record
                        self.stats.background_compiles += 1
                        self.stats.background_compile_seconds += seconds
                    else:
                        self.stats.compile_seconds += seconds
                clear = self.clear_jax and self._since_clear >= self.clear_jax_every and not self._pending
                if clear:
                    self._since_clear = 0
                    self.stats.jax_cache_clears += 1
            done.set()
        if clear:
            jax.clear_caches()
        if self.release_heap:
            # after the compile (and the clear): what they freed is free now, the executable's own pages are kept
            release_free_heap()
            with self._lock:
                self.stats.heap_releases += 1
        return Lookup(compiled, False, seconds, None if background else record)

    def _store(self, key: Hashable, compiled: Any, fast: bool) -> None:
        """Under the lock: holds a new executable, evicting the least recently used beyond ``max_entries``."""
        self._entries[key] = compiled
        self.stats.compiles += 1
        self.stats.fast_compiles += fast
        while len(self._entries) > self.max_entries:
            evicted, _ = self._entries.popitem(last=False)
            self._ahead.pop(evicted, None)
            self.stats.evictions += 1
        self._since_clear += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._ahead.clear()


CACHE = CompileCache()


def engine_stats() -> dict[str, float]:
    """The training engine's counters since the process started, over every thread and every caller: compiles
    (executables the engine did not hold; ``disk_hits`` of them came from the persistent compilation cache,
    ``fast_compiles`` of them were compiled at the fast tier: see ``ng.train_graph``'s ``compile_tier``, and
    ``background_compiles`` of them ahead of need by ``ng.train.precompile_training``, taking
    ``background_compile_seconds``), cache hits, the seconds training and evaluation waited for compiles
    (``compile_seconds``), evictions, clears of JAX's caches, the times the C heap's free pages were given back
    (``heap_releases``, see ``ng.train.clear_compile_cache``), and the number of executables held now.

    A process-wide view: the difference of two readings counts whatever else compiled meanwhile (a background
    compile thread, another search in the same process). What one call cost comes back with the call
    (``ng.train.TrainResult``'s ``compiles``, ``compile_seconds`` ...); ``ng.train.sum_call_stats`` adds them up.

    Example:
        >>> import naivega_jax as ng
        >>> sorted(ng.train.engine_stats())  # doctest: +NORMALIZE_WHITESPACE
        ['background_compile_seconds', 'background_compiles', 'cache_hits', 'compile_seconds', 'compiles',
         'disk_hits', 'entries', 'evictions', 'fast_compiles', 'heap_releases', 'jax_cache_clears']
    """
    return {**CACHE.stats.snapshot(), "entries": len(CACHE)}


def set_jax_cache_clearing(enabled: bool) -> bool:
    """Turns the engine's clears of JAX's own caches on (the default) or off; returns the previous setting.

    Why the engine clears them: every program it compiles also leaves JAX's tracing and lowering caches holding
    what was traced (~1.5 MB and tens of thousands of Python objects per new graph spec on XLA:CPU), and nothing
    evicts them, so a search that compiles thousands of executables grows by gigabytes. Every ``clear_jax_every``
    compiles (``ng.train.clear_compile_cache``) the engine calls ``jax.clear_caches()``; the executables it holds
    survive. But that call is process-wide: the host program's own ``jax.jit`` functions lose their compiled code
    too and trace and compile again on their next call. A host that compiles few engine programs, or that bounds
    memory another way, can turn the clears off here (then those caches grow with every new spec the engine compiles).
    ``ng.train.clear_compile_cache(jax_caches=True)``, an explicit request, still clears them.

    Example:
        >>> import naivega_jax as ng
        >>> ng.train.set_jax_cache_clearing(False)
        True
        >>> ng.train.set_jax_cache_clearing(True)  # the default again
        False
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_jax_cache_clearing: enabled must be a bool, got {enabled!r}")
    with CACHE._lock:
        previous, CACHE.clear_jax = CACHE.clear_jax, enabled
    return previous


#: The counters ``sum_call_stats`` adds up, as ``ng.train.TrainResult`` and a trained candidate's ``info`` name them.
CALL_STAT_KEYS = (
    "compiles",
    "fast_compiles",
    "background_compiles",
    "background_compile_seconds",
    "cache_hits",
    "compile_seconds",
    "disk_hits",
)


def sum_call_stats(records: Iterable[Any]) -> dict[str, float]:
    """The engine's counters over some calls, added up from what each call returned (not from ``engine_stats``).

    ``records`` are ``ng.train.TrainResult``s or mappings with the same keys (a candidate's ``info`` after
    ``ng.evolution.TrainThenFitness``); a missing key counts 0. The result has ``engine_stats``'s keys and meanings
    over just these calls: ``compiles`` counts the executables the calls compiled and those compiled ahead of need
    that they used (``background_compiles`` of them, taking ``background_compile_seconds``); ``fast_compiles`` and
    ``disk_hits`` are among those; ``compile_seconds`` is the time the calls waited for compiles. So two searches
    in one process, or a search beside the host's own training, each count their own.

    Example:
        >>> import naivega_jax as ng
        >>> infos = [{"compiles": 1, "compile_seconds": 2.0}, {"cache_hits": 1, "background_compiles": 1}]
        >>> total = ng.train.sum_call_stats(infos)
        >>> total["compiles"], total["cache_hits"], total["compile_seconds"]
        (2, 1, 2.0)
    """
    total: dict[str, float] = dict.fromkeys(CALL_STAT_KEYS, 0)
    for record in records:
        if isinstance(record, Mapping):
            get = record.get
        elif all(hasattr(record, k) for k in ("compiles", "cache_hits", "compile_seconds")):
            get = functools.partial(getattr, record)
        else:
            raise TypeError(
                "sum_call_stats: records must be mappings (a candidate's info) or ng.train.TrainResults, "
                f"got {type(record).__name__}"
            )
        for k in CALL_STAT_KEYS:
            total[k] += get(k, 0)
    total["compiles"] += total["background_compiles"]
    return total


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"clear_compile_cache: {name} must be a positive int, got {value!r}")
    return value


def clear_compile_cache(
    *,
    max_entries: int | None = None,
    clear_jax_every: int | None = None,
    release_heap: bool | None = None,
    jax_caches: bool = True,
) -> None:
    """Drops every compiled executable the engine holds (and, by default, JAX's own caches).

    ``max_entries`` changes how many executables the engine keeps (least recently used ones are evicted first;
    default 64, ~4 MB resident each for a search's train steps on XLA:CPU); ``clear_jax_every`` how many compiles
    pass between automatic clears of JAX's tracing caches (default 32; they grow ~1.5 MB per new spec otherwise,
    and each clear makes JAX recompile its eager operations; ``ng.train.set_jax_cache_clearing(False)`` turns the
    automatic clears off); ``release_heap`` whether the engine gives the C
    heap's free pages back to the system after every compile (default True; glibc's ``malloc_trim(0)``, ~10-20 ms:
    it is process-wide, so it is switchable, but it changes no allocator setting). With ``release_heap`` on, this
    call gives them back too, after dropping the executables.

    Example:
        >>> import naivega_jax as ng
        >>> ng.train.clear_compile_cache(max_entries=32)
        >>> ng.train.engine_stats()["entries"]
        0
        >>> ng.train.clear_compile_cache(max_entries=64)  # the default again
    """
    if max_entries is not None:
        CACHE.max_entries = _positive(max_entries, "max_entries")
    if clear_jax_every is not None:
        CACHE.clear_jax_every = _positive(clear_jax_every, "clear_jax_every")
    if release_heap is not None:
        if not isinstance(release_heap, bool):
            raise TypeError(f"clear_compile_cache: release_heap must be a bool, got {release_heap!r}")
        CACHE.release_heap = release_heap
    CACHE.clear()
    if jax_caches:
        jax.clear_caches()
    if CACHE.release_heap:
        release_free_heap()
