"""Shape traces through graphs, with the graphs and numbers of NaiveGAflux test/shape.jl."""

import dataclasses

import jax
import pytest

import naivega_jax as ng
from naivega_jax.search._shapes import all_shape_types, filter_noops

Add, Div, Flatten = ng.search.ShapeAdd, ng.search.ShapeDiv, ng.search.ShapeFlatten


def flux_pad(pad, n):
    """Flux's pad argument: an int (every side), N values (symmetric per axis) or 2N values (lo, hi per axis)."""
    if isinstance(pad, int):
        return ((pad, pad),) * n
    if len(pad) == n:
        return tuple((p, p) for p in pad)
    return tuple((pad[2 * i], pad[2 * i + 1]) for i in range(n))


def cv(inp, name, ks=(3, 3), pad=0, stride=1, dilation=1):
    return ng.vertex(name, ng.Conv(1, ks, strides=stride, dilation=dilation, padding=flux_pad(pad, len(ks))), inp)


def pv(inp, name, ks=(3, 3), pad=0, stride=None):
    stride = (1,) * len(ks) if stride is None else stride
    return ng.vertex(name, ng.MaxPool(ks, strides=stride, padding=flux_pad(pad, len(ks))), inp)


def graph(inp, out):
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=out)


def chain(vf, spatial):
    vi = ng.input_vertex("in", shape=(*spatial, 1))
    v1 = vf(vi, "v1", ks=(1, 1))
    v2 = vf(v1, "v2", ks=(3, 3))
    v3 = vf(v2, "v3", ks=(2, 4), pad=(5, 7))
    v4 = vf(v3, "v4", ks=(3, 3), stride=(1, 2))
    v5 = vf(v4, "v5", ks=(4, 5), pad=(2, 3, 4, 5), stride=(3, 4))
    return graph(vi, v5)


def single(op, spatial):
    vi = ng.input_vertex("in", shape=(*spatial, 1))
    return graph(vi, ng.vertex("v", op, vi))


@pytest.mark.parametrize("vf", [cv, pv])
def test_trace_chain(vf):
    g = chain(vf, (30, 31))
    assert filter_noops(ng.search.delta_shapes(g, "v1")) == ()
    for name in ("v2", "v3", "v4", "v5"):
        alone = single(g.op(name), (10, 9))
        assert ng.search.fshape(ng.search.delta_shapes(alone, "v"), (10, 9)) == alone.shape("v")[:2]
    trace = ng.search.shape_trace(g, "v5")
    assert (trace.origin, trace.dest) == ("in", "v5")
    assert ng.search.fshape(trace, (30, 31)) == g.shape("v5")[:2] == ng.search.feature_map_size(g, "v5")
    assert ng.search.fshape(ng.search.squash_shapes(trace), (30, 31)) == g.shape("v5")[:2]


@pytest.mark.parametrize("vf", [cv, pv])
def test_trace_merge(vf):
    vi = ng.input_vertex("in", shape=(13, 17, 1))
    v1 = vf(vi, "v1", ks=(2, 5))
    va2 = vf(vf(v1, "va1", ks=(1, 1), stride=(2, 2)), "va2", ks=(2, 2))
    vb2 = vf(vf(v1, "vb1", ks=(3, 3)), "vb2", ks=(1, 1), stride=(2, 2))
    g = graph(vi, vf(ng.concat("concat", va2, vb2), "v2", ks=(3, 3)))
    assert ng.search.fshape(ng.search.squash_shapes(ng.search.shape_trace(g, "v2")), (13, 17)) == g.shape("v2")[:2]


