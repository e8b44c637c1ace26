"""What a long search holds in memory stays bounded: the C heap's freed pages go back to the system after the
engine's compiles, the engine holds at most ``max_entries`` executables, and a candidate's lineage keeps at most
``MAX_LINEAGE_EVENTS`` events (benchmarks/bench_memory.py measures the whole search)."""

import ctypes
import sys

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.evolution import _candidate
from naivega_jax.train import _cache
from naivega_jax.train._cache import CompileCache


@jax.jit
def times_three(a):
    return 3 * a


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _has_malloc_trim() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "malloc_trim")
    except (OSError, TypeError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_malloc_trim(), reason="glibc's malloc_trim")
def test_release_free_heap_gives_freed_pages_back():
    before = _rss_mb()
    blocks = [bytes(2000) for _ in range(100_000)]  # ~200 MB from malloc (pymalloc takes only objects <= 512 bytes)
    survivors = blocks[::64]  # one live block every 128 KB: glibc cannot shrink the heap from its top by itself
    del blocks
    held = _rss_mb()
    assert held - before > 150  # freed, yet still resident
    assert _cache.release_free_heap()
    assert held - _rss_mb() > 150
    assert len(survivors) == 1563


def test_every_compile_releases_the_free_heap_and_hits_do_not(monkeypatch):
    calls = []
    monkeypatch.setattr(_cache, "release_free_heap", lambda: calls.append(1) or True)
    cache = CompileCache(max_entries=2, clear_jax_every=100)
    for n in (2, 3, 4, 2, 4):
        cache.get("f", times_three, {}, (np.zeros(n, np.float32),))
    # 4 compiles (2 was evicted by 4, then compiled again), 1 hit
    assert (cache.stats.compiles, cache.stats.cache_hits, cache.stats.heap_releases, len(calls)) == (4, 1, 4, 4)
    off = CompileCache(max_entries=2, clear_jax_every=1, release_heap=False)
    off.get("f", times_three, {}, (np.zeros(5, np.float32),))
    assert (off.stats.compiles, off.stats.jax_cache_clears, off.stats.heap_releases, len(calls)) == (1, 1, 0, 4)


def test_clear_compile_cache_switches_the_heap_release(monkeypatch):
    monkeypatch.setattr(_cache.CACHE, "release_heap", _cache.CACHE.release_heap)
    ng.train.clear_compile_cache(release_heap=False, jax_caches=False)
    assert _cache.CACHE.release_heap is False
    ng.train.clear_compile_cache(release_heap=True, jax_caches=False)
    assert _cache.CACHE.release_heap is True
    with pytest.raises(TypeError, match=r"release_heap must be a bool, got 'yes'"):
        ng.train.clear_compile_cache(release_heap="yes")
    assert ng.train.engine_stats()["heap_releases"] >= 0


def test_the_engine_holds_at_most_max_entries_executables():
    cache = CompileCache(max_entries=3, clear_jax_every=1000, release_heap=False)
    for n in range(1, 11):
        cache.get("f", times_three, {}, (np.zeros(n, np.float32),))
        assert len(cache) == min(n, 3)
    assert (cache.stats.compiles, cache.stats.evictions) == (10, 7)


def _candidate_with_events(count: int) -> ng.Candidate:
    inp = ng.input_vertex("in", shape=(2,))
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    c = ng.Candidate(graph).with_event("created", name="model1")
    for i in range(count):
        c = c.replace(generation=i + 1).with_event("fitness", fitness=float(i))
    return c


def test_lineage_keeps_its_origin_and_the_newest_events():
    limit = _candidate.MAX_LINEAGE_EVENTS
    c = _candidate_with_events(3 * limit)
    assert len(c.lineage) == limit
    assert c.lineage[0] == {"generation": 1, "event": "created", "name": "model1"}
    kept = limit - 2
    dropped = 3 * limit - kept
    assert c.lineage[1] == {"generation": dropped, "event": "truncated", "dropped": dropped}
    assert [e["fitness"] for e in c.lineage[2:]] == [float(i) for i in range(dropped, 3 * limit)]
    assert [e["generation"] for e in c.lineage[2:4]] == [dropped + 1, dropped + 2]


def test_a_short_lineage_is_kept_whole():
    limit = _candidate.MAX_LINEAGE_EVENTS
    c = _candidate_with_events(limit - 1)
    assert len(c.lineage) == limit and not any(e["event"] == "truncated" for e in c.lineage)
    assert [e["fitness"] for e in c.lineage[1:]] == [float(i) for i in range(limit - 1)]
