import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mutation_helpers import host_copy, tree_equal

import naivega_jax as ng
from naivega_jax.mutation._crossover import swap_segments
from naivega_jax.mutation._segments import act_rank, same_act_dims


def nouts(g):
    return [g.nout(n) for n in g.vertex_names]


def dense_line(p, sizes, key=0):
    v = inp = ng.input_vertex(f"{p}.in", shape=(3,))
    for i, n in enumerate(sizes):
        v = ng.vertex(f"{p}.dv{i + 1}", ng.Dense(n), v)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=v)


X3 = jnp.ones((2, 3))


# --- crossoverswap (NaiveGAflux test/crossover/graph.jl) --------------------------------------------------------
def test_single_vertex_swap(key):
    a, b = dense_line("a", [4, 5, 6]), dense_line("b", [1, 2, 3])
    a2, b2 = swap_segments(key, a, ("a.dv2", "a.dv2"), b, ("b.dv2", "b.dv2"))
    assert a2.vertex_names == ("a.in", "a.dv1", "b.dv2", "a.dv3")
    assert b2.vertex_names == ("b.in", "b.dv1", "a.dv2", "b.dv3")
    assert nouts(a2) == [3, 4, 2, 6] and nouts(b2) == [3, 1, 5, 3]
    assert a2(X3).shape == (2, 6) and b2(X3).shape == (2, 3)


def test_path_swap(key):
    a, b = dense_line("a", [4, 5, 6, 7, 8]), dense_line("b", [1, 2, 3, 4, 5])
    a2, b2 = swap_segments(key, a, ("a.dv1", "a.dv4"), b, ("b.dv2", "b.dv3"))
    assert nouts(a2) == [3, 2, 3, 8]
    assert nouts(b2) == [3, 1, 4, 5, 6, 7, 4, 5]
    assert a2(X3).shape == (2, 8) and b2(X3).shape == (2, 5)


def test_swap_same_graph_is_noop(key):
    a = dense_line("a", [4, 5, 6, 7])
    x = jnp.arange(6.0).reshape(2, 3)
    a2, b2 = swap_segments(key, a, ("a.dv1", "a.dv3"), a, ("a.dv1", "a.dv3"))
    np.testing.assert_array_equal(a2(x), a(x))
    np.testing.assert_array_equal(b2(x), a(x))


def merge_graph(p, sizes, merge):
    inp = ng.input_vertex(f"{p}.in", shape=(3,))
    vs = [ng.vertex(f"{p}.dv{i + 1}", ng.Dense(n), inp) for i, n in enumerate(sizes[:-1])]
    m = merge(f"{p}.merge", *vs)
    return ng.build_graph(
        key=jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.dv{len(sizes)}", ng.Dense(sizes[-1]), m)
    )


@pytest.mark.parametrize(
    "a_sizes, b_sizes, a_nouts, b_nouts",
    [
        ([3, 4, 5, 6, 7], [3, 3, 3, 3], [3, 6, 6, 6, 6, 6, 7], [3, 3, 3, 3, 9, 3]),  # concat larger
        ([3, 4, 5, 6], [3, 3, 3, 3, 3, 3], [3, 5, 5, 5, 5, 6], [3, 3, 3, 3, 3, 3, 15, 3]),  # add larger
    ],
)
def test_swap_add_and_concat(key, a_sizes, b_sizes, a_nouts, b_nouts):
    a, b = merge_graph("a", a_sizes, ng.concat), merge_graph("b", b_sizes, ng.add)
    a2, b2 = swap_segments(key, a, ("a.merge", "a.merge"), b, ("b.merge", "b.merge"))
    assert nouts(a2) == a_nouts and nouts(b2) == b_nouts
    assert a2(X3).shape == (2, a_sizes[-1]) and b2(X3).shape == (2, 3)


def test_swap_concat_and_dense_adds_merge(key):
    def g(p):
        inp = ng.input_vertex(f"{p}.in", shape=(3,))
        m = ng.concat(f"{p}.merge", *(ng.vertex(f"{p}.dv{i}", ng.Dense(n), inp) for i, n in ((1, 2), (2, 3), (3, 4))))
        dvn = ng.vertex(f"{p}.dvn", ng.Dense(2), m)
        return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.dvo", ng.Dense(4), dvn))

    a2, b2 = swap_segments(
        key, g("a"), ("a.dvn", "a.dvn"), g("b"), ("b.merge", "b.merge"), mergefun=ng.mutation.MergeFun(1.0)
    )
    assert a2.vertex_names == ("a.in", "a.dv1", "a.dv2", "a.dv3", "a.merge", "b.merge", "a.dvo")
    assert b2.vertex_names == ("b.in", "b.dv1", "b.dv2", "b.dv3", "a.merge.cat", "a.dvn", "b.dvn", "b.dvo")
    assert nouts(a2) == [3, 2, 3, 4, 9, 9, 4] and nouts(b2) == [3, 2, 3, 4, 9, 2, 2, 4]
    assert b2.spec["a.merge.cat"].shield == ()
    assert a2(X3).shape == (2, 4) and b2(X3).shape == (2, 4)


