"""Compile tiers: fast-compiling vs optimised executables, and the cost model that picks one per call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import blobs, leaves, mlp

import naivega_jax as ng
from naivega_jax.train import _cache

CPU = jax.default_backend() == "cpu"


FEATURES = 6


def test_cost_model_picks_the_tier_that_finishes_sooner():
    cost = {"flops": 1e8, "bytes": 4e7, "lines": 2000.0}
    m = _cache.TIER_MODEL["cpu"]
    fast_even = m.fast_compile_per_line * cost["lines"] / (m.fast_step_per_byte * cost["bytes"])
    assert fast_even == pytest.approx(277.1, rel=1e-3)  # 2000 * 0.46e-3 / (4e7 * 0.083e-9) steps
    max_even = m.max_compile_per_line * cost["lines"] / (m.max_step_per_byte * cost["bytes"])
    assert 1000 < max_even < 100_000
    assert _cache.choose_tier(cost, 277, "cpu") == "fast"
    assert _cache.choose_tier(cost, 278, "cpu") == "full"
    assert max_even == pytest.approx(8181.8, rel=1e-4)  # 2000 * 0.54e-3 / (4e7 * 0.0033e-9) steps
    assert _cache.choose_tier(cost, 8181, "cpu") == "full"
    assert _cache.choose_tier(cost, 8182, "cpu") == "max"
    # a platform with one set of options compiles one tier
    assert _cache.choose_tier(cost, 1, "gpu") == _cache.choose_tier(cost, 10**9, "gpu") == "full"
    assert _cache.tier_options("cpu", "fast") == {
        **_cache.COMPILER_OPTIONS["cpu"],
        **_cache.FAST_COMPILER_OPTIONS["cpu"],
    }
    assert _cache.tier_options("cpu", "max") == _cache.MAX_COMPILER_OPTIONS["cpu"] != _cache.tier_options("cpu", "full")
    assert _cache.tier_options("cpu", "full")["xla_cpu_use_fusion_emitters"] is False
    assert _cache.tier_options("gpu", "fast") == _cache.tier_options("gpu", "full") == {}
    assert _cache.tier_options("gpu", "max") == {}
    with pytest.raises(ValueError, match="compile tier must be one of"):
        _cache.tier_options("cpu", "medium")


@pytest.mark.skipif(not CPU, reason="only XLA:CPU has a fast tier")
def test_both_tiers_train_the_same_model_to_rounding():
    x, y = blobs(96, FEATURES)
    g = mlp(19, FEATURES)
    kw = dict(optimiser=ng.Adam(1e-2), batch_size=16, epochs=3, driver="loop")
    before = ng.train.engine_stats()["fast_compiles"]
    fast = ng.train_graph(jax.random.key(1), g, x, y, compile_tier="fast", **kw)
    assert ng.train.engine_stats()["fast_compiles"] == before + 1
    full = ng.train_graph(jax.random.key(1), g, x, y, compile_tier="full", **kw)
    assert ng.train.engine_stats()["fast_compiles"] == before + 1
    assert fast.compiles == full.compiles == 1  # two executables: the tier is part of the cache key
    assert fast.steps == full.steps == 18
    np.testing.assert_allclose(fast.losses, full.losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(leaves(fast.graph), leaves(full.graph), rtol=1e-4, atol=1e-5)
    assert fast.losses[-1] < 0.5 * fast.losses[0]
    # each tier is found again in the cache
    again = ng.train_graph(jax.random.key(1), g, x, y, compile_tier="fast", **kw)
    assert again.compiles == 0 and again.cache_hits == 1
    np.testing.assert_array_equal(leaves(again.graph), leaves(fast.graph))


@pytest.mark.skipif(not CPU, reason="only XLA:CPU has a fast tier")
def test_auto_tier_follows_the_step_count_and_is_deterministic():
    x, y = blobs(96, FEATURES)
    inp = ng.input_vertex("in", shape=(6,))
    h = ng.vertex("h2", ng.Dense(768, "relu"), ng.vertex("h1", ng.Dense(768, "relu"), inp))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(3), h))
    kw = dict(optimiser=ng.Adam(1e-3), batch_size=48, driver="loop")
    fast0 = ng.train.engine_stats()["fast_compiles"]
    short = ng.train_graph(jax.random.key(2), g, x, y, epochs=1, **kw)  # 2 steps: a full compile never pays
    assert ng.train.engine_stats()["fast_compiles"] == fast0 + 1 and short.compiles == 1
    # ~600k parameters: Adam alone reads and writes ~10^8 bytes a step, so the break-evens are short
    (cost,) = [c for k, c in _cache.CACHE._costs.items() if k[0] == "step" and ((768, 768), "float32", False) in k[3]]
    m = _cache.TIER_MODEL["cpu"]
    fast_even = m.fast_compile_per_line * cost["lines"] / (m.fast_step_per_byte * cost["bytes"])
    max_even = m.max_compile_per_line * cost["lines"] / (m.max_step_per_byte * cost["bytes"])
    assert 2 < fast_even < 50 < max_even < 600
    assert [_cache.choose_tier(cost, n, "cpu") for n in (2, 50, 600)] == ["fast", "full", "max"]
    medium = ng.train_graph(jax.random.key(2), g, x, y, epochs=25, **kw)  # 50 steps: full
    long = ng.train_graph(jax.random.key(2), g, x, y, epochs=300, **kw)  # 600 steps: max
    assert medium.compiles == long.compiles == 1  # three tiers, three executables
    assert ng.train.engine_stats()["fast_compiles"] == fast0 + 1
    # the same short call again: same tier, a cache hit, bitwise the same numbers
    repeat = ng.train_graph(jax.random.key(2), g, x, y, epochs=1, **kw)
    assert repeat.compiles == 0
    np.testing.assert_array_equal(leaves(repeat.graph), leaves(short.graph))
    np.testing.assert_array_equal(repeat.losses, short.losses)


def test_evaluation_tiers_agree_and_bad_tiers_are_refused():
    x, y = blobs(96, FEATURES, seed=3)
    g = ng.train_graph(jax.random.key(0), mlp(11, FEATURES), x, y, optimiser=ng.Adam(1e-2), epochs=5).graph
    fast = ng.evaluate_accuracy(g, x, y, batch_size=32, compile_tier="fast")
    full = ng.evaluate_accuracy(g, x, y, batch_size=32, compile_tier="full")
    auto = ng.evaluate_accuracy(g, x, y, batch_size=32)
    assert fast == full == auto > 0.9
    with pytest.raises(ValueError, match=r"train_graph: compile_tier must be one of .* got 'quick'"):
        ng.train_graph(jax.random.key(0), g, x, y, compile_tier="quick")
    with pytest.raises(ValueError, match=r"evaluate_accuracy: compile_tier must be one of .* got 'O0'"):
        ng.evaluate_accuracy(g, x, y, compile_tier="O0")


@pytest.mark.skipif(not CPU, reason="only XLA:CPU has a fast tier")
def test_a_cost_is_computed_once_per_signature():
    seen = []
    tier = lambda cost, platform: seen.append((cost, platform)) or "fast"
    double_sum = jax.jit(lambda a: (a[0] * 2.0).sum())
    data = (jnp.ones((4, 7)),)
    first = _cache.CACHE.get("test-tier-probe", double_sum, {}, (data,), tier)
    second = _cache.CACHE.get("test-tier-probe", double_sum, {}, (data,), tier)
    assert not first.hit and second.hit
    assert len(seen) == 2 and seen[0][0] is seen[1][0]  # the choice is asked each time; the program lowered once
    cost, platform = seen[0]
    assert platform == "cpu" and set(cost) == {"flops", "bytes", "lines"} and cost["lines"] > 0
    assert float(first.compiled(data)) == 56.0
