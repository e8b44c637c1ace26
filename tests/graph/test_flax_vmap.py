"""Flax export: ``module.init`` under ``jax.vmap``, and the keys ``init`` and dropout use against ``ng``'s own."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def conv_graph(key):
    inp = ng.input_vertex("img", shape=(6, 6, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm("tanh"), c1)
    gp = ng.vertex("gp", ng.GlobalPool("mean"), ng.vertex("pool", ng.MaxPool(2), bn))
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), gp))


def dropout_graph(key):
    inp = ng.input_vertex("in", shape=(6,))
    d1 = ng.vertex("d1", ng.Dense(64, "relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    dr = ng.vertex("dr", ng.Dropout(0.5), bn)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(4), dr))


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_module_init_draws_what_init_graph_draws_for_the_same_key(key):
    g = conv_graph(key)
    module, _ = ng.to_flax(g)
    k = jax.random.key(7)
    variables = module.init(k, jnp.zeros((1, 6, 6, 2)))
    fresh = ng.graph.init_graph(k, g.spec)
    assert_trees_equal(variables["params"], fresh.params)
    assert_trees_equal(variables["batch_stats"], fresh.state)


@pytest.mark.parametrize("jit", [False, True])
def test_vmap_of_module_init_gives_one_parameter_set_per_key(key, jit):
    g = conv_graph(key)
    module, _ = ng.to_flax(g)
    x = jnp.zeros((1, 6, 6, 2))
    keys = jax.random.split(jax.random.key(11), 3)
    init = jax.vmap(module.init, in_axes=(0, None))
    batched = (jax.jit(init) if jit else init)(keys, x)
    assert batched["params"]["c1"]["kernel"].shape == (3, 3, 3, 2, 3)
    assert batched["batch_stats"]["bn"]["var"].shape == (3, 3)
    for i in range(3):
        one = jax.tree.map(lambda a, i=i: a[i], batched)
        assert_trees_equal(one, module.init(keys[i], x))
        assert_trees_equal(one["params"], ng.graph.init_graph(keys[i], g.spec).params)
    kernels = np.asarray(batched["params"]["out"]["kernel"])
    assert not np.array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[1], kernels[2])
    assert not np.array_equal(kernels[0], kernels[2])
    # each member computes: an ensemble of three fresh models
    ys = jax.vmap(module.apply, in_axes=(0, None))(batched, data((2, 6, 6, 2)))
    assert ys.shape == (3, 2, 3) and not np.allclose(ys[0], ys[1])


def test_nested_vmap_of_module_init(key):
    g = conv_graph(key)
    module, _ = ng.to_flax(g)
    keys = jax.random.split(jax.random.key(2), 6).reshape(2, 3)
    batched = jax.vmap(jax.vmap(module.init, in_axes=(0, None)), in_axes=(0, None))(keys, jnp.zeros((1, 6, 6, 2)))
    assert batched["params"]["c1"]["kernel"].shape == (2, 3, 3, 3, 2, 3)
    np.testing.assert_array_equal(
        batched["params"]["out"]["kernel"][1, 2], ng.graph.init_graph(keys[1, 2], g.spec).params["out"]["kernel"]
    )


def test_dropout_key_in_rngs_is_the_key_ng_apply_takes(key):
    g = dropout_graph(key)
    module, variables = ng.to_flax(g)
    x = data((8, 6))
    for seed in (1, 2):
        k = jax.random.key(seed)
        y_flax, updates = module.apply(variables, x, train=True, rngs={"dropout": k}, mutable=["batch_stats"])
        y_ng, trained = ng.apply(g, x, train=True, key=k)
        np.testing.assert_allclose(y_flax, y_ng, rtol=0, atol=1e-6)
        np.testing.assert_allclose(updates["batch_stats"]["bn"]["mean"], trained.state["bn"]["mean"], atol=1e-7)
    y1 = module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}, mutable=["batch_stats"])[0]
    y2 = module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])[0]
    assert not np.allclose(y1, y2)
    # a legacy uint32 key is passed on unchanged too
    legacy = jax.random.PRNGKey(3)
    y_flax = module.apply(variables, x, train=True, rngs={"dropout": legacy}, mutable=["batch_stats"])[0]
    np.testing.assert_allclose(y_flax, ng.apply(g, x, train=True, key=legacy)[0], rtol=0, atol=1e-6)


class Twice(nn.Module):
    """The found model called twice in one apply: the two calls must not share a dropout mask."""

    spec: ng.GraphSpec

    @nn.compact
    def __call__(self, x):
        found = ng.graph.GraphModule(self.spec, name="found")
        return found(x, train=True), found(x, train=True)


def test_second_call_in_one_apply_draws_a_fresh_dropout_key(key):
    inp = ng.input_vertex("in", shape=(400,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("dr", ng.Dropout(0.5), inp))
    x = np.ones((2, 400), np.float32)
    a, b = Twice(g.spec).apply({}, x, rngs={"dropout": jax.random.key(5)})
    assert set(np.unique(a)) == set(np.unique(b)) == {0.0, 2.0}
    assert 0.3 < (np.asarray(a) != np.asarray(b)).mean() < 0.7
    # as a submodule the key is flax's, derived from the rngs key and the submodule's path: still deterministic
    again = Twice(g.spec).apply({}, x, rngs={"dropout": jax.random.key(5)})
    np.testing.assert_array_equal(a, again[0])
