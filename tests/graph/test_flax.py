"""Flax export: the module computes exactly what the graph computes, in inference and in training."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import naivega_jax as ng


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def randomised(g, seed=1):
    """``g`` with every array perturbed (outputs stay O(1)): biases non-zero, batch-norm statistics not 0/1."""
    rng = np.random.default_rng(seed)
    noisy = lambda a: jnp.asarray(np.asarray(a) * rng.uniform(0.5, 1.5, a.shape) + rng.uniform(0.1, 0.3, a.shape))
    return g.replace(params=jax.tree.map(noisy, g.params), state=jax.tree.map(noisy, g.state))


def dense_graph(key):
    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(8, "relu"), inp)
    d2 = ng.vertex("d2", ng.Dense(3, "tanh"), d1)
    return ng.build_graph(key, inputs=inp, outputs=d2)


def conv_graph(key):
    inp = ng.input_vertex("img", shape=(6, 6, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, activation="relu"), inp)
    c2 = ng.vertex("c2", ng.Conv(2, (1, 1)), inp)
    cat = ng.concat("cat", c1, c2)
    bn = ng.vertex("bn", ng.BatchNorm("tanh"), cat)
    c3 = ng.vertex("c3", ng.Conv(5, 3), bn)
    res = ng.add("res", bn, c3)
    gp = ng.vertex("gp", ng.GlobalPool("mean"), ng.vertex("pool", ng.MaxPool(2), res))
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), gp))


def test_dense_graph_module_equals_graph(key):
    g = dense_graph(key)
    module, variables = ng.to_flax(g)
    assert isinstance(module, nn.Module) and isinstance(module, ng.graph.GraphModule)
    assert set(variables) == {"params"}
    x = data((4, 5))
    y = module.apply(variables, x)
    assert y.shape == (4, 3)
    np.testing.assert_allclose(y, g(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(jax.jit(module.apply)(variables, x), g(x), rtol=0, atol=1e-6)


def test_conv_batchnorm_graph_module_equals_graph_in_inference_and_training(key):
    g = randomised(conv_graph(key))
    module, variables = ng.to_flax(g)
    assert set(variables) == {"params", "batch_stats"}
    assert set(variables["batch_stats"]) == {"bn"}
    x = data((2, 6, 6, 2))
    np.testing.assert_allclose(module.apply(variables, x), g(x), rtol=0, atol=1e-6)

    y_flax, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    y_ng, g_trained = ng.apply(g, x, train=True)
    np.testing.assert_allclose(y_flax, y_ng, rtol=0, atol=1e-6)
    for k in ("mean", "var"):
        np.testing.assert_allclose(updates["batch_stats"]["bn"][k], g_trained.state["bn"][k], rtol=1e-6, atol=1e-7)
        assert not np.allclose(updates["batch_stats"]["bn"][k], g.state["bn"][k])
    # the exported variables are copies: training the module did not touch the graph's state
    np.testing.assert_array_equal(variables["batch_stats"]["bn"]["mean"], g.state["bn"]["mean"])
    # inference with the updated statistics equals the trained graph
    trained = {**variables, **updates}
    np.testing.assert_allclose(module.apply(trained, x), g_trained(x), rtol=0, atol=1e-6)


def test_module_init_shapes_also_under_jit(key):
    g = conv_graph(key)
    module, variables = ng.to_flax(g)
    x = jnp.zeros((1, 6, 6, 2))
    fresh = module.init(jax.random.key(3), x)
    jitted = jax.jit(module.init)(jax.random.key(3), x)
    shapes = lambda t: jax.tree.map(jnp.shape, t)
    assert shapes(fresh) == shapes(jitted) == shapes(variables)
    assert shapes(fresh["params"]) == shapes(g.params)
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(jitted)):
        np.testing.assert_array_equal(a, b)
    # fresh init follows the op's init: biases zero, batch-norm statistics 0/1, kernels fan-in scaled and random
    np.testing.assert_array_equal(fresh["params"]["c1"]["bias"], np.zeros(3))
    np.testing.assert_array_equal(fresh["batch_stats"]["bn"]["var"], np.ones(5))
    k = np.asarray(fresh["params"]["c3"]["kernel"])
    assert 0.05 < k.std() < 0.3  # 1/sqrt(3*3*5) = 0.149
    other = module.init(jax.random.key(4), x)
    assert not np.array_equal(other["params"]["c3"]["kernel"], k)
    y = module.apply(fresh, data((2, 6, 6, 2)))
    assert y.shape == (2, 3) and bool(jnp.all(jnp.isfinite(y)))


def test_multi_input_multi_output_module(key):
    a = ng.input_vertex("a", shape=(3,))
    b = ng.input_vertex("b", shape=(4,))
    s = ng.add("sum", ng.vertex("da", ng.Dense(2), a), ng.vertex("db", ng.Dense(2), b))
    g = randomised(ng.build_graph(key, inputs=[a, b], outputs=[s, ng.concat("cat", a, b)]))
    module, variables = ng.to_flax(g)
    xa, xb = data((5, 3), 1), data((5, 4), 2)
    for got in (module.apply(variables, xa, xb), module.apply(variables, {"a": xa, "b": xb})):
        for y, ref in zip(got, g(xa, xb)):
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6)


def test_dropout_in_flax_training(key):
    inp = ng.input_vertex("in", shape=(400,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("dr", ng.Dropout(0.5), inp))
    module, variables = ng.to_flax(g)
    x = np.ones((5, 400), np.float32)
    np.testing.assert_array_equal(module.apply(variables, x), x)
    y1 = np.asarray(module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}))
    y2 = np.asarray(module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}))
    np.testing.assert_array_equal(y1, y2)
    assert set(np.unique(y1)) == {0.0, 2.0}
    assert 0.45 < (y1 == 0).mean() < 0.55


class Wrapper(nn.Module):
    """Ordinary Flax code using the found model as a submodule."""

    spec: ng.GraphSpec

    @nn.compact
    def __call__(self, x):
        return 2.0 * ng.graph.GraphModule(self.spec, name="found")(x) + 1.0


def test_graph_module_composes_into_flax_code(key):
    g = dense_graph(key)
    _, variables = ng.to_flax(g)
    x = data((3, 5))
    y = Wrapper(g.spec).apply({"params": {"found": variables["params"]}}, x)
    np.testing.assert_allclose(y, 2.0 * np.asarray(g(x)) + 1.0, rtol=1e-6, atol=1e-6)
