"""The neuron-selection problem: exact and relaxed size changes, alignment through merges, pruning, pins, time limit."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from surgery_helpers import assert_unchanged, julia_kernel, lin, snapshot, valid, with_kernels

import naivega_jax as ng
from naivega_jax.graph import _solver
from naivega_jax.graph._remap import take
from naivega_jax.graph._sizes import SizeStructure
from naivega_jax.graph._solver import SizeRequest, _Milp, _Problem, join_selection


def prefer_high(graph, name):
    return np.arange(1, graph.nout(name) + 1, dtype=float)


def alignment_graph(key):
    """Reference check 9: v1 = L(in1:3->4), v2 = L(in2:4->3), merged = cat(v1, v2), v3 = L(in1->7),
    add = v3 + merged, v4 = L(merged->2); an extra head on add keeps add's size free (outputs are fixed)."""
    in1, in2 = ng.input_vertex("in1", shape=(3,)), ng.input_vertex("in2", shape=(4,))
    v1, v2 = lin("v1", 4, in1), lin("v2", 3, in2)
    merged = ng.concat("merged", v1, v2)
    add = ng.add("add", lin("v3", 7, in1), merged)
    graph = ng.build_graph(key, inputs=[in1, in2], outputs=[lin("head", 2, add), lin("v4", 2, merged)])
    return with_kernels(graph, julia_kernel)


def check9_utility(graph, name):
    return np.array([10.0, 1.0, 10.0]) if name == "v2" else np.ones(graph.nout(name))


def test_selection_aligns_concat_add_and_consumers(key):
    graph = alignment_graph(key)
    sel = ng.graph.neuron_selection(graph, {"v2": -1, "merged": 0}, utility=check9_utility)
    assert sel["v1"].tolist() == [0, 1, 2, 3, -1]
    assert sel["v2"].tolist() == [0, 2]
    for name in ("merged", "v3", "add"):
        assert sel[name].tolist() == [0, 1, 2, 3, -1, 4, 6]


def test_weights_follow_the_selection(key):
    graph = alignment_graph(key)
    snap = snapshot(graph)
    g = valid(ng.delta_nout(graph, {"v2": -1, "merged": 0}, utility=check9_utility))
    assert_unchanged(graph, snap)
    # Julia layout (out x in) is our kernel transposed.
    np.testing.assert_array_equal(
        np.asarray(g.params["v4"]["kernel"]).T, [[1, 3, 5, 7, 0, 9, 13], [2, 4, 6, 8, 0, 10, 14]]
    )
    v1 = np.asarray(g.params["v1"]["kernel"]).T
    np.testing.assert_array_equal(v1[:4], np.asarray(graph.params["v1"]["kernel"]).T)
    assert np.all(np.abs(v1[4]) < 1.0)  # the new row: small random fan-in
    np.testing.assert_array_equal(np.asarray(g.params["v2"]["kernel"]).T, [[1, 4, 7, 10], [3, 6, 9, 12]])
    v3_old, v3 = np.asarray(graph.params["v3"]["kernel"]).T, np.asarray(g.params["v3"]["kernel"]).T
    np.testing.assert_array_equal(v3[[0, 1, 2, 3, 5, 6]], v3_old[[0, 1, 2, 3, 4, 6]])
    np.testing.assert_array_equal(np.asarray(g.params["head"]["kernel"])[4], [0, 0])
    assert (g.nout("v1"), g.nout("v2"), g.nout("merged"), g.nout("v3")) == (5, 2, 7, 7)


def test_utility_direction_and_append_at_end(key):
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, lin("v1", 5, inp)))
    assert ng.graph.neuron_selection(graph, {"v1": -2}, utility=prefer_high)["v1"].tolist() == [2, 3, 4]
    smaller = ng.delta_nout(graph, {"v1": -2}, utility=prefer_high)
    np.testing.assert_array_equal(smaller.params["v1"]["kernel"], graph.params["v1"]["kernel"][:, 2:])
    assert ng.graph.neuron_selection(smaller, {"v1": 3}, utility=prefer_high)["v1"].tolist() == [0, 1, 2, -1, -1, -1]


