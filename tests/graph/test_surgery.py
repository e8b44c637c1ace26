"""Structural surgery (insert, remove, edges, kernel size, widths) and function preservation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from surgery_helpers import assert_unchanged, lin, ones_kernel, snapshot, valid, with_kernels

import naivega_jax as ng
from naivega_jax.graph._graph import forward

X3 = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)


def chain(key, *sizes, fill=None):
    inp = ng.input_vertex("in", shape=(3,))
    v = inp
    for i, n in enumerate(sizes):
        v = lin(f"v{i + 1}", n, v)
    graph = ng.build_graph(key, inputs=inp, outputs=v)
    return graph if fill is None else with_kernels(graph, fill)


def test_remove_shrinks_when_the_input_is_fixed(key):
    graph = chain(key, 5, 4, fill=ones_kernel)
    np.testing.assert_array_equal(graph(jnp.ones((1, 3))), [[15, 15, 15, 15]])
    snap = snapshot(graph)
    g = valid(ng.remove_vertex(graph, "v1"))
    assert_unchanged(graph, snap)
    assert g.vertex_names == ("in", "v2") and g.nin("v2") == (3,)
    np.testing.assert_array_equal(g(jnp.ones((1, 3))), [[3, 3, 3, 3]])


def test_remove_grows_the_smaller_side_first(key):
    graph = ng.build_graph(
        key,
        inputs=(inp := ng.input_vertex("in", shape=(3,))),
        outputs=lin("out", 2, lin("v3", 6, lin("v2", 4, lin("v1", 5, inp)))),
    )
    g = valid(ng.remove_vertex(graph, "v2"))
    assert g.inputs("v3") == ("v1",) and g.nin("v3") == (5,) and g.nout("v1") == 5
    # v2 grew to 5 before it went: v3 kept v2's 4 input columns and got a zero one
    np.testing.assert_array_equal(g.params["v3"]["kernel"][:4], graph.params["v3"]["kernel"])
    np.testing.assert_array_equal(g.params["v3"]["kernel"][4], np.zeros(6))
    g2 = valid(ng.remove_vertex(g, "v1"))
    assert g2.nin("v3") == (3,) and g2.inputs("v3") == ("in",)


def test_remove_reconnects_at_the_same_position(key):
    inp = ng.input_vertex("in", shape=(3,))
    parts = [lin(f"v{i}", n, inp) for i, n in ((1, 4), (2, 5), (3, 6))]
    graph = ng.build_graph(key, inputs=inp, outputs=lin("v5", 2, ng.concat("c", *parts)))
    g = valid(ng.remove_vertex(graph, "v2"))
    assert g.inputs("c") == ("v1", "in", "v3") and g.nin("c") == (4, 3, 6) and g.nin("v5") == (13,)
    parts = [lin(f"v{i}", 5, inp) for i in (1, 2, 3)]
    graph = ng.build_graph(key, inputs=inp, outputs=lin("v5", 2, ng.add("a", *parts)))
    g = valid(ng.remove_vertex(graph, "v2"))
    assert g.inputs("a") == ("v1", "in", "v3") and g.nin("a") == (3, 3, 3) and g.nin("v5") == (3,)


def test_insert_vertex_rewires_and_is_identity(key):
    inp = ng.input_vertex("in", shape=(3,))
    graph = with_kernels(ng.build_graph(key, inputs=inp, outputs=lin("L", 5, inp)), ones_kernel)
    snap = snapshot(graph)
    g = valid(ng.insert_vertex(graph, "in", ng.Dense(3, use_bias=False), "new"))
    assert_unchanged(graph, snap)
    assert len(g.vertex_names) == 3 and g.inputs("L") == ("new",) and g.inputs("new") == ("in",)
    np.testing.assert_array_equal(g(jnp.ones((1, 3))), [[3, 3, 3, 3, 3]])
    ones = g.replace(params={**g.params, "new": {"kernel": jnp.ones((3, 3))}})
    np.testing.assert_array_equal(ones(jnp.ones((1, 3))), [[9, 9, 9, 9, 9]])


def test_insert_only_for_selected_outputs(key):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = lin("v1", 4, inp)
    graph = ng.build_graph(key, inputs=inp, outputs=[lin("a", 2, v1), lin("b", 2, v1)])
    g = valid(ng.insert_vertex(graph, "v1", ng.Dense(4, "relu"), "n", outputs=lambda outs: [outs[1]]))
    assert g.inputs("a") == ("v1",) and g.inputs("b") == ("n",)
    g = valid(ng.insert_vertex(graph, "v1", ng.BatchNorm(), "bn", outputs=["a"]))
    assert g.inputs("a") == ("bn",) and g.inputs("b") == ("v1",)
    with pytest.raises(ng.GraphError, match="not a consumer"):
        ng.insert_vertex(graph, "v1", ng.BatchNorm(), "bn", outputs=["in"])
    with pytest.raises(ng.SizeChangeError, match="must equal nout"):
        ng.insert_vertex(graph, "v1", ng.Dense(5), "n")
    with pytest.raises(ng.GraphError, match="already exists"):
        ng.insert_vertex(graph, "v1", ng.Dense(4), "a")


def test_insert_after_a_graph_output_becomes_the_output(key):
    graph = chain(key, 4, 2)
    g = valid(ng.insert_vertex(graph, "v2", ng.Dense(2), "post"))
    assert g.output_names == ("post",)
    np.testing.assert_allclose(g(X3), graph(X3), atol=1e-6)


def test_remove_refuses_a_size_cycle(key):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = lin("v1", 4, inp)
    v4 = ng.add("v4", ng.concat("cat", lin("v2a", 2, v1), lin("v2b", 2, v1)), v1)
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, v4))
    snap = snapshot(graph)
    with pytest.raises(ng.SizeChangeError, match="size cycle"):
        ng.remove_vertex(graph, "v2b")
    assert_unchanged(graph, snap)


def test_remove_vertex_errors(key):
    inp = ng.input_vertex("in", shape=(3,))
    a, b = lin("a", 2, inp), lin("b", 2, inp)
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, ng.concat("c", a, b)))
    with pytest.raises(ng.GraphError, match="input"):
        ng.remove_vertex(graph, "in")
    with pytest.raises(ng.GraphError, match="would get 2 inputs"):
        ng.remove_vertex(graph, "c")
    with pytest.raises(ng.GraphError, match="no vertex named"):
        ng.remove_vertex(graph, "zz")


def conv_bn_graph(key):
    """Reference check 14's Conv -> BN -> Conv, with a pooled dense head."""
    inp = ng.input_vertex("in", shape=(5, 5, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, use_bias=False), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), c1)
    c2 = ng.vertex("c2", ng.Conv(4, 3), bn)
    pool = ng.vertex("pool", ng.GlobalPool("mean"), c2)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), pool))


