"""Engine statistics per call, and the engine's clears of JAX's caches, which a host program can turn off."""

import threading

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
    clears = ng.train.engine_stats()["jax_cache_clears"]
    assert ng.train.set_jax_cache_clearing(False) is True  # the previous setting: on by default
    _engine_compiles(every_two_compiles + 1, start=1000)
    user(np.ones(3, np.float32))
    assert len(traces) == 1 and user._cache_size() == 1  # the host's compiled function survived
    assert ng.train.engine_stats()["jax_cache_clears"] == clears
    assert ng.train.set_jax_cache_clearing(True) is False


def test_by_default_the_engine_clears_every_n_compiles(every_two_compiles):
    user, traces = _user_function()
    user(np.ones(3, np.float32))
    clears = ng.train.engine_stats()["jax_cache_clears"]
    _engine_compiles(every_two_compiles + 1, start=2000)
    assert ng.train.engine_stats()["jax_cache_clears"] >= clears + 1
    user(np.ones(3, np.float32))
    assert len(traces) == 2  # traced again after the clear


def test_set_jax_cache_clearing_wants_a_bool():
    with pytest.raises(TypeError, match="enabled must be a bool, got 1"):
        ng.train.set_jax_cache_clearing(1)


FEATURES = 7  # no other test file trains graphs of this input width: their executables are this file's own


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    return (rng.normal(size=(n, FEATURES)) + 3.0 * np.eye(3, FEATURES)[y]).astype(np.float32), y


def _mlp(hidden):
    inp = ng.input_vertex("in", shape=(FEATURES,))
    h = ng.vertex("h", ng.Dense(hidden, "relu"), inp)
    return ng.build_graph(jax.random.key(hidden), inputs=inp, outputs=ng.vertex("out", ng.Dense(3), h))


def test_each_training_reports_its_own_compiles_when_two_run_at_once():
    x, y = _blobs(48, 0)
    kw = dict(optimiser=ng.Adam(1e-2), batch_size=16, epochs=1)
    assert ng.train.precompile_training(_mlp(51), x, y, compile_tier="fast", **kw) is True  # ahead of need, for `ahead`
    before = ng.train.engine_stats()
    results = {}
    barrier = threading.Barrier(2)

    def train(name, graph, tier):
        barrier.wait()
        results[name] = ng.train_graph(jax.random.key(0), graph, x, y, compile_tier=tier, **kw)

    threads = [
        threading.Thread(target=train, args=("ahead", _mlp(51), "fast")),
        threading.Thread(target=train, args=("cold", _mlp(52), "full")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ahead, cold = results["ahead"], results["cold"]
    assert (ahead.compiles, ahead.cache_hits, ahead.background_compiles, ahead.fast_compiles) == (0, 1, 1, 1)
    assert ahead.background_compile_seconds > 0 and ahead.compile_seconds < ahead.background_compile_seconds
    assert (cold.compiles, cold.cache_hits, cold.background_compiles, cold.fast_compiles) == (1, 0, 0, 0)
    assert cold.background_compile_seconds == 0 and cold.compile_seconds > 0
    # the process-wide counters saw only the cold compile over the same time: a diff would give both calls 1
    assert ng.train.engine_stats()["compiles"] - before["compiles"] == 1
    again = ng.train_graph(jax.random.key(1), _mlp(51), x, y, compile_tier="fast", **kw)
    assert (again.compiles, again.background_compiles) == (0, 0)  # a compile made ahead counts for its first user


def test_sum_call_stats_adds_what_each_call_returned():
    one = {"compiles": 2, "cache_hits": 1, "compile_seconds": 1.5, "fast_compiles": 1, "train_seconds": 9.0}
    two = {"compiles": 0, "cache_hits": 3, "compile_seconds": 0.25, "background_compiles": 2, "disk_hits": 1}
    three = {"background_compile_seconds": 4.0, "driver": "scan"}
    total = ng.train.sum_call_stats([one, two, three])
    assert total == {
        "compiles": 4,  # made in the calls (2) and ahead of need for them (2), as engine_stats counts them
        "fast_compiles": 1,
        "background_compiles": 2,
        "background_compile_seconds": 4.0,
        "cache_hits": 4,
        "compile_seconds": 1.75,
        "disk_hits": 1,
    }
    assert ng.train.sum_call_stats([]) == dict.fromkeys(total, 0)
    assert set(total) < set(ng.train.engine_stats())


def test_sum_call_stats_takes_train_results():
    x, y = _blobs(32, 1)
    results = [ng.train_graph(jax.random.key(0), _mlp(53), x, y, batch_size=16) for _ in range(2)]
    total = ng.train.sum_call_stats(results)
    assert total["compiles"] == 1 and total["cache_hits"] == 1
    assert total["compile_seconds"] == results[0].compile_seconds + results[1].compile_seconds


def test_sum_call_stats_names_a_bad_record():
    with pytest.raises(TypeError, match=r"records must be mappings .* got int"):
        ng.train.sum_call_stats([{"compiles": 1}, 3])