def scaled_split_graph(key):
    """Reference check 7: start = L(6->6), split = L(6->2), joined = cat(2 split, 3 split, 5 split),
    out = start + joined (a head after it, as graph outputs keep their size)."""
    inp = ng.input_vertex("in", shape=(6,))
    split = lin("split", 2, inp)
    parts = [ng.vertex(f"s{f}", ng.Scale(float(f)), split) for f in (2, 3, 5)]
    out = ng.add("out", lin("start", 6, inp), ng.concat("joined", *parts))
    return ng.build_graph(key, inputs=inp, outputs=lin("head", 2, out))


def test_exact_is_infeasible_relaxed_takes_the_next_multiple(key):
    graph = scaled_split_graph(key)
    with pytest.raises(ng.SizeChangeError, match="relaxed=True"):
        ng.delta_nout(graph, {"out": 2})
    g = valid(ng.delta_nout(graph, {"out": 2}, relaxed=True))
    assert {n: g.nout(n) for n in ("start", "joined", "out")} == {"start": 9, "joined": 9, "out": 9}
    assert g.nout("split") == 3
    x = jnp.linspace(-1, 1, 12).reshape(2, 6)
    np.testing.assert_allclose(g(x), graph(x), atol=1e-5)


def test_exact_throws_and_changes_nothing_relaxed_gives_10(key):
    inp = ng.input_vertex("in", shape=(3,))
    layer = lin("L", 4, inp)
    joined = ng.concat("joined", ng.vertex("a", ng.Scale(2.0), layer), ng.vertex("b", ng.Scale(3.0), layer))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("head", 2, joined))
    snap = snapshot(graph)
    with pytest.raises(ng.SizeChangeError, match="'joined' by \\+1"):
        ng.delta_nout(graph, {"joined": 1})
    assert_unchanged(graph, snap)
    assert graph.nout("joined") == 8
    assert valid(ng.delta_nout(graph, {"joined": 1}, relaxed=True)).nout("joined") == 10


def test_join_and_parselect():
    # join_extracted_inds([2,3,4,5], [1,0,0,0,0,0,1]) == [2,-1,3,4,5,-1] (1-based): one new neuron after the
    # first kept one (before neuron index 2) and one at the end.
    kept = [False, True, True, True, True, False, False]
    assert join_selection(kept, [0, 0, 1, 0, 0, 0, 0, 1]).tolist() == [1, -1, 2, 3, 4, -1]
    assert join_selection([False, False], [0, 0, 3]).tolist() == [-1, -1, -1]
    # parselect(reshape(1:12, 3, 4), 2 => [2, -1, -1, 4])
    pars = np.arange(1, 13).reshape(4, 3).T
    np.testing.assert_array_equal(
        take(pars, np.array([1, -1, -1, 3]), 1, 0.0, None), [[4, 0, 0, 10], [5, 0, 0, 11], [6, 0, 0, 12]]
    )


def concat_graph(key, sizes=(4, 5)):
    inp = ng.input_vertex("in", shape=(3,))
    parts = [lin(f"p{i}", n, inp) for i, n in enumerate(sizes)]
    return ng.build_graph(key, inputs=inp, outputs=lin("head", 2, ng.concat("c", *parts)))


def test_several_deltas_are_one_problem(key):
    graph = concat_graph(key)
    g = ng.delta_nout(graph, {"p0": 2, "c": 2})
    assert (g.nout("p0"), g.nout("p1"), g.nout("c")) == (6, 5, 11)
    with pytest.raises(ng.SizeChangeError):
        ng.delta_nout(graph, {"p0": 2, "p1": 0, "c": 1})
    g = ng.delta_nout(graph, {"p0": -1, "c": -3})
    assert (g.nout("p0"), g.nout("p1")) == (3, 3)