def dense_graph(key):
    """Reference check 14's Dense(3->3) -> Dense(3->4) -> Dense(4->2)."""
    inp = ng.input_vertex("in", shape=(3,))
    d2 = ng.vertex("d2", ng.Dense(4, "tanh"), ng.vertex("d1", ng.Dense(3, "tanh"), inp))
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("d3", ng.Dense(2), d2))


def x_for(graph):
    shape = graph.shape(graph.input_names[0])
    return jax.random.normal(jax.random.key(7), (4, *shape))


def new_entries(graph, changed):
    """Masks of the entries of ``changed`` that surgery created: kept entries keep a sentinel value."""
    marker = jax.tree_util.tree_map(lambda a: jnp.full_like(a, 777.0), graph.params)
    return jax.tree_util.tree_map(lambda a: np.asarray(a) != 777.0, changed(graph.replace(params=marker)).params)


@jax.jit
def sgd_step(graph, x, y):
    def loss(params):
        out, _ = forward(graph.replace(params=params), (x,), train=True, key=None)
        return jnp.mean((out[0] - y) ** 2)

    grads = jax.grad(loss)(graph.params)
    return graph.replace(params=jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, graph.params, grads))


@pytest.mark.parametrize("make, name, consumer", [(dense_graph, "d1", "d2"), (conv_bn_graph, "c1", "c2")])
def test_width_increase_preserves_function_and_new_neurons_train(key, make, name, consumer):
    graph = make(key)
    x = x_for(graph)
    change = lambda g: ng.delta_nout(g, {name: 2}, key=jax.random.key(3))
    g = valid(change(graph))
    assert g.nout(name) == graph.nout(name) + 2
    np.testing.assert_allclose(g(x), graph(x), atol=1e-5)
    masks = new_entries(graph, change)
    fan_out = np.asarray(g.params[consumer]["kernel"])[masks[consumer]["kernel"]]
    assert fan_out.size > 0 and np.all(fan_out == 0)
    y = jax.random.normal(jax.random.key(8), g(x).shape)
    step1 = sgd_step(g, x, y)
    step2 = sgd_step(step1, x, y)
    # One step moves every zero fan-out weight of the new neurons; their fan-in and biases get a gradient once
    # the fan-out is non-zero, so after two steps every new entry has moved.
    assert np.all(np.asarray(step1.params[consumer]["kernel"])[masks[consumer]["kernel"]] != 0)
    moved = 0
    leaves = jax.tree_util.tree_leaves
    for before, after, mask in zip(leaves(g.params), leaves(step2.params), leaves(masks)):
        assert np.all(np.asarray(after)[mask] != np.asarray(before)[mask])
        moved += int(mask.sum())
    assert moved > fan_out.size


