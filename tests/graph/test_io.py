"""JSON specs and saved graphs round-trip exactly; saving is atomic."""

import dataclasses
import json
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph import _graph
from naivega_jax.graph._io import atomic_directory


def every_op_graph(key):
    img = ng.input_vertex("img", shape=(8, 8, 2))
    seq = ng.input_vertex("seq", shape=(9, 3))
    c = ng.vertex(
        "conv",
        ng.Conv(4, (3, 2), strides=(2, 1), dilation=(1, 2), padding=((1, 0), (2, 1)), activation="gelu"),
        img,
        shield=True,
    )
    bn = ng.vertex("bn", ng.BatchNorm("relu", momentum=0.8, epsilon=1e-3), c)
    mp = ng.vertex("mp", ng.MaxPool((2, 2), strides=1, padding=((0, 1), (1, 0))), bn)
    ap = ng.vertex("ap", ng.AvgPool(2, padding="SAME"), mp)
    sc = ng.vertex("sc", ng.Scale(0.5, use_bias=True), ap, shield=["NoutMutation", "KernelSizeMutation"])
    gp = ng.vertex("gp", ng.GlobalPool("max"), sc)
    c1 = ng.vertex("c1", ng.Conv(4, 2, padding="VALID"), seq)
    fl = ng.vertex("fl", ng.Flatten(), ng.vertex("p1", ng.MaxPool(8), c1))
    dr = ng.vertex("dr", ng.Dropout(0.25), fl)
    s = ng.add("sum", gp, dr)
    cat = ng.concat("cat", s, gp)
    out = ng.vertex("out", ng.Dense(3, "selu", use_bias=False), cat)
    return ng.build_graph(key, inputs=[img, seq], outputs=[out, s])


def test_every_op_type_is_in_the_round_trip_graph(key):
    g = every_op_graph(key)
    kinds = {type(v.op) for v in g.spec.vertices}
    for cls in (
        ng.graph.Input,
        ng.Dense,
        ng.Conv,
        ng.BatchNorm,
        ng.MaxPool,
        ng.AvgPool,
        ng.GlobalPool,
        ng.Flatten,
        ng.Dropout,
        ng.Scale,
        ng.graph.Concat,
        ng.graph.Add,
    ):
        assert cls in kinds, cls


def test_json_round_trip_is_exact(key):
    spec = every_op_graph(key).spec
    text = ng.to_json(spec)
    back = ng.graph.from_json(text)
    assert back == spec and hash(back) == hash(spec)
    for v, w in zip(spec.vertices, back.vertices):
        assert v == w  # name, op (every field), inputs, shape, shield
    assert back["conv"].op.padding == ((1, 0), (2, 1)) and back["conv"].op.dilation == (1, 2)
    assert back["mp"].op.padding == ((0, 1), (1, 0)) and back["ap"].op.padding == "SAME"
    assert back["conv"].shield == () and back["sc"].shield == ("KernelSizeMutation", "NoutMutation")
    assert back["bn"].shield is None
    assert back.inputs == ("img", "seq") and back.outputs == ("out", "sum")
    assert ng.to_json(back) == text
    assert ng.to_json(every_op_graph(key)) == text  # a graph gives its spec's JSON
    data = json.loads(text)
    assert data["format"] == "naivega_jax.graph/1"
    conv = next(v for v in data["vertices"] if v["name"] == "conv")
    assert conv["op"]["type"] == "Conv" and conv["op"]["padding"] == [[1, 0], [2, 1]] and conv["shield"] == []
    assert ng.graph.from_json(data) == spec  # a parsed dict works too


def test_json_of_numpy_scalars(key):
    # sizes drawn with numpy (search spaces do) must serialise like Python numbers
    inp = ng.input_vertex("in", shape=(np.int64(5),))
    d = ng.vertex("d", ng.Dense(np.int64(3), "relu"), inp)
    dr = ng.vertex("dr", ng.Dropout(np.float64(0.25)), d)
    sc = ng.vertex("sc", ng.Scale(np.float32(0.5)), dr)
    spec = ng.build_graph(key, inputs=inp, outputs=sc).spec
    back = ng.graph.from_json(ng.to_json(spec))
    assert back == spec
    assert back["d"].op.nout == 3 and back["dr"].op.rate == 0.25 and back["sc"].op.factor == 0.5


