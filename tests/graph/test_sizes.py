"""Size propagation: tied groups, participants, fixed sizes, size cycles."""

from surgery_helpers import lin

import naivega_jax as ng
from naivega_jax.graph._sizes import SizeStructure, structure_nodes


def residual_fork(key):
    inp = ng.input_vertex("in", shape=(3,))
    d0 = lin("d0", 6, inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d0)
    p1, p2 = lin("p1", 2, bn), lin("p2", 4, bn)
    cat = ng.concat("cat", p1, p2)
    res = ng.add("res", bn, cat)
    one = ng.concat("one", res)
    return ng.build_graph(key, inputs=inp, outputs=lin("out", 2, lin("d1", 5, one)))


def test_invariant_and_single_input_concat_share_one_selection(key):
    g = residual_fork(key)
    assert ng.graph.tied_vertices(g, "d0") == ("d0", "bn", "cat", "res", "one")
    assert ng.graph.tied_vertices(g, "p1") == ("p1",)
    structure = SizeStructure.from_spec(g.spec)
    group = structure.groups[structure.group_of["res"]]
    assert group.defs == [(structure.group_of["p1"], structure.group_of["p2"])]


def test_participants_stop_at_absorbing_vertices_both_ways(key):
    g = residual_fork(key)
    # d0's group is defined by the concat of p1 and p2: a change reaches all three groups, and the absorbing
    # consumers p1, p2 (of bn) and d1 (of one) re-index their inputs; out and in are untouched.
    assert ng.graph.size_participants(g, ["d0"]) == ("d0", "bn", "p1", "p2", "cat", "res", "one", "d1")
    assert ng.graph.size_participants(g, ["d1"]) == ("d1", "out")


def test_fixed_sizes(key):
    inp = ng.input_vertex("in", shape=(4, 4, 2))
    conv = ng.vertex("conv", ng.Conv(3, 3), inp)
    flat = ng.vertex("flat", ng.Flatten(), conv)
    a, b = lin("a", 2, flat), lin("b", 3, flat)
    cat = ng.concat("cat", a, b)
    g = ng.build_graph(key, inputs=inp, outputs=[cat, lin("free", 4, a)])
    fixed = {n: ng.graph.is_size_fixed(g, n) for n in g.vertex_names}
    # the graph output cat pins its parts a and b; conv feeds a flatten; free is an output
    assert fixed == {"in": True, "conv": True, "flat": True, "a": True, "b": True, "cat": True, "free": True}
    g2 = ng.build_graph(key, inputs=inp, outputs=lin("o", 2, cat))
    assert (
        not ng.graph.is_size_fixed(g2, "a")
        and not ng.graph.is_size_fixed(g2, "cat")
        and ng.graph.is_size_fixed(g2, "conv")
    )


def test_size_cycle_detection_on_a_prospective_structure(key):
    # Reference check 24: v4 = cat(v2a, v2b) + v1 with v2a, v2b reading v1. Removing v2b splices v1 into the
    # concat: nout(v1) = nout(v2a) + nout(v1).
    inp = ng.input_vertex("in", shape=(3,))
    v1 = lin("v1", 4, inp)
    v4 = ng.add("v4", ng.concat("cat", lin("v2a", 2, v1), lin("v2b", 2, v1)), v1)
    g = ng.build_graph(key, inputs=inp, outputs=lin("out", 2, v4))
    assert ng.graph.find_size_cycle(g.spec) is None
    nodes = structure_nodes(g.spec, {"cat": ("v2a", "v1"), "v2b": None})
    cycle = SizeStructure(nodes).find_cycle()
    assert cycle is not None and "v1" in cycle
    assert SizeStructure(structure_nodes(g.spec, {"cat": ("v2a", "v2a")})).find_cycle() is None


def test_components_join_groups_through_concat_definitions(key):
    g = residual_fork(key)
    structure = SizeStructure.from_spec(g.spec)
    gid = structure.group_of
    (comp,) = structure.components([gid["p1"]])
    assert sorted(comp) == sorted({gid["p1"], gid["p2"], gid["d0"]})
    assert structure.components([gid["d1"]]) == [[gid["d1"]]]