def test_swap_residual_with_invariant_before_add(key):
    def g(p, sizes):
        inp = ng.input_vertex(f"{p}.in", shape=(3,))
        dv1 = ng.vertex(f"{p}.dv1", ng.Dense(sizes[0]), ng.vertex(f"{p}.dv0", ng.Dense(3), inp))
        v = dv1
        for i, s in enumerate(sizes[1:]):
            v = ng.vertex(f"{p}.dvm{i + 1}", ng.Dense(s), v)
        inv = ng.vertex(f"{p}.inv", ng.Scale(), ng.vertex(f"{p}.dvn", ng.Dense(sizes[0]), v))
        add = ng.add(f"{p}.add", dv1, inv)
        return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.dvo", ng.Dense(4), add))

    a, b = g("a", [4, 5, 6]), g("b", [5, 6])
    a2, b2 = swap_segments(key, a, ("a.dvm1", "a.inv"), b, ("b.dvm1", "b.inv"))
    assert a2 is not None and b2 is not None
    assert a2(X3).shape == (2, 4) and b2(X3).shape == (2, 4)
    assert "b.dvm1" in a2.spec and "a.dvm1" in b2.spec


@pytest.mark.parametrize("v1, v2", [("bv1", "bv1"), ("pv1", "pv1"), ("bv1", "pv1")])
def test_swap_invariant_layers(key, v1, v2):
    def g(p):
        inp = ng.input_vertex(f"{p}.in", shape=(4, 4, 3))
        cv1 = ng.vertex(f"{p}.cv1", ng.Conv(4, 3), inp)
        bv1 = ng.vertex(f"{p}.bv1", ng.BatchNorm(), cv1)
        cv2 = ng.vertex(f"{p}.cv2", ng.Conv(5, 3), bv1)
        pv1 = ng.vertex(f"{p}.pv1", ng.MaxPool(3, strides=1, padding="SAME"), cv2)
        return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.cv3", ng.Conv(2, 3), pv1))

    a2, b2 = swap_segments(key, g("a"), (f"a.{v1}", f"a.{v2}"), g("b"), (f"b.{v1}", f"b.{v2}"))
    for mine, other, graph in (("a", "b", a2), ("b", "a", b2)):
        assert f"{mine}.{v1}" not in graph.spec and f"{other}.{v1}" in graph.spec
        assert f"{mine}.{v2}" not in graph.spec and f"{other}.{v2}" in graph.spec
        assert graph(jnp.ones((2, 4, 4, 3))).shape == (2, 4, 4, 2)


def test_swap_double_transparent(key):
    def g(p, sizes):
        inp = ng.input_vertex(f"{p}.in", shape=(4, 4, 3))
        bv2 = ng.vertex(
            f"{p}.bv2",
            ng.BatchNorm(),
            ng.vertex(f"{p}.bv1", ng.BatchNorm(), ng.vertex(f"{p}.cv1", ng.Conv(sizes[0], 3), inp)),
        )
        cv2 = ng.vertex(f"{p}.cv2", ng.Conv(sizes[1], 3), bv2)
        return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.cv3", ng.Conv(4, 3), cv2))

    a2, b2 = swap_segments(key, g("a", (3, 2)), ("a.bv1", "a.bv2"), g("b", (6, 2)), ("b.bv1", "b.bv2"))
    assert a2.vertex_names == ("a.in", "a.cv1", "b.bv1", "b.bv2", "a.cv2", "a.cv3")
    assert b2.vertex_names == ("b.in", "b.cv1", "a.bv1", "a.bv2", "b.cv2", "b.cv3")
    assert a2(jnp.ones((1, 4, 4, 3))).shape == (1, 4, 4, 4)
    assert b2(jnp.ones((1, 4, 4, 3))).shape == (1, 4, 4, 4)


