import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mutation_helpers import dense_chain

import naivega_jax as ng


def only(*names):
    return lambda graph, m: list(names)


def dense_out(key, nin, n, out=2):
    """in(nin) -> v(n) -> out(out): v is not a graph output, so its size may change."""
    inp = ng.input_vertex("in", shape=(nin,))
    v = ng.vertex("v", ng.Dense(n), inp)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(out), v))


# --- NoutMutation (check 22) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("x, expected", [(0.1, 110), (-0.1, 90)])
def test_nout_forced(key, x, expected):
    g = dense_out(key, 1, 100)
    assert ng.NoutMutation(x, x)(key, g, ["v"]).nout("v") == expected


def test_nout_sequence_with_mocked_uniform(key, mock_uniform):
    mock_uniform([0.5])
    g = dense_out(key, 3, 11)
    expected = [(ng.NoutMutation(0.4), 14), (ng.NoutMutation(-0.4), 11), (ng.NoutMutation(-0.001), 10)]
    expected += [(ng.NoutMutation(0.001), 11), (ng.NoutMutation(-0.1, 0.3), 13)]
    for m, n in expected:
        g = m(key, g, ["v"])
        assert g.nout("v") == n
        ng.validate_graph(g)


def test_nout_skips_input_and_too_small(key, mock_uniform):
    mock_uniform([0.5])
    g = dense_out(key, 3, 1)
    assert ng.NoutMutation(0.4)(key, g, ["in"]) is g
    assert ng.NoutMutation(-0.8, -1.0)(key, g, ["v"]) is g


def test_nout_hidden_size_one(key, mock_uniform):
    mock_uniform([0.5])
    inp = ng.input_vertex("in", shape=(3,))
    v2 = ng.concat("v2", ng.vertex("v0", ng.Dense(1), inp), ng.vertex("v1", ng.Dense(1), inp))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), v2))
    g2 = ng.NoutMutation(-1)(key, g, ["v2"])
    assert g2.nout("v2") == 2 and g2.nin("v2") == (1, 1)


def test_nout_vector_one_problem(key, mock_uniform):
    mock_uniform([0.5])
    g = dense_chain(key, 3, 4, 5, 6, 7, names=["v1", "v2", "v3", "v4"])
    g2 = ng.NoutMutation(0.8)(key, g, ["in", "v2", "v3"])
    assert [g2.nout(n) for n in ("v1", "v2", "v3", "v4")] == [4, 7, 9, 7]
    assert g2.nin("v4") == (9,)


def test_nout_keeps_function_on_growth(key):
    g = dense_chain(key, 3, 4, 5, 2, activation="relu")
    g2 = ng.VertexMutation(ng.NoutMutation(0.5, 0.5))(key, g)
    assert (g2.nout("d1"), g2.nout("d2"), g2.nout("d3")) == (6, 8, 2)
    x = jax.random.normal(key, (4, 3))
    np.testing.assert_allclose(g2(x), g(x), atol=1e-5)


def test_nout_infeasible_warns_and_keeps(key, caplog, monkeypatch):
    g = dense_out(key, 3, 5)

    def fail(*args, **kwargs):
        raise ng.SizeChangeError("no consistent sizes")

    monkeypatch.setattr("naivega_jax.mutation._nout.delta_nout", fail)
    with caplog.at_level(logging.WARNING, logger="naivega_jax.mutation"):
        assert ng.NoutMutation(0.5, 0.5)(key, g, ["v"]) is g
    assert "Could not change nout of v by +3. No change!" in caplog.text


def test_nout_tied_vertices_take_first_change(key, mock_uniform):
    inp = ng.input_vertex("in", shape=(3,))
    a, b = ng.vertex("a", ng.Dense(4), inp), ng.vertex("b", ng.Dense(4), inp)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), ng.add("s", a, b)))
    m = ng.NoutMutation(-0.5, 0.5)
    mock_uniform([1.0, 0.0, 0.0])
    assert m.deltas(key, g, ["a", "b", "s"]) == {"a": 2}
    g2 = m(key, g, ["a", "b", "s"])
    assert g2.nin("s") == (6, 6) and g2.nin("out") == (6,)