def test_identity_insert_preserves_function_dense_and_conv_bn(key):
    graph = dense_graph(key)
    x = x_for(graph)
    for after in ("d1", "d2"):
        g = valid(ng.insert_vertex(graph, after, ng.Dense(graph.nout(after)), f"{after}_id"))
        np.testing.assert_allclose(g(x), graph(x), atol=1e-5)
    graph = conv_bn_graph(key)
    x = x_for(graph)
    for after, op in (("c1", ng.Conv(3, 3)), ("bn", ng.Conv(3, (1, 3))), ("c2", ng.BatchNorm())):
        g = valid(ng.insert_vertex(graph, after, op, f"{after}_id"))
        np.testing.assert_allclose(g(x), graph(x), atol=1e-5)


def test_edge_into_concat_preserves_function_dense_and_conv_bn(key):
    inp = ng.input_vertex("in", shape=(3,))
    a, b, extra = lin("a", 2, inp), lin("b", 3, inp), ng.vertex("extra", ng.Dense(4, "relu"), inp)
    cat = ng.concat("cat", a, b)
    res = ng.add("res", cat, lin("side", 5, inp))
    graph = ng.build_graph(key, inputs=inp, outputs=[lin("out", 2, res), lin("out2", 2, extra)])
    snap = snapshot(graph)
    g = valid(ng.add_edge(graph, "extra", "cat"))
    assert_unchanged(graph, snap)
    assert g.nin("cat") == (2, 3, 4) and g.nout("side") == 9 and g.nout("res") == 9
    np.testing.assert_allclose(g(X3)[0], graph(X3)[0], atol=1e-5)

    img = ng.input_vertex("in", shape=(5, 5, 2))
    c1, c2 = ng.vertex("c1", ng.Conv(3, 3), img), ng.vertex("c2", ng.Conv(2, 3), img)
    c3 = ng.vertex("c3", ng.Conv(4, 1), img)
    bn = ng.vertex("bn", ng.BatchNorm("relu"), ng.concat("cat", c1, c2))
    head = ng.vertex("out", ng.Dense(2), ng.vertex("pool", ng.GlobalPool(), ng.vertex("c4", ng.Conv(3, 3), bn)))
    graph = ng.build_graph(key, inputs=img, outputs=[head, ng.vertex("p3", ng.GlobalPool(), c3)])
    g = valid(ng.add_edge(graph, "c3", "cat"))
    assert g.nout("bn") == 9
    x = x_for(graph)
    np.testing.assert_allclose(g(x)[0], graph(x)[0], atol=1e-5)


def test_add_edge_into_an_add_aligns_sizes(key):
    inp = ng.input_vertex("in", shape=(3,))
    a, b, c = lin("a", 4, inp), lin("b", 4, inp), lin("c", 6, inp)
    graph = ng.build_graph(key, inputs=inp, outputs=[lin("out", 2, ng.add("s", a, b)), lin("o2", 2, c)])
    g = valid(ng.add_edge(graph, "c", "s"))
    assert g.inputs("s") == ("a", "b", "c")
    assert g.nout("a") == g.nout("b") == g.nout("c") == g.nout("s")
    with pytest.raises(ng.GraphError, match="cannot take another input"):
        ng.add_edge(graph, "c", "a")
    with pytest.raises(ng.GraphError, match="cyclic"):
        ng.add_edge(graph, "s", "s")


def test_add_edge_refuses_a_size_cycle(key):
    inp = ng.input_vertex("in", shape=(3,))
    a = lin("a", 4, inp)
    cat = ng.concat("cat", lin("b", 2, inp), lin("c", 2, inp))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, ng.add("s", cat, a)))
    with pytest.raises(ng.SizeChangeError, match="size cycle"):
        ng.add_edge(graph, "a", "cat")