def test_conv_dilation():
    vi = ng.input_vertex("in", shape=(30, 31, 1))
    v1 = cv(vi, "v1", ks=(1, 1), dilation=2)
    v2 = cv(v1, "v2", ks=(2, 2), dilation=2)
    v3 = cv(v2, "v3", ks=(3, 4), dilation=(4, 5), pad=(1, 2, 3, 4))
    g = graph(vi, cv(v3, "v4", ks=(1, 2), dilation=(2, 3), pad=(4, 5), stride=(6, 7)))
    assert filter_noops(ng.search.delta_shapes(g, "v1")) == ()
    for name in ("v2", "v3", "v4"):
        alone = single(g.op(name), (20, 19))
        assert ng.search.fshape(ng.search.delta_shapes(alone, "v"), (20, 19)) == alone.shape("v")[:2]
    trace = ng.search.shape_trace(g, "v4")
    assert ng.search.squash_shapes(trace) == (Add(1, -3), Div(6, 7))
    assert (
        ng.search.fshape(trace, (30, 31))
        == ng.search.fshape(ng.search.squash_shapes(trace), (30, 31))
        == g.shape("v4")[:2]
    )


@pytest.mark.parametrize("vf", [cv, pv])
def test_1d_and_3d(vf):
    vi = ng.input_vertex("in", shape=(7, 1))
    v1 = vf(vi, "v1", ks=(1,), pad=1)
    g = graph(vi, vf(v1, "v2", ks=(3,), stride=(2,), pad=(1, 1)))
    for name in ("v1", "v2"):
        assert ng.search.fshape(ng.search.delta_shapes(g, name), g.shape(g.inputs(name)[0])[:1]) == g.shape(name)[:1]
    vi = ng.input_vertex("in", shape=(17, 11, 20, 1))
    v1 = vf(vi, "v1", ks=(1, 2, 3), pad=1)
    g = graph(vi, vf(v1, "v2", ks=(3, 3, 3), stride=(2, 1, 3), pad=(1, 2, 3, 4, 5, 6)))
    for name in ("v1", "v2"):
        assert ng.search.fshape(ng.search.delta_shapes(g, name), g.shape(g.inputs(name)[0])[:3]) == g.shape(name)[:3]


@pytest.mark.parametrize("op", [ng.GlobalPool("max"), ng.Flatten()])
def test_global_pool_and_flatten(op):
    g = single(op, (11, 12))
    assert ng.search.delta_shapes(g, "v") == (Flatten(2),)
    assert ng.search.fshape(ng.search.shape_trace(g, "v"), (11, 12)) == ()


def test_squash_misaligned_branches():
    vi = ng.input_vertex("in", shape=(13, 14, 1))
    v1 = pv(vi, "v1", ks=(2, 2))
    va2 = pv(pv(v1, "va1", ks=(1, 1), stride=(2, 2)), "va2", ks=(3, 3))
    vb3 = pv(pv(pv(v1, "vb1", ks=(3, 3), pad=(2, 2)), "vb2", ks=(9, 9)), "vb3", ks=(3, 3))
    g = graph(vi, pv(ng.add("add", va2, vb3), "v2", ks=(2, 3)))
    assert g.shape("v2")[:2] == (3, 3)
    sv2 = ng.search.squash_shapes(ng.search.shape_trace(g, "v2"))
    sva2 = ng.search.squash_shapes(ng.search.shape_trace(g, "va2"))
    svb3 = ng.search.squash_shapes(ng.search.shape_trace(g, "vb3"))
    assert sv2 == (ng.search.ParallelShapes((sva2, svb3)), *filter_noops(ng.search.delta_shapes(g, "v2")))
    assert ng.search.fshape((*sva2, *sv2[1:]), (13, 14)) == ng.search.fshape((*svb3, *sv2[1:]), (13, 14)) == (3, 3)
    assert ng.search.fshape((*sva2, *sv2[1:]), (16, 17)) == (5, 4)
    assert ng.search.fshape((*svb3, *sv2[1:]), (16, 17)) == (6, 6)
    assert ng.search.fshape(sv2, (13, 14)) == (3, 3)
    with pytest.raises(ng.ShapeError, match="parallel branches"):
        ng.search.fshape(sv2, (16, 17))


