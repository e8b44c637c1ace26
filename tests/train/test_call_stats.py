"""Engine statistics per call, and the engine's clears of JAX's caches, which a host program can turn off."""

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.train import _cache


def _plus_one(a):
    return a + 1


@pytest.fixture
def every_two_compiles():
    """The engine clears JAX's caches every 2 compiles for the test; the defaults come back after."""
    every, enabled = _cache.CACHE.clear_jax_every, _cache.CACHE.clear_jax
    ng.train.clear_compile_cache(clear_jax_every=2, jax_caches=False)
    yield 2
    _cache.CACHE.clear_jax_every, _cache.CACHE.clear_jax = every, enabled


def _user_function():
    traces = []

    @jax.jit
    def user(a):
        traces.append(a.shape)  # runs once per trace
        return a * 2

    return user, traces


def _engine_compiles(n: int, start: int) -> None:
    for size in range(start, start + n):
        assert not _cache.CACHE.get("call_stats_test", jax.jit(_plus_one), {}, (np.zeros(size, np.float32),)).hit


def test_a_host_can_turn_off_the_engines_jax_cache_clears(every_two_compiles):
    user, traces = _user_function()
    user(np.ones(3, np.float32))
    clears = ng.engine_stats()["jax_cache_clears"]
    assert ng.train.set_jax_cache_clearing(False) is True  # the previous setting: on by default
    _engine_compiles(every_two_compiles + 1, start=1000)
    user(np.ones(3, np.float32))
    assert len(traces) == 1 and user._cache_size() == 1  # the host's compiled function survived
    assert ng.engine_stats()["jax_cache_clears"] == clears
    assert ng.train.set_jax_cache_clearing(True) is False


def test_by_default_the_engine_clears_every_n_compiles(every_two_compiles):
    user, traces = _user_function()
    user(np.ones(3, np.float32))
    clears = ng.engine_stats()["jax_cache_clears"]
    _engine_compiles(every_two_compiles + 1, start=2000)
    assert ng.engine_stats()["jax_cache_clears"] >= clears + 1
    user(np.ones(3, np.float32))
    assert len(traces) == 2  # traced again after the clear


def test_set_jax_cache_clearing_wants_a_bool():
    with pytest.raises(TypeError, match="enabled must be a bool, got 1"):
        ng.train.set_jax_cache_clearing(1)