@ng.graph.register_op
@dataclasses.dataclass(frozen=True)
class Negate(ng.graph.Op):
    """A user op for the registry test: ``-x * factor``."""

    factor: float = 1.0

    def output_shape(self, name, in_shapes):
        return in_shapes[0]

    def apply(self, params, state, xs, *, train, key):
        return -xs[0] * self.factor, state


def test_registered_user_op_round_trips(key):
    inp = ng.input_vertex("in", shape=(3,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("neg", Negate(2.0), inp))
    back = ng.graph.from_json(ng.to_json(g))
    assert back == g.spec and back["neg"].op == Negate(2.0)
    np.testing.assert_array_equal(g(jnp.array([[1.0, -2.0, 3.0]])), [[-2.0, 4.0, -6.0]])


def assert_graphs_bitwise_equal(a, b):
    assert a.spec == b.spec
    for group in ("params", "state"):
        ta, tb = getattr(a, group), getattr(b, group)
        assert ta.keys() == tb.keys()
        for name in ta:
            assert ta[name].keys() == tb[name].keys()
            for k in ta[name]:
                x, y = np.asarray(ta[name][k]), np.asarray(tb[name][k])
                assert x.dtype == y.dtype == np.float32 and x.shape == y.shape
                assert x.tobytes() == y.tobytes(), (group, name, k)


def test_save_load_round_trip_is_bitwise(key, tmp_path):
    g = every_op_graph(key)
    # non-trivial state: one training step
    x = (jnp.ones((2, 8, 8, 2)) * jnp.arange(2.0).reshape(2, 1, 1, 1), jnp.ones((2, 9, 3)))
    _, g = ng.apply(g, *x, train=True, key=jax.random.key(1))
    assert not np.allclose(g.state["bn"]["mean"], 0)
    path = ng.save_graph(tmp_path / "g", g)
    assert path == tmp_path / "g" and (path / "spec.json").is_file() and (path / "arrays").is_dir()
    assert ng.graph.from_json((path / "spec.json").read_text()) == g.spec
    loaded = ng.load_graph(path)
    assert_graphs_bitwise_equal(loaded, g)
    assert loaded.spec["sc"].shield == ("KernelSizeMutation", "NoutMutation")
    for a, b in zip(loaded(*x), g(*x)):
        np.testing.assert_array_equal(a, b)
    assert [p for p in os.listdir(tmp_path) if p != "g"] == []  # no temporary directories left


def test_save_load_graph_without_params(key, tmp_path):
    inp = ng.input_vertex("in", shape=(4, 4, 2))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("p", ng.MaxPool(2), inp))
    loaded = ng.load_graph(ng.save_graph(tmp_path / "g", g))
    assert loaded.spec == g.spec and loaded.params == {} and loaded.state == {}


def test_saving_over_an_existing_graph_replaces_it(key, tmp_path):
    path = tmp_path / "g"
    g1 = every_op_graph(key)
    g2 = every_op_graph(jax.random.key(5))
    ng.save_graph(path, g1)
    ng.save_graph(path, g2)
    assert_graphs_bitwise_equal(ng.load_graph(path), g2)
    assert sorted(os.listdir(tmp_path)) == ["g"]


def _anything(path):
    """What these tests replace is their own: anything at the path may go."""