def test_nout_bad_configuration():
    with pytest.raises(ValueError, match="NoutMutation"):
        ng.NoutMutation(float("inf"))
    with pytest.raises(TypeError, match="utility"):
        ng.NoutMutation(0.1, utility=3)


# --- AddVertexMutation (check 23) -------------------------------------------------------------------------------
def test_add_vertex_identity(key):
    inp = ng.input_vertex("in", shape=(3,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("v1", ng.Dense(5), inp))
    space = ng.ArchSpace(ng.DenseSpace(4, "relu"))
    g2 = ng.AddVertexMutation(space)(key, g, ["in"])
    (new,) = g2.inputs("v1")
    assert new != "in" and g2.nin("v1") == (3,)
    x = jnp.arange(1.0, 4.0)[None]
    to_new = g2.replace(spec=g2.spec.replace_entries(outputs=[new]))  # the new vertex maps 1:3 to itself
    np.testing.assert_allclose(to_new(x), x)
    np.testing.assert_allclose(g2(x), g(x), atol=1e-6)


def test_add_vertex_outselect(key):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(5), inp)
    v2, v3 = ng.vertex("v2", ng.Dense(2), v1), ng.vertex("v3", ng.Dense(1), v1)
    g = ng.build_graph(key, inputs=inp, outputs=[v2, v3])
    m = ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(4, "relu")), outselect=lambda outs: [outs[1]])
    g2 = m(key, g, ["v1"])
    assert g2.inputs("v2") == ("v1",)
    assert g2.inputs("v3") != ("v1",)
    assert g2.inputs(g2.inputs("v3")[0]) == ("v1",)


def fan_out(key):
    """v1 read by v2, v3 and v4, and itself a graph output."""
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(5), inp)
    outs = [ng.vertex(f"v{i}", ng.Dense(2), v1) for i in (2, 3, 4)]
    return ng.build_graph(key, inputs=inp, outputs=[*outs, v1])


def test_random_consumers_draws_each_reader_with_p_else_one(mock_uniform):
    pick = ng.mutation.RandomConsumers(0.5)
    readers = ("a", "b", "c", "<output>")
    mock_uniform([0.2, 0.7, 0.4, 0.9])
    assert pick(jax.random.key(0), readers) == ("a", "c")
    # none drawn below p: one reader, chosen by the next draw (0.6 * 4 -> index 2)
    mock_uniform([0.8, 0.9, 0.7, 0.5, 0.6])
    assert pick(jax.random.key(0), readers) == ("c",)
    assert pick(jax.random.key(0), ()) == ()
    with pytest.raises(ValueError, match="RandomConsumers"):
        ng.mutation.RandomConsumers(1.5)


def test_random_consumers_frequencies_and_determinism():
    readers = tuple("abcdef")
    pick = ng.mutation.RandomConsumers(0.5)
    draws = [pick(jax.random.key(i), readers) for i in range(400)]
    counts = {r: sum(r in d for d in draws) / len(draws) for r in readers}
    assert all(0.42 < c < 0.6 for c in counts.values()), counts  # 0.5 plus the rare one-at-random
    assert all(len(d) >= 1 for d in draws)
    assert [pick(jax.random.key(i), readers) for i in range(20)] == draws[:20]
    assert np.mean([len(pick(jax.random.key(i), ("x",))) for i in range(50)]) == 1.0