def test_squash_nested_branches():
    vi = ng.input_vertex("in", shape=(200, 200, 1))
    v1 = pv(vi, "v1", ks=(3, 3))
    va2 = pv(pv(v1, "va1", ks=(2, 2), stride=(2, 2)), "va2", ks=(5, 5))
    vaa2 = pv(pv(va2, "vaa1", ks=(1, 1), stride=(3, 3)), "vaa2", ks=(3, 3))
    vab1 = pv(va2, "vab1", ks=(7, 7), stride=(3, 3))
    va3 = pv(ng.add("mva1", vaa2, vab1), "va3", ks=(5, 5))
    vb1 = pv(v1, "vb1", ks=(4, 4), stride=(3, 3))
    vb4 = pv(pv(pv(vb1, "vb2", ks=(3, 3), stride=(2, 2)), "vb3", ks=(2, 2)), "vb4", ks=(6, 6))
    g = graph(vi, pv(ng.add("mv1", va3, vb4), "v2", ks=(3, 3)))
    expected = (Add(-59, -59), Div(6, 6))
    assert ng.search.squash_shapes(ng.search.shape_trace(g, "v2")) == expected
    assert ng.search.squash_shapes(ng.search.shape_trace(g, "v2", sources="v1")) == expected
    assert ng.search.fshape(expected, (200, 200)) == g.shape("v2")[:2]


def test_squash_with_different_start_types():
    vi = ng.input_vertex("in", shape=(20, 20, 1))
    va2 = pv(pv(vi, "va1", ks=(3, 3), stride=(2, 2), pad=(1, 1)), "va2", ks=(3, 3))
    vb2 = pv(pv(vi, "vb1", ks=(5, 5)), "vb2", ks=(3, 3), stride=(2, 2), pad=(1, 1))
    st = ng.search.shape_trace(graph(vi, ng.add("add", va2, vb2)), "add")
    (branches,) = st.trace
    first = dataclasses.replace(branches[0], trace=filter_noops(branches[0].trace))
    st = dataclasses.replace(st, trace=((first, branches[1]),))
    assert all_shape_types(st) == (("ShapeDiv", 2), ("ShapeAdd", 2))
    assert ng.search.squash_shapes(st) == (Div(2, 2), Add(-2, -2))


def conv_graph():
    inp = ng.input_vertex("in", shape=(16, 16, 3))
    c1 = ng.vertex("c1", ng.Conv(4, 3), inp)
    c2 = ng.vertex("c2", ng.Conv(4, 3), c1)
    p1 = ng.vertex("p1", ng.MaxPool(2), c2)
    c3 = ng.vertex("c3", ng.Conv(4, 3), p1)
    cat = ng.concat("cat", c3, ng.vertex("c4", ng.Conv(4, 1), p1))
    gp = ng.vertex("gp", ng.GlobalPool(), cat)
    return graph(inp, ng.vertex("d", ng.Dense(2), ng.vertex("d1", ng.Dense(5), gp)))


def test_no_shape_change():
    g = conv_graph()
    assert ng.search.no_shape_change(g, "c1", "c2") and ng.search.no_shape_change(g, "in", "p1")
    assert not ng.search.no_shape_change(g, "c1", "c3")
    assert ng.search.no_shape_change(g, "p1", "cat") and ng.search.no_shape_change(g, "c3", "gp")
    assert not ng.search.no_shape_change(g, "c2", "gp")
    assert not ng.search.no_shape_change(g, "c3", "d")
    assert ng.search.no_shape_change(g, "gp", "d")


def test_add_edge_candidates():
    g = conv_graph()
    assert ng.search.add_edge_candidates(g, "c1") == ("p1",)
    assert ng.search.add_edge_candidates(g, "p1") == ("cat", "gp")
    assert ng.search.add_edge_candidates(g, "c3") == ("gp",)
    assert ng.search.add_edge_candidates(g, "gp") == ("d",)
    assert ng.search.add_edge_candidates(g, "d1") == ()