def test_concat_delta_spreads_over_its_parts_and_new_neurons_go_to_segment_ends(key):
    graph = concat_graph(key, (4, 4))
    ones = lambda g, name: np.ones(g.nout(name))
    sel = ng.graph.neuron_selection(graph, {"c": 4}, utility=ones)
    assert sorted([len(sel["p0"]), len(sel["p1"])]) == [6, 6]
    for name in ("p0", "p1"):
        assert sel[name].tolist() == [0, 1, 2, 3, -1, -1]
    assert sel["c"].tolist() == [0, 1, 2, 3, -1, -1, 4, 5, 6, 7, -1, -1]


def test_negative_utility_is_dropped_even_when_growing(key):
    graph = concat_graph(key)
    u = lambda g, name: np.array([1.0, -1.0, 2.0, 3.0]) if name == "p0" else np.zeros(g.nout(name))
    assert ng.graph.neuron_selection(graph, {"p0": 1}, utility=u)["p0"].tolist() == [0, 2, 3, -1, -1]
    nan = lambda g, name: np.array([1.0, np.nan, 2.0, 3.0]) if name == "p0" else np.zeros(g.nout(name))
    assert ng.graph.neuron_selection(graph, {"p0": -1}, utility=nan)["p0"].tolist() == [0, 2, 3]


def test_prune_drops_negative_neurons_keeps_ties_and_at_least_one(key):
    inp = ng.input_vertex("in", shape=(3,))
    a, b = lin("a", 4, inp), lin("b", 4, inp)
    s = ng.add("s", a, b)
    graph = ng.build_graph(key, inputs=inp, outputs=lin("head", 2, ng.concat("c", s, lin("d", 3, inp))))
    values = {"a": [1.0, -2.0, 1.0, 1.0], "b": [0.5, 0.5, -3.0, 0.5], "d": [-1.0, -1.0, -1.0]}
    u = lambda g, name: np.asarray(values.get(name, np.zeros(g.nout(name))))
    g = valid(ng.prune(graph, utility=u))
    assert (g.nout("a"), g.nout("b"), g.nout("s"), g.nout("d"), g.nout("c")) == (2, 2, 2, 1, 3)
    np.testing.assert_array_equal(g.params["a"]["kernel"], graph.params["a"]["kernel"][:, [0, 3]])
    assert ng.prune(graph).spec == graph.spec  # weight magnitudes are never negative


def test_fixed_sizes_refuse_exact_changes(key):
    inp = ng.input_vertex("in", shape=(4, 4, 2))
    conv = ng.vertex("conv", ng.Conv(3, 3), inp)
    flat = ng.vertex("flat", ng.Flatten(), conv)
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, lin("d", 5, flat)))
    for name in ("conv", "out", "in"):
        with pytest.raises(ng.SizeChangeError, match="fixed"):
            ng.delta_nout(graph, {name: 1})
    assert ng.delta_nout(graph, {"d": 1}).nout("d") == 6


def test_relaxed_single_group_goes_to_the_nearest_changed_size(key):
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, lin("v", 1, inp)))
    assert ng.delta_nout(graph, {"v": -1}, relaxed=True).nout("v") == 2
    with pytest.raises(ng.SizeChangeError):
        ng.delta_nout(graph, {"v": -1})


def test_bad_arguments(key):
    graph = concat_graph(key)
    with pytest.raises(ng.GraphError, match="nope"):
        ng.delta_nout(graph, {"nope": 1})
    with pytest.raises(TypeError, match="int"):
        ng.delta_nout(graph, {"p0": 1.5})
    with pytest.raises(ValueError, match="length nout=4"):
        ng.delta_nout(graph, {"p0": 1}, utility=lambda g, name: np.ones(2))