def test_add_vertex_random_consumers_rewires_the_drawn_readers(key, mock_uniform):
    g = fan_out(key)
    m = ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(4, "identity")), outselect=ng.mutation.RandomConsumers(0.5))
    # readers in order (v2, v3, v4, the graph output): v3 and the output are drawn
    mock_uniform([0.9, 0.1, 0.8, 0.3])
    g2 = m(key, g, ["v1"])
    (new,) = set(g2.vertex_names) - set(g.vertex_names)
    assert g2.inputs("v2") == g2.inputs("v4") == ("v1",)
    assert g2.inputs("v3") == (new,) and g2.inputs(new) == ("v1",)
    assert g2.spec.outputs[-1] == new
    x = jnp.arange(1.0, 4.0)[None]
    for a, b in zip(g2(x), g(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)  # identity start: the same function
    # only the output slot drawn: every consumer keeps reading v1
    mock_uniform([0.9, 0.9, 0.9, 0.1])
    g3 = m(key, g, ["v1"])
    (new,) = set(g3.vertex_names) - set(g.vertex_names)
    assert all(g3.inputs(v) == ("v1",) for v in ("v2", "v3", "v4")) and g3.spec.outputs[-1] == new


def test_autofit_add_vertex_rewires_a_random_part_like_autoflux():
    from naivega_jax.autofit import graph_mutation

    adds = [m for m in _walk(graph_mutation((16, 1))) if isinstance(m, ng.AddVertexMutation)]
    outselects = {type(m.outselect).__name__ for m in adds}
    assert outselects == {"RandomConsumers", "NoneType"}  # new layers: a random half; downsampling: all readers
    assert [m.outselect.p for m in adds if m.outselect is not None] == [0.5]


def _walk(m):
    """``m`` and every mutation nested in its fields."""
    yield m
    if dataclasses.is_dataclass(m):
        for f in dataclasses.fields(m):
            value = getattr(m, f.name)
            for inner in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(inner, (ng.mutation.Mutation, ng.AddVertexMutation)):
                    yield from _walk(inner)


def test_add_vertex_keeps_function_for_composite_spaces(key):
    g = dense_chain(key, 3, 4, 4, 2, activation="relu")
    layer = ng.VertexSpace(ng.DenseSpace(range(2, 6), "relu"))
    for space in (ng.RepeatArchSpace(layer, 2), ng.ForkArchSpace(layer, 2), ng.ResidualArchSpace(layer)):
        g2 = ng.VertexMutation(ng.AddVertexMutation(space), selection=only("d1"))(key, g)
        assert len(g2.vertex_names) > len(g.vertex_names)
        ng.validate_graph(g2)
        x = jax.random.uniform(key, (3, 3))
        np.testing.assert_allclose(g2(x), g(x), atol=1e-5)


def test_add_vertex_names_do_not_collide(key):
    g = dense_chain(key, 3, 4, 2)
    m = ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(4, "relu")))
    g2 = m(key, m(key, g, ["d1"]), ["d1"])
    assert len(set(g2.vertex_names)) == len(g2.vertex_names) == 5


def test_add_vertex_skips_shape_changing_space(key, caplog):
    inp = ng.input_vertex("in", shape=(8, 8, 3))
    c = ng.vertex("c", ng.Conv(4, 3), inp)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("o", ng.Conv(2, 3), c))
    space = ng.ArchSpace(ng.PoolSpace(2))
    with caplog.at_level(logging.DEBUG, logger="naivega_jax.mutation"):
        g2 = ng.AddVertexMutation(space)(key, g, ["c"])
    assert g2 is g and "change shape" in caplog.text


# --- RemoveVertexMutation (check 24) ----------------------------------------------------------------------------
@pytest.mark.parametrize("n1", [5, 3])
def test_remove_vertex(key, n1):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(n1), inp)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("v2", ng.Dense(3), v1))
    g2 = ng.RemoveVertexMutation()(key, g, ["v1"])
    assert g2.inputs("v2") == ("in",) and g2.nin("v2") == (3,)
    ng.validate_graph(g2)


def test_remove_vertex_size_cycle_warns(key, caplog):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(4), inp)
    v3 = ng.concat("v3", ng.vertex("v2a", ng.Dense(2), v1), ng.vertex("v2b", ng.Dense(2), v1))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), ng.add("v4", v3, v1)))
    with caplog.at_level(logging.WARNING, logger="naivega_jax.mutation"):
        g2 = ng.RemoveVertexMutation()(key, g, ["v2b"])
    assert g2 is g
    assert "Can not remove vertex v2b! Size cycle detected!" in caplog.text