def test_remove_edge_from_concat_and_add(key):
    inp = ng.input_vertex("in", shape=(3,))
    v1, v3 = lin("v1", 3, inp), lin("v3", 4, inp)
    cat = ng.concat("v4", v1, v3)
    res = ng.add("res", cat, lin("side", 7, inp))
    graph = ng.build_graph(key, inputs=inp, outputs=[lin("out", 2, res), lin("v2", 2, v1)])
    g = valid(ng.remove_edge(graph, "v1", "v4"))
    assert g.inputs("v4") == ("v3",) and g.nout("side") == 4 and g.nout("res") == 4
    # the head keeps exactly the weights of v3's part
    np.testing.assert_array_equal(g.params["out"]["kernel"], graph.params["out"]["kernel"][3:])
    np.testing.assert_array_equal(g.params["side"]["kernel"], graph.params["side"]["kernel"][:, 3:])
    g(X3)
    added = ng.add("s", lin("a", 4, inp), lin("b", 4, inp))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, added))
    g = valid(ng.remove_edge(graph, "a", "s"))
    assert g.inputs("s") == ("b",) and "a" not in g.vertex_names and "a" not in g.params
    with pytest.raises(ng.GraphError, match="not an input"):
        ng.remove_edge(graph, "in", "s")
    with pytest.raises(ng.GraphError, match="at least 1"):
        ng.remove_edge(g, "b", "s")


def test_kernel_size_keeps_output_shape(key):
    inp = ng.input_vertex("in", shape=(7, 7, 2))
    conv = ng.Conv(3, (3, 5), padding=((1, 1), (2, 2)))
    graph = ng.build_graph(key, inputs=inp, outputs=ng.vertex("c", conv, inp))
    g = valid(ng.resize_kernel(graph, "c", (1, 2)))
    assert g.op("c").kernel_size == (1, 2) and g.shape("c") == (7, 7, 3)
    # the central row survives; along the 5-wide axis the two kept taps are the ones nearest the centre
    kernel = np.asarray(graph.params["c"]["kernel"])
    kept = np.asarray(g.params["c"]["kernel"])
    assert any(np.array_equal(kept, kernel[1:2, s : s + 2]) for s in (1, 2))
    g2 = valid(ng.resize_kernel(g, "c", (4, 6)))
    assert g2.op("c").kernel_size == (4, 6) and g2.shape("c") == (7, 7, 3)
    np.testing.assert_array_equal(np.asarray(g2.params["c"]["kernel"])[1:2, 2:4], kept)
    x = jnp.ones((1, 7, 7, 2))
    assert g2(x).shape == graph(x).shape


def test_resize_kernel_same_padding_and_errors(key):
    inp = ng.input_vertex("in", shape=(6, 6, 2))
    graph = ng.build_graph(key, inputs=inp, outputs=ng.vertex("c", ng.Conv(3, 3, padding="VALID"), inp))
    g = valid(ng.resize_kernel(graph, "c", 5))
    assert g.shape("c") == (4, 4, 3) and g.op("c").padding == ((1, 1), (1, 1))
    with pytest.raises(ng.GraphError, match="negative padding"):
        ng.resize_kernel(graph, "c", 1)
    same = ng.build_graph(key, inputs=inp, outputs=ng.vertex("c", ng.Conv(3, 3), inp))
    assert valid(ng.resize_kernel(same, "c", (5, 1))).op("c").padding == "SAME"
    with pytest.raises(ng.GraphError, match="not a Conv"):
        ng.resize_kernel(chain(key, 2), "v1", 3)


def test_new_weights_are_reproducible_from_the_key(key):
    graph = dense_graph(key)
    a = ng.delta_nout(graph, {"d1": 3}, key=jax.random.key(5))
    b = ng.delta_nout(graph, {"d1": 3}, key=jax.random.key(5))
    c = ng.delta_nout(graph, {"d1": 3}, key=jax.random.key(6))
    d = ng.delta_nout(graph, {"d1": 3})
    np.testing.assert_array_equal(a.params["d1"]["kernel"], b.params["d1"]["kernel"])
    assert not np.array_equal(a.params["d1"]["kernel"], c.params["d1"]["kernel"])
    np.testing.assert_array_equal(d.params["d1"]["kernel"], ng.delta_nout(graph, {"d1": 3}).params["d1"]["kernel"])
