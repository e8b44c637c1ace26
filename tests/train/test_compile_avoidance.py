"""Compile avoidance: XLA compile options, the persistent compilation cache, the flat vectors of the traced step
(gradients and optimiser moments by default; the parameters too when switched on here)."""

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.train import _cache, _step


def conv_graph(prefix: str) -> ng.Graph:
    inp = ng.input_vertex("in", shape=(12, 2))
    c = ng.vertex(f"{prefix}c", ng.Conv(4, 3, activation="relu"), inp)
    bn = ng.vertex(f"{prefix}bn", ng.BatchNorm("elu"), c)
    g = ng.vertex(f"{prefix}g", ng.GlobalPool("mean"), bn)
    out = ng.vertex(f"{prefix}out", ng.Dense(3), g)
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=out)


def data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 12, 2)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


@pytest.mark.parametrize("driver", ["loop", "scan"])
@pytest.mark.parametrize("mode", ["optimiser", "params"])
@pytest.mark.parametrize("optimiser", [ng.Adam(0.01), ng.OptimiserChain(ng.WeightDecay(0.1), ng.Momentum(0.05))])
def test_flat_vectors_train_exactly_like_the_tree(monkeypatch, driver, mode, optimiser):
    g = ng.graph.init_activation_utility(conv_graph(f"flat_{driver}_"))
    x, y = data()
    results = {}
    for flat in (None, mode):
        monkeypatch.setattr(_step, "FLAT", flat)
        results[flat] = ng.train_graph(
            jax.random.key(3), g, x, y, optimiser=optimiser, batch_size=16, epochs=2, driver=driver
        )
    tree, flat = results[None], results[mode]
    np.testing.assert_allclose(flat.losses, tree.losses, rtol=1e-5, atol=1e-6)
    assert jax.tree_util.tree_structure(flat.graph.params) == jax.tree_util.tree_structure(tree.graph.params)
    for a, b in zip(jax.tree_util.tree_leaves(flat.graph), jax.tree_util.tree_leaves(tree.graph)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the optimiser state comes back over the parameter tree, as optax would build it
    assert jax.tree_util.tree_structure(flat.opt_state) == jax.tree_util.tree_structure(tree.opt_state)
    for a, b in zip(jax.tree_util.tree_leaves(flat.opt_state), jax.tree_util.tree_leaves(tree.opt_state)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert flat.steps == 6
    assert all(
        int(c) == 6 for c in jax.tree_util.tree_leaves(flat.opt_state) if np.ndim(c) == 0 and c.dtype == np.int32
    )
    # the utilities, updated for all vertices at once, are those ng.graph.update_activation_utility gives vertex by
    # vertex
    for name in (f"flat_{driver}_c", f"flat_{driver}_bn"):
        np.testing.assert_allclose(flat.graph.state[name]["utility"], tree.graph.state[name]["utility"], rtol=1e-5)


def test_the_combined_utility_update_is_update_activation_utility():
    g = ng.graph.init_activation_utility(conv_graph("util_"))
    rng = np.random.default_rng(1)
    grads = {n: rng.standard_normal((5, g.nout(n))).astype(np.float32) for n in g.state if "utility" in g.state[n]}
    mask = np.array([1, 1, 0, 1, 1], np.float32)
    expected = ng.graph.update_activation_utility(g, grads, mask=mask).state
    got = _step._update_utilities(g, dict(g.state), grads, mask)
    assert sorted(grads) == ["util_bn", "util_c", "util_g", "util_out"]  # feature maps and vectors
    for n in grads:
        np.testing.assert_allclose(got[n]["utility"], expected[n]["utility"], rtol=1e-6)


def test_flat_layout_is_only_used_for_one_float_dtype(monkeypatch):
    monkeypatch.setattr(_step, "FLAT", "params")
    f32, f16 = np.zeros((2, 3), np.float32), np.zeros((3,), np.float16)
    layout = _step._layout({"b": {"k": f32, "bias": f32[0]}, "a": {"k": f32}})
    assert [e[:2] for e in layout.entries] == [("a", "k"), ("b", "bias"), ("b", "k")]
    assert layout.offsets == (0, 6, 9, 15) and layout.size == 15
    tree = {"a": {"k": np.arange(6.0).reshape(2, 3)}, "b": {"bias": np.ones(3), "k": np.full((2, 3), 2.0)}}
    flat = layout.ravel_host(tree)
    back = layout.unravel_host(flat)
    for v, n, _ in layout.entries:
        np.testing.assert_array_equal(back[v][n], tree[v][n])
    assert _step._layout({}) is None
    assert _step._layout({"a": {"k": f32}, "b": {"k": f16}}) is None
    assert _step._layout({"a": {"k": np.zeros(3, np.int32)}}) is None


def test_an_unknown_compiler_option_is_dropped_once(monkeypatch):
    monkeypatch.setattr(_cache, "COMPILER_OPTIONS", {"cpu": {"xla_no_such_option_anywhere": True}})
    monkeypatch.setattr(_cache, "_REJECTED", set())
    x, y = data()
    r = ng.train_graph(jax.random.key(0), conv_graph("badopt_"), x, y, batch_size=16)
    assert r.compiles >= 1 and np.isfinite(r.losses).all()
    assert "cpu" in _cache._REJECTED and len(_cache._REJECTED) == 1


def test_a_recompile_after_eviction_is_read_from_the_persistent_cache(tmp_path):
    before = ng.train.compilation_cache_dir()
    try:
        assert ng.train.set_compilation_cache(tmp_path, min_compile_seconds=0.0) == str(tmp_path)
        x, y = data()
        g = conv_graph("disk_")
        first = ng.train_graph(jax.random.key(0), g, x, y, batch_size=16)
        assert first.compiles >= 1 and any(p.name.startswith("jit__train_step") for p in tmp_path.iterdir())
        ng.train.clear_compile_cache()  # the engine and JAX forget the executable; the directory keeps it
        hits = ng.train.engine_stats()["disk_hits"]
        second = ng.train_graph(jax.random.key(0), g, x, y, batch_size=16)
        assert second.compiles >= 1 and ng.train.engine_stats()["disk_hits"] >= hits + 1
        np.testing.assert_array_equal(second.losses, first.losses)
    finally:
        ng.train.set_compilation_cache(before)


def test_set_compilation_cache_checks_its_arguments():
    with pytest.raises(ValueError, match="min_compile_seconds"):
        ng.train.set_compilation_cache("/tmp/x", min_compile_seconds=-1)
    with pytest.raises(ValueError, match="max_bytes"):
        ng.train.set_compilation_cache("/tmp/x", max_bytes=0)
    with pytest.raises(TypeError, match="path"):
        ng.train.set_compilation_cache(3)


def test_the_cache_is_on_by_default_in_the_user_cache_dir_and_the_environment_turns_it_off(tmp_path, monkeypatch):
    from naivega_jax.train import _xla_cache

    before = ng.train.compilation_cache_dir()
    x, y = data()

    def first_compile(env, own=None):
        """A fresh process's first engine compile, with this environment and the program's own setting."""
        monkeypatch.delenv("NAIVEGA_JAX_XLA_CACHE", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        jax.config.update("jax_compilation_cache_dir", own)
        monkeypatch.setattr(_xla_cache, "_decided", False)
        ng.train.clear_compile_cache()
        _xla_cache.ensure_default_compilation_cache()  # what fit and the CLI do first (the engine alone does not)
        _xla_cache.ensure_default_compilation_cache()  # once per process: a second call changes nothing
        ng.train_graph(jax.random.key(0), conv_graph("env_"), x, y, batch_size=16)
        return ng.train.compilation_cache_dir()

    try:
        assert first_compile({"NAIVEGA_JAX_CACHE": str(tmp_path)}) == str(tmp_path / "xla")
        assert any((tmp_path / "xla").iterdir())
        assert first_compile({"NAIVEGA_JAX_CACHE": str(tmp_path), "NAIVEGA_JAX_XLA_CACHE": "off"}) is None
        assert first_compile({"NAIVEGA_JAX_XLA_CACHE": str(tmp_path / "mine")}) == str(tmp_path / "mine")
        assert first_compile({"NAIVEGA_JAX_CACHE": str(tmp_path)}, own=str(tmp_path / "own")) == str(tmp_path / "own")
    finally:
        ng.train.set_compilation_cache(before)