# --- KernelSizeMutation (check 25) ------------------------------------------------------------------------------
def _conv35(key):
    inp = ng.input_vertex("in", shape=(7, 7, 2))
    op = ng.Conv(2, (3, 5), padding=((1, 1), (2, 2)))
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("c", op, inp))


@pytest.mark.parametrize("m", [ng.KernelSizeMutation(4), ng.KernelSizeMutation(4, 4)])
def test_kernel_size(key, mock_uniform, m):
    g = _conv35(key)
    x = jnp.ones((2, 7, 7, 2))
    mock_uniform([0.0, 0.12])  # draws -4 and -3 from -4..4
    g2 = m(key, g, ["c"])
    assert g2.op("c").kernel_size == (1, 2) and g2.params["c"]["kernel"].shape[:2] == (1, 2)
    assert g2(x).shape == x.shape
    g3 = ng.KernelSizeMutation(ng.search.Singleton2DParSpace(4), maxsize=lambda graph, n: (4, 10))(key, g2, ["c"])
    assert g3.op("c").kernel_size == (4, 6)
    assert g3(x).shape == x.shape
    ng.validate_graph(g3)


def test_kernel_size_leaves_other_vertices(key):
    g = dense_chain(key, 3, 4, 2)
    assert ng.KernelSizeMutation(2)(key, g, ["d1", "d2"]) is g


def test_kernel_size_bad_configuration():
    for bad in [(-1,), ("a",), ()]:
        with pytest.raises(ValueError, match="KernelSizeMutation"):
            ng.KernelSizeMutation(*bad)
    with pytest.raises(ValueError, match="maxsize"):
        ng.KernelSizeMutation(1, maxsize=0)


# --- AddEdgeMutation --------------------------------------------------------------------------------------------
def _conv_chain(key):
    cl = lambda name, v, n, **kw: ng.vertex(name, ng.Conv(n, 1, **kw), v)
    v0 = ng.input_vertex("in", shape=(5, 4, 3))
    v1 = cl("v1", v0, 4)
    v2 = cl("v2", v1, 5)
    v3 = cl("v3", v2, 3)
    v4 = ng.vertex("v4", ng.MaxPool(2), v3)
    v5 = cl("v5", v4, 4)
    v6 = cl("v6", v5, 3)
    return ng.build_graph(key, inputs=v0, outputs=cl("v7", v6, 2))


def prefer_high(graph, name):
    return np.arange(1.0, graph.nout(name) + 1)


@pytest.mark.parametrize("pconc, kind", [(0.0, "add"), (1.0, "cat")])
def test_add_edge_inserts_merge(key, pconc, kind):
    g = _conv_chain(key)
    x = jnp.ones((2, 5, 4, 3))
    m = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(pconc), utility=prefer_high)
    g1 = m(key, g, ["v1"])
    vm1 = f"v2.{kind}"
    assert g1.outputs("v1") == ("v2", vm1) and g1.outputs(vm1) == ("v3",) and g1.inputs(vm1) == ("v2", "v1")
    assert g1.spec[vm1].shield == ()
    assert g1(x).shape == (2, 2, 2, 2)
    assert m(key, g1, ["v1"]).spec == g1.spec  # selects the merge again, which already has v1
    g2 = m(key, g1, ["v4"])
    vm4 = f"v5.{kind}"
    assert g2.outputs("v4") == ("v5", vm4) and g2.outputs(vm4) == ("v6",) and g2.inputs(vm4) == ("v5", "v4")
    assert g2(x).shape == (2, 2, 2, 2)


def test_add_edge_concat_keeps_function(key):
    g = _conv_chain(key)
    x = jax.random.normal(key, (2, 5, 4, 3))
    g1 = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(1.0))(key, g, ["v1"])
    np.testing.assert_allclose(g1(x), g(x), atol=1e-5)


def test_add_edge_no_candidates(key):
    cl = lambda name, v, n: ng.vertex(name, ng.Conv(n, 1), v)
    v0 = ng.input_vertex("in", shape=(4, 4, 4))
    v1 = cl("v1", v0, 4)
    m = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(1.0), utility=prefer_high)
    g = ng.build_graph(key, inputs=v0, outputs=v1)
    assert m(key, g, ["in"]) is g  # v1 already reads in
    g = ng.build_graph(key, inputs=v0, outputs=cl("v2", v1, 2))
    assert m(key, g, ["v1"]) is g  # v2 already reads v1


