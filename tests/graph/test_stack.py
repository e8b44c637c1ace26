import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng


def _graphs(key, n=3, width=6):
    inp = ng.input_vertex("in", shape=(4,))
    d1 = ng.vertex("d1", ng.Dense(width, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    out = ng.vertex("d2", ng.Dense(2), bn)
    return [ng.build_graph(k, inputs=inp, outputs=out) for k in jax.random.split(key, n)]


def test_vmap_over_stacked_graphs_equals_each_graphs_output(key):
    gs = _graphs(key)
    stacked = ng.stack(gs)
    assert stacked.spec == gs[0].spec
    assert stacked.params["d1"]["kernel"].shape == (3, 4, 6)
    assert stacked.state["bn"]["mean"].shape == (3, 6)
    xs = jax.random.normal(jax.random.key(1), (3, 5, 4))
    ys = jax.vmap(lambda g, x: g(x))(stacked, xs)
    assert ys.shape == (3, 5, 2)
    for i, g in enumerate(gs):
        np.testing.assert_allclose(np.asarray(ys[i]), np.asarray(g(xs[i])), rtol=1e-5, atol=1e-6)
    # distinct graphs give distinct outputs: the map really is over the graphs
    assert float(jnp.abs(ys[0] - ys[1]).max()) > 1e-3


def test_unstack_of_stack_round_trips_leaf_for_leaf(key):
    gs = _graphs(key)
    back = ng.unstack(ng.stack(gs))
    assert len(back) == 3
    for g, b in zip(gs, back):
        assert b.spec == g.spec
        assert jax.tree_util.tree_structure(b) == jax.tree_util.tree_structure(g)
        for x, y in zip(jax.tree_util.tree_leaves(b), jax.tree_util.tree_leaves(g)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_stack_refuses_different_specs_naming_the_first_differing_vertex(key):
    a = _graphs(key, n=1)[0]
    b = _graphs(key, n=1, width=7)[0]
    with pytest.raises(ng.GraphError, match=r"graphs\[2\] differs: vertex 'd1'"):
        ng.stack([a, a, b])
    with pytest.raises(ValueError, match="non-empty"):
        ng.stack([])
    with pytest.raises(TypeError, match=r"graphs\[1\] must be an ng\.Graph"):
        ng.stack([a, a.params])


def test_unstack_refuses_an_unstacked_graph(key):
    a = _graphs(key, n=1)[0]
    with pytest.raises(ValueError, match="one leading axis"):
        ng.unstack(a)