def test_partial_success(key, caplog):
    def g(p, size, merge):
        inp = ng.input_vertex(f"{p}.in", shape=(3,))
        dv1 = ng.vertex(f"{p}.dv1", ng.Dense(size), inp)
        dv2 = ng.vertex(f"{p}.dv2", ng.Dense(size), dv1)
        m1 = merge(f"{p}.m1", dv1, inp, dv2)
        return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex(f"{p}.dv3", ng.Dense(5), m1))

    a, b = g("a", 5, ng.concat), g("b", 3, ng.add)
    with caplog.at_level(logging.WARNING, logger="naivega_jax.mutation"):
        a2, b2 = swap_segments(key, a, ("a.m1", "a.m1"), b, ("b.m1", "b.m1"))
    assert a2 is None  # an add of a.dv1 (5) and the input (3): the input cannot grow
    assert "Failed to swap in b.m1...b.m1 for a.m1...a.m1" in caplog.text
    assert b2.vertex_names == ("b.in", "b.dv1", "b.dv2", "a.m1", "b.dv3")
    assert b2(X3).shape == (2, 5)


# --- separable segments -----------------------------------------------------------------------------------------
def test_separable_residual_on_input(key):
    inp = ng.input_vertex("a.in", shape=(3,))
    dv2 = ng.vertex("a.dv2", ng.Dense(3), ng.vertex("a.dv1", ng.Dense(4), inp))
    dv3 = ng.vertex("a.dv3", ng.Dense(4), ng.add("a.add1", inp, dv2))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("a.dv4", ng.Dense(3), dv3))
    assert ng.mutation.separable_from(g, "a.dv3") == ("a.add1", "a.dv3")


@pytest.mark.parametrize("bconnect", [False, True])
def test_separable_dual_branched(key, bconnect):
    p = "a"
    d = lambda name, v, n: ng.vertex(f"{p}.{name}", ng.Dense(n), v)
    inp = ng.input_vertex(f"{p}.in", shape=(3,))
    dv1 = d("dv1", inp, 4)
    dva1 = d("dva1", dv1, 3)
    dvab2 = d("dvab2", d("dvab1", dva1, 2), 4)
    add_aa_bb = ng.add(f"{p}.add_aa_bb", d("dvaa2", d("dvaa1", dva1, 5), 4), dvab2)
    dvb1 = d("dvb1", dv1, 5)
    vba1 = ng.concat(f"{p}.conc", dvb1, dvab2) if bconnect else d("dvba1", dvb1, 9)
    conc_ba_bb = ng.concat(f"{p}.conc_ba_bb", vba1, d("dvbb1", dv1, 4))
    g = ng.build_graph(key, inputs=inp, outputs=d("out", ng.concat(f"{p}.conc_a_b", add_aa_bb, conc_ba_bb), 4))
    expected = ("a.add_aa_bb",) if bconnect else ("a.dva1", "a.add_aa_bb")
    assert ng.mutation.separable_from(g, "a.add_aa_bb") == expected
    assert ng.mutation.separable_from(g, "a.dvbb1") == ("a.dvbb1",)


def test_swap_preserves_edge_order(key):
    inp = ng.input_vertex("a.in", shape=(3,))
    d = lambda name, v, n: ng.vertex(f"a.{name}", ng.Dense(n), v)
    dv1, dv2, dv3 = d("dv1", inp, 2), d("dv2", inp, 3), d("dv3", inp, 4)
    dva1 = d("dva1", ng.concat("a.ca1", dv1, dv2, dv1, dv3, dv1), 4)
    dva2, dvb1 = d("dva2", dva1, 3), d("dvb1", dv2, 3)
    c4 = ng.concat("a.c4", ng.concat("a.c2", dvb1, dva1, dvb1, dva1), ng.concat("a.c3", dva1, dva1, dvb1), dva2)
    g = ng.build_graph(key, inputs=inp, outputs=d("out", c4, 4))
    assert ng.mutation.separable_from(g, "a.dva1") == ("a.ca1", "a.dva1")
    x = jax.random.normal(key, (2, 3))
    g2, h2 = swap_segments(key, g, ("a.ca1", "a.dva1"), g, ("a.ca1", "a.dva1"))
    for r in (g2, h2):
        assert r.spec == g.spec
        np.testing.assert_array_equal(r(x), g(x))


# --- pairing (check 35) -----------------------------------------------------------------------------------------
def cv_gp_dv(p, cvs, dvs, key=0):
    v = inp = ng.input_vertex(f"{p}.in", shape=(4, 4, 3))
    for i, s in enumerate(cvs):
        v = ng.vertex(f"{p}.cv{i + 1}", ng.Conv(s, 3), v)
    v = ng.vertex(f"{p}.pv1", ng.GlobalPool("max"), v)
    for i, s in enumerate(dvs):
        v = ng.vertex(f"{p}.dv{i + 1}", ng.Dense(s), v)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=v)


def test_same_act_dims():
    ga = cv_gp_dv("a", (4, 5), (3, 2))
    vs = ga.vertex_names[1:]
    same = lambda v: [same_act_dims(ga, v, ga, w) for w in vs]
    assert same(vs[-1]) == same(vs[-2]) == [False, False, False, True, True]
    assert same(vs[0]) == same(vs[1]) == [True, True, False, False, False]
    assert same(vs[2]) == [False, False, True, False, False]
    assert act_rank(ga, "a.pv1") == 3


