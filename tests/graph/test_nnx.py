"""``flax.nnx`` export: the module computes what the graph computes, trains with nnx.Optimizer, and comes back."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import naivega_jax as ng
from naivega_jax.graph import NnxGraphModule, from_nnx, to_nnx


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def randomised(g, seed=1):
    """``g`` with every array perturbed (outputs stay O(1)): biases non-zero, batch-norm statistics not 0/1."""
    rng = np.random.default_rng(seed)
    noisy = lambda a: jnp.asarray(np.asarray(a) * rng.uniform(0.5, 1.5, a.shape) + rng.uniform(0.1, 0.3, a.shape))
    return g.replace(params=jax.tree.map(noisy, g.params), state=jax.tree.map(noisy, g.state))


def conv_graph(key):
    inp = ng.input_vertex("img", shape=(6, 6, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, activation="relu"), inp)
    c2 = ng.vertex("c2", ng.Conv(2, (1, 1)), inp)
    cat = ng.concat("cat", c1, c2)
    bn = ng.vertex("bn", ng.BatchNorm("tanh"), cat)
    c3 = ng.vertex("c3", ng.Conv(5, 3), bn)
    res = ng.add("res", bn, c3)
    pooled = ng.vertex("avg", ng.AvgPool(1), ng.vertex("pool", ng.MaxPool(2), res))
    gp = ng.vertex("gp", ng.GlobalPool("mean"), pooled)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), gp))


def dropout_graph(key):
    inp = ng.input_vertex("in", shape=(6,))
    d1 = ng.vertex("d1", ng.Dense(64, "relu"), inp)
    dr = ng.vertex("dr", ng.Dropout(0.5), d1)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(4), dr))


def assert_graphs_equal(a, b):
    assert a.spec == b.spec
    for tree_a, tree_b in ((a.params, b.params), (a.state, b.state)):
        assert jax.tree.structure(tree_a) == jax.tree.structure(tree_b)
        for x, y in zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)):
            np.testing.assert_array_equal(x, y)


def test_nnx_module_equals_graph_in_inference_and_training(key):
    g = randomised(conv_graph(key))
    model = to_nnx(g)
    assert isinstance(model, nnx.Module) and isinstance(model, NnxGraphModule)
    x = data((2, 6, 6, 2))
    np.testing.assert_allclose(model(x), g(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(model, x), g(x), rtol=0, atol=1e-6)

    y_ng, g_trained = ng.apply(g, x, train=True)
    np.testing.assert_allclose(model(x, train=True), y_ng, rtol=0, atol=1e-6)
    for k in ("mean", "var"):
        np.testing.assert_allclose(model.batch_stats["bn"][k][...], g_trained.state["bn"][k], rtol=1e-6, atol=1e-7)
        assert not np.allclose(model.batch_stats["bn"][k][...], g.state["bn"][k])
    # inference uses the updated statistics, and the graph handed in is untouched
    np.testing.assert_allclose(model(x), g_trained(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(to_nnx(g)(x), g(x), rtol=0, atol=1e-6)


def test_variables_are_params_and_batch_stats(key):
    g = conv_graph(key)
    model = to_nnx(g)
    params = nnx.state(model, nnx.Param)
    stats = nnx.state(model, nnx.BatchStat)
    shapes = lambda t: jax.tree.map(jnp.shape, t)
    assert shapes(nnx.to_pure_dict(params)["params"]) == shapes(g.params)
    assert shapes(nnx.to_pure_dict(stats)["batch_stats"]) == shapes(g.state) == {"bn": {"mean": (5,), "var": (5,)}}
    assert sum(a.size for a in jax.tree.leaves(params)) == ng.nparams(g) == 321


def test_multi_input_multi_output(key):
    a = ng.input_vertex("a", shape=(3,))
    b = ng.input_vertex("b", shape=(4,))
    s = ng.add("sum", ng.vertex("da", ng.Dense(2), a), ng.vertex("db", ng.Dense(2), b))
    g = randomised(ng.build_graph(key, inputs=[a, b], outputs=[s, ng.concat("cat", a, b)]))
    model = to_nnx(g)
    xa, xb = data((5, 3), 1), data((5, 4), 2)
    for got in (model(xa, xb), model({"a": xa, "b": xb})):
        for y, ref in zip(got, g(xa, xb)):
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6)


def test_optimizer_trains_params_only_and_batch_stats_follow_the_running_average(key):
    g = conv_graph(key)
    model = to_nnx(g)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    x, y = data((16, 6, 6, 2), 3), data((16, 3), 4)

    def loss_fn(model, x, y):
        return jnp.mean((model(x, train=True) - y) ** 2)

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss, grads

    before = from_nnx(model)
    losses = []
    for _ in range(8):
        previous = from_nnx(model)
        loss, grads = step(model, optimizer, x, y)
        losses.append(float(loss))
        # the gradients, and so the updates, cover the params only
        assert set(nnx.to_pure_dict(grads)) == {"params"}
        # batch statistics moved only by the running average ng.apply computes, not by the optimiser
        _, expected = ng.apply(previous, x, train=True)
        for k in ("mean", "var"):
            np.testing.assert_allclose(model.batch_stats["bn"][k][...], expected.state["bn"][k], rtol=1e-5, atol=1e-6)
    assert losses[-1] < 0.8 * losses[0], losses
    assert not np.allclose(model.params["c3"]["kernel"][...], before.params["c3"]["kernel"])
    opt_leaves = jax.tree.leaves(nnx.state(optimizer.opt_state))
    assert sum(a.size for a in opt_leaves) == 2 * ng.nparams(g) + 1  # adam's mu, nu and the count


def test_round_trip_back_to_a_graph(key):
    g = randomised(conv_graph(key))
    assert_graphs_equal(from_nnx(to_nnx(g)), g)
    model = to_nnx(g)
    x = data((4, 6, 6, 2))
    y_trained = model(x, train=True)
    back = from_nnx(model)
    assert isinstance(back, ng.Graph)
    np.testing.assert_allclose(back(x), model(x), rtol=0, atol=1e-6)
    _, g_trained = ng.apply(g, x, train=True)
    np.testing.assert_allclose(back.state["bn"]["mean"], g_trained.state["bn"]["mean"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ng.apply(g, x, train=True)[0], y_trained, rtol=0, atol=1e-6)
    # the graph back is an ordinary graph: surgery works on it
    wider = ng.delta_nout(back, {"c1": 2})
    assert wider.nout("c1") == 5 and wider(x).shape == (4, 3)


def test_dropout_key_is_the_key_ng_apply_takes(key):
    g = dropout_graph(key)
    model = to_nnx(g)
    x = data((8, 6))
    np.testing.assert_allclose(model(x), g(x), rtol=0, atol=1e-6)
    for seed in (1, 2):
        k = jax.random.key(seed)
        np.testing.assert_allclose(model(x, train=True, rngs=k), ng.apply(g, x, train=True, key=k)[0], atol=1e-6)
    # an nnx.Rngs draws its dropout stream's next key: nnx folds the stream's count into its key
    k = jax.random.key(3)
    drawn = model(x, train=True, rngs=nnx.Rngs(dropout=k))
    np.testing.assert_allclose(drawn, ng.apply(g, x, train=True, key=jax.random.fold_in(k, 0))[0], atol=1e-6)


def test_dropout_stream_given_at_construction_draws_fresh_masks(key):
    inp = ng.input_vertex("in", shape=(400,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("dr", ng.Dropout(0.5), inp))
    model = to_nnx(g, rngs=nnx.Rngs(dropout=0))
    x = np.ones((2, 400), np.float32)
    a, b = np.asarray(model(x, train=True)), np.asarray(model(x, train=True))
    assert set(np.unique(a)) == set(np.unique(b)) == {0.0, 2.0}
    assert 0.3 < (a != b).mean() < 0.7
    np.testing.assert_array_equal(model(x), x)
    # same seed, same sequence of masks
    again = to_nnx(g, rngs=nnx.Rngs(dropout=0))
    np.testing.assert_array_equal(again(x, train=True), a)


def test_errors_name_the_argument(key):
    g = dropout_graph(key)
    with pytest.raises(TypeError, match=r"to_nnx: graph must be an ng\.Graph, got dict"):
        to_nnx({})
    with pytest.raises(TypeError, match=r"from_nnx: model must be .*NnxGraphModule.*got Graph"):
        from_nnx(g)
    with pytest.raises(TypeError, match="rngs must be"):
        to_nnx(g, rngs=3)
    model = to_nnx(g)
    with pytest.raises(ValueError, match=r"Dropout.*needs rngs"):
        model(data((2, 6)), train=True)
    with pytest.raises(TypeError, match="rngs must be"):
        model(data((2, 6)), train=True, rngs="seed")
