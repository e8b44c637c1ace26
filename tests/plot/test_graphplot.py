import itertools

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.plot._graphplot import BOX_W, DUMMY_W, GAP, ROW, layout, op_label

from .conftest import assert_png, dense_chain


def fork_graph(key):
    """in -> c1 -> {a, b -> b2} -> concat -> add(cat, c1) -> pool -> gp -> out: a fork and a residual."""
    inp = ng.input_vertex("in", shape=(8, 8, 3))
    c1 = ng.vertex("c1", ng.Conv(4, (3, 3), activation="relu"), inp)
    a = ng.vertex("a", ng.Conv(2, (3, 3)), c1)
    b = ng.vertex("b", ng.Conv(2, (5, 5), activation="elu"), c1)
    b2 = ng.vertex("b2", ng.Conv(2, (1, 1)), b)
    res = ng.add("res", ng.concat("cat", a, b2), c1)
    gp = ng.vertex("gp", ng.GlobalPool("max"), ng.vertex("pool", ng.MaxPool(2), res))
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), gp, shield=()))


def test_layout_rows_are_depths_and_branches_sit_side_by_side(key):
    g = fork_graph(key)
    pos, via, _ = layout(g.spec)
    row = {n: round(-pos[n][1] / 1.9) for n in g.vertex_names}
    assert row == {"in": 0, "c1": 1, "a": 2, "b": 2, "b2": 3, "cat": 4, "res": 5, "pool": 6, "gp": 7, "out": 8}
    assert abs(pos["a"][0] - pos["b"][0]) >= BOX_W  # the two branches do not overlap
    # The residual edge c1 -> res skips rows 2, 3, 4: it passes beside the boxes of those rows.
    assert len(via[("c1", "res")]) == 3 and len(via[("a", "cat")]) == 1 and via[("b", "b2")] == []
    for p in via[("c1", "res")]:
        x, y = pos[p]
        same_row = [n for n in g.vertex_names if pos[n][1] == y]
        assert all(abs(x - pos[n][0]) >= BOX_W / 2 for n in same_row)


def test_plot_graph_writes_a_png_that_grows_with_the_graph(tmp_path, key):
    small = ng.plot.plot_graph(dense_chain(key, []), tmp_path / "small.png")
    big = ng.plot.plot_graph(fork_graph(key), tmp_path / "deep" / "big.png", title="best of generation 3")
    s, b = assert_png(small), assert_png(big)
    assert b.shape[0] > 3 * s.shape[0]
    spec_only = ng.plot.plot_graph(fork_graph(key).spec, tmp_path / "spec.png")
    assert abs(b.shape[0] - assert_png(spec_only).shape[0] - 0.4 * 110) <= 1  # the same picture without a title


def test_op_labels_show_kernels_and_non_default_settings():
    assert op_label(ng.Dense(4, "relu")) == "Dense(relu)"
    assert op_label(ng.Dense(4, use_bias=False)) == "Dense(bias=False)"
    assert op_label(ng.Conv(4, (3, 3), strides=2)) == "Conv(k=3, s=2)"
    assert op_label(ng.Conv(4, (3, 5))) == "Conv(k=(3, 5))"
    assert op_label(ng.GlobalPool("max")) == "GlobalPool(max)"
    assert op_label(ng.graph.Concat()) == "Concat"


def test_plot_graph_rejects_non_graphs(tmp_path):
    with pytest.raises(TypeError, match=r"ng\.Graph"):
        ng.plot.plot_graph("graph", tmp_path / "x.png")


def test_plot_graph_handles_several_inputs_and_outputs(tmp_path):
    k1 = jax.random.key(1)
    x1, x2 = ng.input_vertex("x1", shape=(3,)), ng.input_vertex("x2", shape=(4,))
    h = ng.vertex("h", ng.Dense(5, "relu"), ng.concat("cat", x1, x2))
    g = ng.build_graph(k1, inputs=[x1, x2], outputs=[ng.vertex("y1", ng.Dense(2), h), ng.vertex("y2", ng.Dense(1), h)])
    pos, _, _ = layout(g.spec)
    assert pos["x1"][1] == pos["x2"][1] and pos["x1"][0] < pos["x2"][0]
    assert pos["y1"][1] == pos["y2"][1]
    assert_png(ng.plot.plot_graph(g, tmp_path / "multi.png"))


def random_graph(seed, n):
    """A random DAG of Dense vertices and concats of two earlier vertices."""
    rng = np.random.default_rng(seed)
    vs = [ng.input_vertex("in", shape=(3,))]
    for i in range(n):
        picks = rng.choice(len(vs), size=min(len(vs), int(rng.integers(1, 3))), replace=False)
        if len(picks) == 2:
            vs.append(ng.concat(f"c{i}", *(vs[p] for p in sorted(picks))))
        else:
            vs.append(ng.vertex(f"d{i}", ng.Dense(int(rng.integers(2, 6))), vs[picks[0]]))
    return ng.build_graph(jax.random.key(seed), inputs=vs[0], outputs=vs[-1]).spec


@pytest.mark.parametrize("seed", range(8))
def test_layout_of_random_graphs_keeps_order_and_boxes_apart(seed):
    spec = random_graph(seed, 12)
    pos, via, widest = layout(spec)
    row = {n: round(-y / ROW) for n, (_, y) in pos.items()}
    for v in spec.vertices:
        for i in v.inputs:
            assert row[v.name] > row[i]
            assert [row[p] for p in via[(i, v.name)]] == list(range(row[i] + 1, row[v.name]))
    by_row = {}
    for n, (x, _) in pos.items():
        by_row.setdefault(row[n], []).append((x, DUMMY_W if n.startswith("\0") else BOX_W))
    for items in by_row.values():
        items.sort()
        for (x0, w0), (x1, w1) in itertools.pairwise(items):
            assert x1 - x0 >= (w0 + w1) / 2 + GAP - 1e-9
        assert items[-1][0] + items[-1][1] / 2 - (items[0][0] - items[0][1] / 2) <= widest + 1e-9