def test_closed_form_agrees_with_the_milp():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 9))
        u = rng.normal(size=n)
        from naivega_jax.graph._sizes import SizeNode

        structure = SizeStructure(
            [SizeNode("in", ng.graph.IMMUTABLE, (), 3), SizeNode("v", ng.graph.ABSORB, ("in",), n)]
        )
        target = int(rng.integers(1, 2 * n + 2))
        problem = _Problem(structure, {1: target}, {}, [], structure.pinned_closure(), False, lambda g, u=u: u)
        closed = problem.closed_form(structure.groups[1]).get(1, np.arange(n))
        milp = _Milp(problem, [[1]]).run(5.0, _solver.SolveStats()).get(1, np.arange(n))
        assert closed.tolist() == milp.tolist(), (u, target)


def test_time_limit_warns_with_a_solution_and_raises_without(key, monkeypatch):
    graph = concat_graph(key)
    real = scipy.optimize.milp

    def limited(*args, **kwargs):
        assert kwargs["options"]["time_limit"] == 0.5
        res = real(*args, **kwargs)
        res.status = 1
        return res

    monkeypatch.setattr(scipy.optimize, "milp", limited)
    with pytest.warns(RuntimeWarning, match="time limit of 0.5 s"):
        assert ng.delta_nout(graph, {"c": 2}, time_limit=0.5).nout("c") == 11

    def nothing(*args, **kwargs):
        res = real(*args, **kwargs)
        res.status, res.x = 1, None
        return res

    monkeypatch.setattr(scipy.optimize, "milp", nothing)
    with pytest.raises(ng.SizeChangeError, match="time limit"):
        ng.delta_nout(graph, {"c": 2}, time_limit=0.5)


def test_solver_request_targets_of_one_group_must_agree(key):
    graph = concat_graph(key)
    structure = SizeStructure.from_spec(graph.spec)
    inp = ng.input_vertex("in", shape=(3,))
    tied = ng.build_graph(key, inputs=inp, outputs=lin("h", 2, ng.add("s", lin("a", 4, inp), lin("b", 4, inp))))
    with pytest.raises(ng.SizeChangeError, match="disagree"):
        ng.delta_nout(tied, {"a": 1, "b": 2})
    assert ng.delta_nout(tied, {"a": 1, "b": 1}).nout("s") == 5
    assert structure.groups[structure.group_of["c"]].defs
    assert SizeRequest().touch == ()


def test_two_concatenations_of_one_group_insert_where_both_have_a_gap(key):
    # add(cat(a:2, b:3), cat(c:3, d:2)): growing a puts a new neuron at position 2 of the group, which is inside c.
    inp = ng.input_vertex("in", shape=(3,))
    left = ng.concat("left", lin("a", 2, inp), lin("b", 3, inp))
    right = ng.concat("right", lin("c", 3, inp), lin("d", 2, inp))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("head", 2, ng.add("s", left, right)))
    ones = lambda g, name: np.ones(g.nout(name))
    sel = ng.graph.neuron_selection(graph, {"a": 1, "b": 0, "d": 0}, utility=ones)
    assert sel["a"].tolist() == [0, 1, -1]
    assert sel["c"].tolist() == [0, 1, -1, 2]
    assert sel["s"].tolist() == [0, 1, -1, 2, 3, 4]
    g = valid(ng.delta_nout(graph, {"a": 1, "b": 0, "d": 0}, utility=ones))
    np.testing.assert_allclose(g(jnp.ones((2, 3))), graph(jnp.ones((2, 3))), atol=1e-5)
    with pytest.raises(ng.SizeChangeError):
        ng.delta_nout(graph, {"a": 1, "b": 0, "c": 0, "d": 0})


def test_relaxed_targets_of_tied_vertices_are_a_compromise(key):
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(key, inputs=inp, outputs=lin("h", 2, ng.add("s", lin("a", 4, inp), lin("b", 4, inp))))
    g = ng.delta_nout(graph, {"a": 2, "b": 4}, relaxed=True)
    assert 6 <= g.nout("s") <= 8 and g.nout("a") == g.nout("b") == g.nout("s")
