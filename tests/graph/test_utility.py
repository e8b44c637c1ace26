"""Neuron utility: weight magnitude, activation contribution (EWMA updates, pruning by it), remapping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from surgery_helpers import valid

import naivega_jax as ng
from naivega_jax.graph._graph import forward

EPS = float(np.finfo(np.float32).eps)


def small_graph(key):
    img = ng.input_vertex("in", shape=(4, 4, 2))
    conv = ng.vertex("conv", ng.Conv(3, (3, 3), activation="tanh"), img)
    bn = ng.vertex("bn", ng.BatchNorm(), conv)
    flat = ng.vertex("flat", ng.Flatten(), ng.vertex("pool", ng.MaxPool(2), bn))
    return ng.build_graph(key, inputs=img, outputs=ng.vertex("out", ng.Dense(2), flat))


def test_weight_utility_per_op(key):
    g = small_graph(key)
    kernel, bias = np.asarray(g.params["conv"]["kernel"]), np.array([0.5, -1.0, 0.0], np.float32)
    g = g.replace(params={**g.params, "conv": {"kernel": g.params["conv"]["kernel"], "bias": jnp.asarray(bias)}})
    expected = np.sqrt((kernel.reshape(-1, 3) ** 2).sum(0)) + np.abs(bias)
    np.testing.assert_allclose(ng.graph.weight_utility(g, "conv"), expected, rtol=1e-6)
    scale, shift = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, 1.0, -1.0])
    g = g.replace(params={**g.params, "bn": {"scale": scale, "bias": shift}})
    np.testing.assert_allclose(ng.graph.weight_utility(g, "bn"), [1.0, 3.0, 1.5])
    np.testing.assert_array_equal(ng.graph.weight_utility(g, "pool"), np.zeros(3))  # transparent, no params
    np.testing.assert_array_equal(ng.graph.weight_utility(g, "flat"), np.ones(12))  # immutable, no params
    np.testing.assert_array_equal(ng.graph.weight_utility(g, "in"), np.ones(2))
    broken = g.replace(params={**g.params, "bn": {"scale": jnp.array([np.nan, 1, np.inf]), "bias": shift}})
    np.testing.assert_array_equal(ng.graph.weight_utility(broken, "bn"), [-100.0, 2.0, -100.0])


def test_initial_value_ewma_and_every(key):
    g = ng.graph.init_activation_utility(small_graph(key))
    assert set(n for n, s in g.state.items() if "utility" in s) == {"conv", "bn", "pool", "out"}
    np.testing.assert_array_equal(g.state["conv"]["utility"], np.full(3, EPS, np.float32))
    np.testing.assert_allclose(
        ng.graph.utility_ewma([1.0, 2, 3, 4], [5.0, 6, 7, 8], 0.3), [3.8, 4.8, 5.8, 6.8], rtol=1e-6
    )
    valid(g)
    grads = {"out": jnp.array([[2.0, 4.0]])}
    seen = []
    for step in range(6):
        g = ng.graph.update_activation_utility(g, grads, alpha=0.5, step=step, every=3)
        seen.append(float(g.state["out"]["utility"][0]))
        grads = {"out": grads["out"] * 10}
    # updates happen at steps 0 and 3 (new, old, old, new, old, old)
    assert seen[0] == pytest.approx(0.5 * EPS + 1.0) and seen[1] == seen[2] == seen[0]
    assert seen[3] == pytest.approx(0.5 * seen[0] + 0.5 * 2000.0) and seen[4] == seen[5] == seen[3]


def test_probes_give_mean_abs_mean_spatial_activation_times_gradient_under_jit(key):
    g = ng.graph.init_activation_utility(small_graph(key))
    x = jax.random.normal(jax.random.key(1), (5, 4, 4, 2))
    y = jax.random.normal(jax.random.key(2), (5, 2))

    def loss_from(params, probes):
        out, _ = forward(g.replace(params=params), (x,), train=False, key=None, probes=probes)
        return jnp.mean((out[0] - y) ** 2)

    @jax.jit
    def step(graph):
        probes = ng.graph.utility_probes(graph, 5)
        grads = jax.grad(loss_from, argnums=1)(graph.params, probes)
        return ng.graph.update_activation_utility(graph, grads, alpha=0.05)

    updated = step(g)
    # Reference: the activation of "bn" and the gradient of the loss with respect to it.
    spec = g.spec
    sub = ng.GraphSpec.create([(v.name, v.op, v.inputs) for v in spec.vertices], spec.inputs, ("bn",))
    a = ng.Graph(sub, g.params, g.state)(x)

    def rest(a_bn):
        pooled = spec["pool"].op.apply({}, {}, (a_bn,), train=False, key=None)[0]
        flat = spec["flat"].op.apply({}, {}, (pooled,), train=False, key=None)[0]
        out = spec["out"].op.apply(g.params["out"], {}, (flat,), train=False, key=None)[0]
        return jnp.mean((out - y) ** 2)

    grad = jax.jit(jax.grad(rest))(a)
    expected = np.mean(np.abs(np.mean(np.asarray(a * grad), axis=(1, 2))), axis=0)
    np.testing.assert_allclose(updated.state["bn"]["utility"], 0.05 * EPS + 0.95 * expected, rtol=1e-4, atol=1e-9)
    probed = jax.jit(lambda g, probes: forward(g, (x,), train=False, key=None, probes=probes)[0][0])
    out_probe = probed(g, ng.graph.utility_probes(g, 5))
    np.testing.assert_array_equal(out_probe, g(x))


def test_mask_excludes_padded_rows(key):
    g = ng.graph.init_activation_utility(small_graph(key))
    grads = {"out": jnp.array([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]])}
    u = ng.graph.update_activation_utility(g, grads, alpha=0.0, mask=jnp.array([1, 1, 0]))
    np.testing.assert_allclose(u.state["out"]["utility"], [3.0, 3.0])


def test_stored_utility_is_remapped_by_surgery_and_kept_by_training(key):
    inp = ng.input_vertex("in", shape=(3,))
    d1 = ng.vertex("d1", ng.Dense(4), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), bn))
    g = ng.graph.init_activation_utility(g)
    values = jnp.array([4.0, 1.0, 3.0, 2.0])
    g = g.replace(state={**g.state, "d1": {"utility": values}, "bn": {**g.state["bn"], "utility": values}})
    assert ng.graph.default_utility(g, "d1").tolist() == [4.0, 1.0, 3.0, 2.0]
    g2 = valid(ng.delta_nout(g, {"d1": -1}))  # the stored utility decides: neuron 1 goes
    assert g2.state["d1"]["utility"].tolist() == [4.0, 3.0, 2.0]
    g3 = valid(ng.delta_nout(g2, {"d1": 2}))
    np.testing.assert_array_equal(g3.state["bn"]["utility"], np.array([4.0, 3.0, 2.0, EPS, EPS], np.float32))
    np.testing.assert_array_equal(g3.state["bn"]["var"][3:], [1.0, 1.0])
    g4 = valid(ng.insert_vertex(g3, "bn", ng.Dense(5), "extra"))
    np.testing.assert_array_equal(g4.state["extra"]["utility"], np.full(5, EPS, np.float32))
    _, trained = ng.apply(g4, jnp.ones((2, 3)), train=True)
    assert "utility" in trained.state["bn"] and "mean" in trained.state["bn"]


def test_xor_pruning_by_activation_utility(key):
    inp = ng.input_vertex("input", shape=(2,))
    hidden = ng.vertex("hidden", ng.Dense(32, "relu"), inp)
    graph = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(1, "sigmoid"), hidden))
    graph = ng.graph.init_activation_utility(graph)
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = jnp.array([[0.0], [1.0], [1.0], [0.0]])
    opt = optax.adam(0.1)

    def loss(g):
        return float(jnp.mean((g(x) - y) ** 2))

    @jax.jit
    def step(g, opt_state):
        def f(params, probes):
            out, _ = forward(g.replace(params=params), (x,), train=True, key=None, probes=probes)
            return jnp.mean((out[0] - y) ** 2)

        grads, probe_grads = jax.grad(f, argnums=(0, 1))(g.params, ng.graph.utility_probes(g, 4))
        updates, opt_state = opt.update(grads, opt_state)
        g = g.replace(params=optax.apply_updates(g.params, updates))
        return ng.graph.update_activation_utility(g, probe_grads), opt_state

    opt_state = opt.init(graph.params)
    for _ in range(50):
        graph, opt_state = step(graph, opt_state)
    assert loss(graph) < 0.001

    def most(g, name):
        vals = ng.graph.default_utility(g, name)
        return 2 * vals.sum() - vals

    rand = lambda g, name: np.random.default_rng(0).random(g.nout(name))
    pruned_least = ng.delta_nout(graph, {"hidden": -16})
    pruned_most = ng.delta_nout(graph, {"hidden": -16}, utility=most)
    pruned_random = ng.delta_nout(graph, {"hidden": -16}, utility=rand)
    assert loss(pruned_most) > loss(pruned_random) > loss(pruned_least) >= loss(graph) - 1e-7
    assert loss(pruned_least) == pytest.approx(loss(graph), abs=1e-5)
