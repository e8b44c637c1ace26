import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.train._cache import CompileCache


@jax.jit
def plus_one(a):
    return a + 1


def test_lookups_hit_by_shape_and_evict_least_recently_used():
    cache = CompileCache(max_entries=2, clear_jax_every=100)
    a2, a3, a4 = np.zeros(2, np.float32), np.zeros(3, np.float32), np.zeros(4, np.float32)
    first = cache.get("f", plus_one, {}, (a2,))
    assert not first.hit and first.seconds > 0
    np.testing.assert_array_equal(first.compiled(a2), [1.0, 1.0])
    assert cache.get("f", plus_one, {}, (np.ones(2, np.float32),)).hit  # values do not matter
    assert not cache.get("f", plus_one, {}, (a3,)).hit
    assert cache.get("f", plus_one, {}, (a2,)).hit  # a2 is now the most recently used
    assert not cache.get("f", plus_one, {}, (a4,)).hit  # evicts a3
    assert cache.get("f", plus_one, {}, (a2,)).hit
    assert not cache.get("f", plus_one, {}, (a3,)).hit
    assert not cache.get("f", plus_one, {}, (jnp.zeros(2, jnp.int32),)).hit  # dtype is part of the key
    assert not cache.get("g", plus_one, {}, (a2,)).hit  # so is the name
    stats = cache.stats
    assert (stats.compiles, stats.cache_hits, stats.evictions) == (6, 3, 4)
    assert len(cache) == 2


def test_jax_caches_are_cleared_every_n_compiles():
    cache = CompileCache(max_entries=10, clear_jax_every=2)
    for n in range(1, 6):
        cache.get("f", plus_one, {}, (np.zeros(n, np.float32),))
    assert cache.stats.jax_cache_clears == 2
    assert cache.get("f", plus_one, {}, (np.zeros(1, np.float32),)).hit  # held executables survive the clears


def test_clear_compile_cache_validates_and_empties():
    with pytest.raises(ValueError, match="max_entries"):
        ng.train.clear_compile_cache(max_entries=0)
    with pytest.raises(ValueError, match="clear_jax_every"):
        ng.train.clear_compile_cache(clear_jax_every=-1)
    ng.train.clear_compile_cache(jax_caches=False)
    assert ng.train.engine_stats()["entries"] == 0
