import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng


def _bn_graph(key):
    inp = ng.input_vertex("in", shape=(4,))
    d1 = ng.vertex("d1", ng.Dense(6, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), bn))


def _data(key, n=16):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, 4)), jax.random.normal(ky, (n, 2))


def _param_names(tree):
    return sorted((v, p) for v, ps in tree.items() for p in ps)


def test_trainable_holds_params_only_and_rest_holds_state_only(key):
    g = _bn_graph(key)
    trainable, rest = ng.partition(g)
    assert trainable.spec == g.spec and rest.spec == g.spec
    assert len(jax.tree_util.tree_leaves(trainable)) == len(jax.tree_util.tree_leaves(g.params)) == 6
    assert jax.tree_util.tree_leaves(trainable.state) == []
    assert jax.tree_util.tree_leaves(rest.params) == []
    assert len(jax.tree_util.tree_leaves(rest.state)) == len(jax.tree_util.tree_leaves(g.state)) == 2


def test_grad_through_combine_reaches_every_param_and_no_running_statistic(key):
    g = _bn_graph(key)
    x, y = _data(jax.random.key(1))
    trainable, rest = ng.partition(g)

    def loss(t):
        out, _ = ng.apply(ng.combine(t, rest), x, train=True)
        return jnp.mean((out - y) ** 2)

    grads = jax.grad(loss)(trainable)
    assert _param_names(grads.params) == _param_names(g.params)
    for leaf in jax.tree_util.tree_leaves(grads.params):
        assert float(jnp.abs(leaf).sum()) > 0
    assert jax.tree_util.tree_leaves(grads.state) == []

    # the gradient equals the one taken on the whole graph's params
    def whole(params):
        out, _ = ng.apply(g.replace(params=params), x, train=True)
        return jnp.mean((out - y) ** 2)

    ref = jax.grad(whole)(g.params)
    for a, b in zip(jax.tree_util.tree_leaves(grads.params), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_combine_of_partition_is_the_graph_leaf_for_leaf(key):
    g = _bn_graph(key)
    _, g = ng.apply(g, _data(jax.random.key(2))[0], train=True)  # running statistics away from their init
    back = ng.combine(*ng.partition(g))
    assert back.spec == g.spec
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(g)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(g)):
        assert a is b


def test_optax_loop_trains_params_and_leaves_running_statistics_to_apply(key):
    g = _bn_graph(key)
    x, y = _data(jax.random.key(3))
    trainable, rest = ng.partition(g)
    opt = optax.adam(1e-2)
    opt_state = opt.init(trainable)

    @jax.jit
    def step(trainable, rest, opt_state):
        def loss(t):
            out, _ = ng.apply(ng.combine(t, rest), x, train=False)
            return jnp.mean((out - y) ** 2)

        value, grads = jax.value_and_grad(loss)(trainable)
        updates, opt_state = opt.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, value

    losses = []
    for _ in range(20):
        trainable, opt_state, value = step(trainable, rest, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.8 * losses[0]
    trained = ng.combine(trainable, rest)
    assert float(jnp.abs(trained.params["d2"]["kernel"] - g.params["d2"]["kernel"]).max()) > 1e-3
    # the optimiser never saw the running statistics: they are bitwise the initial ones
    for name in g.state["bn"]:
        np.testing.assert_array_equal(np.asarray(trained.state["bn"][name]), np.asarray(g.state["bn"][name]))
    assert jax.tree_util.tree_leaves(opt_state[0].mu.state) == []


def test_combine_refuses_different_specs_and_non_graphs(key):
    g = _bn_graph(key)
    inp = ng.input_vertex("in", shape=(4,))
    other = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), inp))
    with pytest.raises(ng.GraphError, match="vertex 'd1'"):
        ng.combine(ng.partition(g)[0], ng.partition(other)[1])
    with pytest.raises(TypeError, match=r"rest must be an ng\.Graph"):
        ng.combine(ng.partition(g)[0], {"bn": {}})
    with pytest.raises(TypeError, match=r"graph must be an ng\.Graph"):
        ng.partition(g.params)