def test_no_shape_change_is_independent_of_input_size():
    # floor(x / 2) for a and b, ceil(x / 2) for c: equal for a 16x16 input, not for odd sizes.
    inp = ng.input_vertex("in", shape=(16, 16, 3))
    a = ng.vertex("a", ng.MaxPool(2), inp)
    b = ng.vertex("b", ng.Conv(3, 2, strides=2, padding="VALID"), ng.vertex("b0", ng.Conv(3, 3), inp))
    c = ng.vertex("c", ng.Conv(3, 3, strides=2, padding="SAME"), inp)
    g = graph(inp, ng.concat("cat", a, b, c))
    assert g.shape("a") == g.shape("b") == g.shape("c") == (8, 8, 3)
    assert ng.search.no_shape_change(g, "a", "cat") is False  # b's trace equals a's, c's does not
    assert ng.search.squash_shapes(ng.search.shape_trace(g, "a")) == ng.search.squash_shapes(
        ng.search.shape_trace(g, "b")
    )
    assert ng.search.squash_shapes(ng.search.shape_trace(g, "a")) != ng.search.squash_shapes(
        ng.search.shape_trace(g, "c")
    )
    assert ng.search.fshape(ng.search.shape_trace(g, "a"), (15, 15)) == (7, 7)
    assert ng.search.fshape(ng.search.shape_trace(g, "c"), (15, 15)) == (8, 8)


def test_same_out_shape():
    def g(stride, pad="SAME"):
        inp = ng.input_vertex("in", shape=(12, 12, 3))
        c = ng.vertex("c", ng.Conv(3, 3, strides=stride, padding=pad), inp)
        return graph(inp, ng.vertex("d", ng.Conv(3, 1), ng.vertex("m", ng.MaxPool(2), c)))

    assert ng.search.same_out_shape(g(1), "c", "d", g(1), "c", "d")
    assert not ng.search.same_out_shape(g(1), "c", "d", g(2), "c", "d")
    assert not ng.search.same_out_shape(g(1), "c", "d", g(1, "VALID"), "c", "d")
    assert ng.search.same_out_shape(g(1), "m", "d", g(1, "VALID"), "m", "d")
    assert ng.search.same_out_shape(g(1), "c", "m", g(1), "m", "m")


def test_trace_errors():
    g = conv_graph()
    with pytest.raises(ng.GraphError, match="not reachable"):
        ng.search.shape_trace(g, "c1", sources="p1")
    with pytest.raises(ng.GraphError, match="no vertex named"):
        ng.search.shape_trace(g, "nope")
    with pytest.raises(TypeError, match="Graph"):
        ng.search.shape_trace("graph", "c1")


def test_trace_accepts_a_spec_and_user_ops_can_declare_shapes():
    @dataclasses.dataclass(frozen=True)
    class Upsample(ng.graph.Op):
        def output_shape(self, name, in_shapes):
            (h, w, c) = in_shapes[0]
            return (2 * h, 2 * w, c)

        def apply(self, params, state, xs, *, train, key):
            return jax.numpy.repeat(jax.numpy.repeat(xs[0], 2, 1), 2, 2), state

        def delta_shapes(self, in_shapes):
            return (ng.search.ShapeMul(2, 2),)

    inp = ng.input_vertex("in", shape=(5, 5, 1))
    g = graph(inp, ng.vertex("p", ng.MaxPool(2), ng.vertex("u", Upsample(), inp)))
    assert ng.search.squash_shapes(ng.search.shape_trace(g.spec, "p")) == (
        ng.search.ShapeMul(2, 2),
        Add(-1, -1),
        Div(2, 2),
    )
    assert ng.search.fshape(ng.search.shape_trace(g, "p"), (5, 5)) == g.shape("p")[:2] == (5, 5)


def test_traces_of_deep_residual_chains_stay_linear():
    # Each add nests both input traces, so 24 blocks hold 2**24 paths: a walk that does not share them hangs.
    inp = ng.input_vertex("in", shape=(6, 6, 2))
    v = inp
    for i in range(24):
        v = ng.add(f"a{i}", v, ng.vertex(f"c{i}", ng.Conv(2, 3), v))
    g = graph(inp, ng.vertex("p", ng.MaxPool(2), v))
    trace = ng.search.shape_trace(g, "p")
    assert ng.search.squash_shapes(trace) == (Add(-1, -1), Div(2, 2))
    assert ng.search.fshape(trace, (6, 6)) == (3, 3)
    assert all_shape_types(trace) == (("ShapeAdd", 2), ("ShapeDiv", 2))
    expected = tuple(n for n in g.vertex_names if n not in ("in", "c0", "a0"))
    assert ng.search.add_edge_candidates(g, "c0") == expected and len(expected) == 47