def test_add_edge_size_cycle_warns(key, caplog):
    cl = lambda name, v, n: ng.vertex(name, ng.Conv(n, 1), v)
    v0 = ng.input_vertex("in", shape=(4, 4, 4))
    v2 = cl("v2", cl("v1", v0, 4), 2)
    v4 = ng.add("v4", v0, ng.concat("v3", v2, v2))
    g = ng.build_graph(key, inputs=v0, outputs=v4)
    m = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(1.0), utility=prefer_high)
    with caplog.at_level(logging.WARNING, logger="naivega_jax.mutation"):
        assert m(key, g, ["v2"]) is g
    assert "Could not align sizes of v2 and v4!" in caplog.text


def test_add_edge_first_in_path_from_multi_input(key):
    cl = lambda name, v, n: ng.vertex(name, ng.Conv(n, 1), v)
    v0 = ng.input_vertex("in", shape=(4, 4, 3))
    v2 = ng.add("v2", v0, cl("v1", v0, 3))
    v3 = ng.add("v3", cl("v2a1", v2, 3), cl("v2b1", v2, 3))
    g = ng.build_graph(key, inputs=v0, outputs=v3)
    g2 = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(0.0))(key, g, ["v2a1"])
    assert g2.outputs("v2a1") == ("v3",)


def test_add_edge_probability_walk(key, mock_uniform):
    g = dense_chain(key, 4, *([4] * 6))
    m = ng.AddEdgeMutation(0.5, mergefun=ng.mutation.MergeFun(0.0))
    assert ng.search.add_edge_candidates(g, "d1") == ("d3", "d4", "d5", "d6")
    mock_uniform([0.9, 0.9, 0.1])  # skip d3 and d4, take d5
    g2 = m(key, g, ["d1"])
    assert g2.inputs("d4.add") == ("d4", "d1") and g2.inputs("d5") == ("d4.add",)


# --- RemoveEdgeMutation (check 28) ------------------------------------------------------------------------------
def test_remove_edge_concat(key):
    m = ng.RemoveEdgeMutation(utility=prefer_high)
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(4), inp)
    v2 = ng.vertex("v2", ng.Dense(5), v1)
    g = ng.build_graph(key, inputs=inp, outputs=v2)
    assert m(key, g, ["v1"]) is g
    v4 = ng.concat("v4", v1, ng.vertex("v3", ng.Dense(6), inp))
    g = ng.build_graph(key, inputs=inp, outputs=[v2, ng.vertex("o", ng.Dense(2), v4)])
    g2 = m(key, g, ["v1"])
    assert g2.outputs("v1") == ("v2",) and g2.inputs("v4") == ("v3",)
    assert g2(jnp.ones((3, 3)))[1].shape == (3, 2)
    assert g2.nin("o") == (6,)


def test_remove_edge_add(key):
    m = ng.RemoveEdgeMutation(utility=prefer_high)
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(3), inp)
    v4 = ng.add("v4", v1, ng.vertex("v3", ng.Dense(3), inp))
    g = ng.build_graph(key, inputs=inp, outputs=[ng.vertex("v2", ng.Dense(5), v1), v4])
    g2 = m(key, g, ["v1"])
    assert g2.outputs("v1") == ("v2",) and g2.inputs("v4") == ("v3",)
    assert g2(jnp.ones((3, 3)))[1].shape == (3, 3)


def test_remove_edge_skips_duplicate_edges(key):
    inp = ng.input_vertex("in", shape=(3,))
    v1 = ng.vertex("v1", ng.Dense(3), inp)
    g = ng.build_graph(key, inputs=inp, outputs=[ng.vertex("v2", ng.Dense(5), v1), ng.concat("c", v1, v1, inp)])
    assert ng.RemoveEdgeMutation()(key, g, ["v1"]) is g