@pytest.mark.parametrize(
    "cvs, dvs, expected",
    [
        ((4, 5), (3, 2), {0: (0, 0), 2: (2, 2)}),
        (range(2, 8), (8,), {0: (0, 1), 2: (2, 6), 4: (4, 7)}),
        ((2,), (3,), {0: (0, 0), 1: (1, 0), 2: (2, 1), 3: (3, 2), 4: (4, 2)}),
    ],
)
def test_default_pairgen(cvs, dvs, expected):
    ga, gb = cv_gp_dv("a", (4, 5), (3, 2)), cv_gp_dv("b", cvs, dvs)
    vsa, vsb = ga.vertex_names[1:], gb.vertex_names[1:]
    for ind1, pair in expected.items():
        assert ng.mutation.default_pairgen(None, ga, vsa, gb, vsb, ind1) == pair
    assert ng.mutation.default_pairgen(None, ga, vsa, gb, vsb, len(vsa)) is None


def test_default_pairgen_deviation_is_keyed():
    ga, gb = cv_gp_dv("a", (4, 5, 6), (3, 2)), cv_gp_dv("b", range(2, 8), (8, 9))
    vsa, vsb = ga.vertex_names[1:], gb.vertex_names[1:]
    pg = ng.mutation.DefaultPairGen(deviation=0.5)
    pairs = [pg(jax.random.key(i), ga, vsa, gb, vsb, 1) for i in range(20)]
    assert all(p[0] == 1 and "cv" in vsb[p[1]] for p in pairs)
    assert len({p[1] for p in pairs}) > 1
    assert pg(jax.random.key(3), ga, vsa, gb, vsb, 1) == pairs[3]


# --- VertexCrossover --------------------------------------------------------------------------------------------
def test_vertex_crossover_names_and_sizes():
    inner = lambda key, g1, vs1, g2, vs2, ind1: ng.mutation.default_pairgen(key, g1, vs1, g2, vs2, len(vs1) - 1)
    outer = lambda key, g1, vs1, g2, vs2, ind1: ng.mutation.default_pairgen(key, g1, vs1, g2, vs2, 2 * ind1 + 1)
    c = ng.VertexCrossover(ng.CrossoverSwap(pairgen=inner), pairgen=outer)
    ga, gb = cv_gp_dv("a", range(3, 7), (7, 8)), cv_gp_dv("b", (2, 3), range(4, 11))
    before = host_copy((ga.params, gb.params))
    ga2, gb2 = c(jax.random.key(0), (ga, gb))
    assert tree_equal(before, (ga.params, gb.params))
    assert ga2.vertex_names == ("a.in", "a.cv1", "b.cv2", "a.cv3", "a.cv4", "a.pv1", "b.dv6", "a.dv2")
    assert gb2.vertex_names == (
        "b.in",
        "b.cv1",
        "a.cv2",
        "b.pv1",
        "b.dv1",
        "b.dv2",
        "b.dv3",
        "b.dv4",
        "b.dv5",
        "a.dv1",
        "b.dv7",
    )
    assert ga2.nin("a.cv3") == (ga2.nout("b.cv2"),) and gb2.nin("b.dv7") == (gb2.nout("a.dv1"),)
    x = jnp.ones((2, 4, 4, 3))
    assert ga2(x).shape == (2, 8) and gb2(x).shape == (2, 10)


def test_vertex_crossover_with_probability(key, mock_uniform):
    inner = lambda key, g1, vs1, g2, vs2, ind1: ng.mutation.default_pairgen(key, g1, vs1, g2, vs2, len(vs1) - 1)
    mock_uniform([0.3, 0.1, 0.3])
    c = ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap(pairgen=inner), 0.2))
    ga, gb = cv_gp_dv("a", range(3, 7), (7, 8)), cv_gp_dv("b", (2, 3), range(4, 11))
    ga2, gb2 = c(key, (ga, gb))
    assert {n.split(".")[0] for n in ga2.vertex_names} == {"a", "b"}
    assert {n.split(".")[0] for n in gb2.vertex_names} == {"a", "b"}
    x = jnp.ones((2, 4, 4, 3))
    assert ga2(x).shape == (2, 8) and gb2(x).shape == (2, 10)


def test_vertex_crossover_bad_configuration():
    with pytest.raises(TypeError, match="vertex-level graph crossover"):
        ng.VertexCrossover(ng.NoutMutation(0.1))
    with pytest.raises(TypeError, match="pairgen"):
        ng.CrossoverSwap(pairgen=3)