def test_atomic_directory_keeps_old_content_when_write_raises(tmp_path):
    path = tmp_path / "out"
    atomic_directory(path, lambda d: (d / "a.txt").write_text("old"), replaces=_anything)
    assert (path / "a.txt").read_text() == "old"

    def failing(d):
        (d / "a.txt").write_text("new, half written")
        (d / "b.txt").write_text("more")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_directory(path, failing, replaces=_anything)
    assert sorted(os.listdir(path)) == ["a.txt"] and (path / "a.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the temporary directory is gone
    with pytest.raises(KeyboardInterrupt):
        atomic_directory(tmp_path / "fresh", lambda d: (_ for _ in ()).throw(KeyboardInterrupt()), replaces=_anything)
    assert sorted(os.listdir(tmp_path)) == ["out"]  # a failed first write leaves nothing

    atomic_directory(path, lambda d: (d / "c.txt").write_text("newer"), replaces=_anything)
    assert sorted(os.listdir(path)) == ["c.txt"] and (path / "c.txt").read_text() == "newer"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_directory_restores_old_content_when_the_final_move_fails(tmp_path, monkeypatch):
    path = tmp_path / "out"
    atomic_directory(path, lambda d: (d / "a.txt").write_text("old"), replaces=_anything)
    rename = type(path).rename

    def failing_rename(self, target):
        if self.name.startswith(".out.tmp-"):
            raise OSError("rename failed")
        return rename(self, target)

    monkeypatch.setattr(type(path), "rename", failing_rename)
    with pytest.raises(OSError, match="rename failed"):
        atomic_directory(path, lambda d: (d / "a.txt").write_text("new"), replaces=_anything)
    monkeypatch.undo()
    assert (path / "a.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_save_graph_keeps_old_graph_if_arrays_cannot_be_written(key, tmp_path, monkeypatch):
    path = tmp_path / "g"
    g1 = every_op_graph(key)
    ng.save_graph(path, g1)

    def broken(p, tree):
        raise OSError("no space left")

    monkeypatch.setattr("naivega_jax.graph._io.save_arrays", broken)
    with pytest.raises(OSError, match="no space"):
        ng.save_graph(path, every_op_graph(jax.random.key(5)))
    monkeypatch.undo()
    assert_graphs_bitwise_equal(ng.load_graph(path), g1)
    assert sorted(os.listdir(tmp_path)) == ["g"]


def test_load_errors(key, tmp_path):
    with pytest.raises(ng.GraphError, match=r"no spec\.json"):
        ng.load_graph(tmp_path / "missing")
    with pytest.raises(TypeError, match=r"ng\.Graph"):
        ng.save_graph(tmp_path / "x", {"params": {}})
    # arrays that do not fit the spec: save one graph, then swap in a spec with a wider vertex
    inp = ng.input_vertex("in", shape=(5,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    path = ng.save_graph(tmp_path / "g", g)
    wide = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(4), inp))
    (path / "spec.json").write_text(ng.to_json(wide))
    with pytest.raises(ng.GraphError, match=r"vertex 'd': params should have shapes .*\(5, 4\).*\(5, 3\)"):
        ng.load_graph(path)


def test_from_json_errors():
    with pytest.raises(ng.GraphError, match="unknown op type 'Bogus'"):
        ng.graph.from_json({"inputs": ["in"], "outputs": ["in"], "vertices": [{"name": "in", "op": {"type": "Bogus"}}]})
    with pytest.raises(ng.GraphError, match=r"malformed graph JSON.*'inputs'"):
        ng.graph.from_json('{"outputs": [], "vertices": []}')
    with pytest.raises(ng.GraphError, match="malformed graph JSON"):
        ng.graph.from_json({"inputs": ["in"], "outputs": ["in"], "vertices": [{"name": "in", "op": {"type": "Input"}}]})


def test_loaded_graph_reuses_the_compiled_function(key, tmp_path):
    inp = ng.input_vertex("in", shape=(13,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(6, "relu"), inp))
    x = jnp.ones((2, 13))
    y = g(x)
    n = _graph._infer._cache_size()
    loaded = ng.load_graph(ng.save_graph(tmp_path / "g", g))
    from_text = g.replace(spec=ng.graph.from_json(ng.to_json(g)))
    np.testing.assert_array_equal(loaded(x), y)
    np.testing.assert_array_equal(from_text(x), y)
    assert _graph._infer._cache_size() == n


def test_pickle_round_trip(key):
    g = every_op_graph(key)
    back = pickle.loads(pickle.dumps(g))
    assert back.spec == g.spec and hash(back.spec) == hash(g.spec)
    assert back.spec.consumers("gp") == g.spec.consumers("gp") and back.spec.index("out") == g.spec.index("out")
    assert_graphs_bitwise_equal(back, g)
