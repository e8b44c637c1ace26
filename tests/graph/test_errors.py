"""Every bad input raises the documented error type, and the message names the vertex and the bad value."""

import re

import jax
import jax.numpy as jnp
import pytest

import naivega_jax as ng


def inp_op(shape=(5,)):
    return ng.graph.Input(shape)


def raises(error, *fragments):
    """``pytest.raises`` that checks the message contains every fragment verbatim."""
    return pytest.raises(error, match="(?s)" + ".*".join(re.escape(f) for f in fragments))


def test_error_hierarchy():
    assert issubclass(ng.ShapeError, ng.GraphError) and issubclass(ng.GraphError, ng.NaiveGAError)
    assert issubclass(ng.GraphError, ValueError)


# --- unknown names --------------------------------------------------------------------------------------


def test_unknown_input_name():
    with raises(ng.GraphError, "unknown vertex 'nope'", "input of 'd'"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("d", ng.Dense(3), ("nope",))], ["in"], ["d"])


def test_input_vertex_not_listed_among_inputs(key):
    inp = ng.input_vertex("in", shape=(5,))
    other = ng.input_vertex("other", shape=(5,))
    with raises(ng.GraphError, "input vertex 'other'", "used by 'd'", "graph inputs ['in']"):
        ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(3), other))
    with raises(ng.GraphError, "input vertex 'in2'", "used by 'd'"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("in2", inp_op(), ()), ("d", ng.Dense(3), ("in2",))], ["in"], ["d"])


def test_unknown_output_and_non_input_inputs():
    with raises(ng.GraphError, "graph output 'zz'", "['in']"):
        ng.GraphSpec.create([("in", inp_op(), ())], ["in"], ["zz"])
    with raises(ng.GraphError, "graph input 'd' is not an input vertex"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("d", ng.Dense(3), ("in",))], ["d"], ["d"])
    with raises(ng.GraphError, "at least one input"):
        ng.GraphSpec.create([("in", inp_op(), ())], [], ["in"])
    with raises(ng.GraphError, "must not repeat", "outputs=('in', 'in')"):
        ng.GraphSpec.create([("in", inp_op(), ())], ["in"], ["in", "in"])


def test_lookup_of_unknown_vertex(key):
    inp = ng.input_vertex("in", shape=(5,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    with raises(ng.GraphError, "no vertex named 'zz'", "['in', 'd']"):
        g.nout("zz")
    with raises(ng.GraphError, "no vertex named 'zz'"):
        g.spec.consumers("zz")


# --- cycles and duplicates -------------------------------------------------------------------------------


def test_cycle():
    entries = [
        ("in", inp_op(), ()),
        ("a", ng.Dense(5), ("c",)),
        ("b", ng.Dense(5), ("a",)),
        ("c", ng.graph.Add(), ("in", "b")),
        ("out", ng.Dense(2), ("c",)),
    ]
    with pytest.raises(ng.GraphError, match="cycle") as info:
        ng.GraphSpec.create(entries, ["in"], ["out"])
    path = str(info.value).split("cycle: ")[1].split(" -> ")
    assert path[0] == path[-1] and sorted(path[:-1]) == ["a", "b", "c"]  # e.g. "c -> b -> a -> c"
    with raises(ng.GraphError, "cycle: s -> s"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("s", ng.graph.Add(), ("in", "s"))], ["in"], ["s"])


def test_duplicate_names(key):
    with raises(ng.GraphError, "duplicate vertex name 'a'"):
        ng.GraphSpec.create(
            [("in", inp_op(), ()), ("a", ng.Dense(3), ("in",)), ("a", ng.Dense(4), ("in",))], ["in"], ["a"]
        )
    inp = ng.input_vertex("in", shape=(5,))
    d, d_again = ng.vertex("d", ng.Dense(3), inp), ng.vertex("d", ng.Dense(3), inp)
    with raises(ng.GraphError, "duplicate vertex name 'd'"):
        ng.build_graph(key, inputs=inp, outputs=ng.add("s", d, d_again))
    # the same vertex object used twice is fine: it is one vertex
    g = ng.build_graph(key, inputs=inp, outputs=ng.add("s", d, d))
    assert g.inputs("s") == ("d", "d") and g.outputs("d") == ("s",)


def test_bad_names_and_arity():
    with raises(ng.GraphError, "non-empty strings", "''"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("", ng.Dense(3), ("in",))], ["in"], [""])
    with raises(ng.GraphError, "vertex 'd'", "Dense takes 1 input(s), got 2", "['in', 'in']"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("d", ng.Dense(3), ("in", "in"))], ["in"], ["d"])
    with raises(ng.GraphError, "vertex 'a'", "Add takes at least 1 input(s), got 0"):
        ng.GraphSpec.create(
            [("in", inp_op(), ()), ("a", ng.graph.Add(), ()), ("o", ng.graph.Add(), ("in", "a"))], ["in"], ["o"]
        )
    with raises(ng.GraphError, "vertex 'd'", "op must be an ng op", "'Dense'"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("d", "Dense", ("in",))], ["in"], ["d"])
    with raises(ng.GraphError, "vertex 'v'", "inputs must be vertices", "'in'"):
        ng.vertex("v", ng.Dense(3), "in")
    with raises(ng.GraphError, "vertex 'v'", "unknown weight init 'ones'"):
        ng.vertex("v", ng.Dense(3), ng.input_vertex("in", shape=(5,)), init="ones")
    with raises(ng.GraphError, "vertex 'd'", "shield", "'x'"):
        ng.GraphSpec.create([("in", inp_op(), ()), ("d", ng.Dense(3), ("in",))], ["in"], ["d"], {"d": "x"})


# --- sizes and shapes at build time ------------------------------------------------------------------------


def test_add_of_unequal_sizes(key):
    inp = ng.input_vertex("in", shape=(5,))
    a, b = ng.vertex("d1", ng.Dense(3), inp), ng.vertex("d2", ng.Dense(4), inp)
    with raises(ng.ShapeError, "vertex 's'", "equal shapes", "(3,), (4,)"):
        ng.build_graph(key, inputs=inp, outputs=ng.add("s", a, b))


def test_concat_of_different_spatial_shapes(key):
    img = ng.input_vertex("img", shape=(6, 6, 2))
    pooled = ng.vertex("p", ng.MaxPool(2), img)
    with raises(ng.ShapeError, "vertex 'c'", "concat", "(3, 3, 2), (6, 6, 2)"):
        ng.build_graph(key, inputs=img, outputs=ng.concat("c", pooled, img))


def test_dense_after_a_conv_feature_map(key):
    img = ng.input_vertex("img", shape=(6, 6, 2))
    conv = ng.vertex("c", ng.Conv(3), img)
    with raises(ng.ShapeError, "vertex 'd'", "Dense needs a vector input", "(6, 6, 3)", "GlobalPool or Flatten"):
        ng.build_graph(key, inputs=img, outputs=ng.vertex("d", ng.Dense(3), conv))
    # with a pool in between it builds
    gp = ng.vertex("gp", ng.GlobalPool(), conv)
    assert ng.build_graph(key, inputs=img, outputs=ng.vertex("d", ng.Dense(3), gp)).nin("d") == (3,)


def test_window_and_rank_mismatches(key):
    img = ng.input_vertex("img", shape=(6, 6, 2))
    vec = ng.input_vertex("vec", shape=(5,))
    cases = [
        (img, ng.Conv(3, 9, padding="VALID"), ng.ShapeError, ("vertex 'c'", "(9, 9)", "(6, 6)")),
        (vec, ng.Conv(3, 3), ng.ShapeError, ("vertex 'c'", "spatial axes", "(5,)")),
        (img, ng.Conv(3, (3,)), ng.ShapeError, ("vertex 'c'", "1-D Conv", "(6, 6, 2)")),
        (img, ng.Conv(3, 3, strides=(1, 2, 3)), ng.GraphError, ("vertex 'c'", "strides", "(1, 2, 3)")),
        (img, ng.Conv(3, 3, padding=((1, 1),)), ng.GraphError, ("vertex 'c'", "2 (lo, hi) pairs", "((1, 1),)")),
        (img, ng.MaxPool(7), ng.ShapeError, ("vertex 'c'", "MaxPool", "(7, 7)", "(6, 6)")),
        (img, ng.AvgPool((2,)), ng.ShapeError, ("vertex 'c'", "AvgPool", "(6, 6, 2)")),
        (vec, ng.GlobalPool(), ng.ShapeError, ("vertex 'c'", "GlobalPool", "(5,)")),
    ]
    for inp, op, error, fragments in cases:
        with raises(error, *fragments):
            ng.build_graph(key, inputs=inp, outputs=ng.vertex("c", op, inp))


# --- inputs at call time -------------------------------------------------------------------------------


def test_wrong_input_shape_or_rank_at_call_time(key):
    inp = ng.input_vertex("in", shape=(5,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    for bad in (jnp.ones((2, 4)), jnp.ones((5,)), jnp.ones((2, 5, 1))):
        with raises(ng.ShapeError, "input 'in'", "(batch, 5)", str(tuple(bad.shape))):
            g(bad)
        with raises(ng.ShapeError, "input 'in'", str(tuple(bad.shape))):
            ng.apply(g, bad, train=True)
        module, variables = ng.to_flax(g)
        with raises(ng.ShapeError, "input 'in'", str(tuple(bad.shape))):
            module.apply(variables, bad)
    img = ng.input_vertex("img", shape=(6, 6, 2))
    gi = ng.build_graph(key, inputs=img, outputs=ng.vertex("c", ng.Conv(3), img))
    with raises(ng.ShapeError, "input 'img'", "(batch, 6, 6, 2)", "(2, 6, 6)"):
        gi(jnp.ones((2, 6, 6)))
    with raises(ng.ShapeError, "input 'img'", "(2, 6, 6, 3)"):
        gi(jnp.ones((2, 6, 6, 3)))


def test_wrong_number_or_names_of_inputs(key):
    a, b = ng.input_vertex("a", shape=(3,)), ng.input_vertex("b", shape=(3,))
    g = ng.build_graph(key, inputs=[a, b], outputs=ng.add("s", a, b))
    x = jnp.ones((2, 3))
    with raises(ng.GraphError, "takes 2 input(s) ['a', 'b'], got 1"):
        g(x)
    with raises(ng.GraphError, "takes 2 input(s)", "got 3"):
        g(x, x, x)
    with raises(ng.GraphError, "no value given for graph input 'b'", "['a', 'c']"):
        g({"a": x, "c": x})
    with raises(ng.ShapeError, "batch sizes", "'a': 2", "'b': 4"):
        g(x, jnp.ones((4, 3)))


def test_non_graph_arguments():
    for fn, name in ((ng.apply, "apply"), (ng.to_flax, "to_flax"), (ng.validate_graph, "validate_graph")):
        with raises(TypeError, name, "str"):
            fn("graph")


def test_dropout_training_needs_a_key(key):
    inp = ng.input_vertex("in", shape=(5,))
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("dr", ng.Dropout(0.5), inp))
    with raises(ng.GraphError, "Dropout", "key"):
        ng.apply(g, jnp.ones((2, 5)), train=True)
    y, _ = ng.apply(g, jnp.ones((2, 5)), train=True, key=jax.random.key(1))
    assert y.shape == (2, 5)


# --- op arguments --------------------------------------------------------------------------------------


def test_unknown_activation():
    for make, where in ((lambda: ng.Dense(3, "nope"), "Dense"), (lambda: ng.Conv(3, activation="nope"), "Conv")):
        with raises(ng.GraphError, where, "unknown activation 'nope'", "'relu'", "register_activation"):
            make()
    with raises(ng.GraphError, "BatchNorm", "unknown activation 'Relu'"):
        ng.BatchNorm("Relu")
    with raises(ng.GraphError, "unknown activation 'nope'"):
        ng.graph.activation("nope")
    with raises(ng.GraphError, "'relu' is already registered", "overwrite=True"):
        ng.graph.register_activation("relu", jnp.abs)
    with raises(TypeError, "register_activation", "callable"):
        ng.graph.register_activation("abs_test", "abs")


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: ng.Dense(0), ("Dense", "nout", "got 0")),
        (lambda: ng.Dense(-2), ("Dense", "nout", "got -2")),
        (lambda: ng.Dense(2.5), ("Dense", "nout", "got 2.5")),
        (lambda: ng.Dense(True), ("Dense", "nout", "got True")),
        (lambda: ng.Conv(0), ("Conv", "nout", "got 0")),
        (lambda: ng.Conv(3, (0, 3)), ("Conv", "kernel_size", "(0, 3)")),
        (lambda: ng.Conv(3, padding="FULL"), ("Conv", "padding", "'FULL'")),
        (lambda: ng.Conv(3, (3, 3), padding=((1, 1), (1,))), ("Conv", "padding", "((1, 1), (1,))")),
        (lambda: ng.Conv(3, (3, 3), padding=((1, 1),)), ("Conv", "2 (lo, hi) pairs", "((1, 1),)")),
        (lambda: ng.MaxPool(2, padding="weird"), ("MaxPool", "padding", "'weird'")),
        (lambda: ng.AvgPool((2, 0)), ("AvgPool", "window", "(2, 0)")),
        (lambda: ng.Dropout(1.5), ("Dropout", "rate", "[0, 1)", "1.5")),
        (lambda: ng.Dropout(-0.1), ("Dropout", "rate", "-0.1")),
        (lambda: ng.Dropout(1.0), ("Dropout", "rate", "1.0")),
        (lambda: ng.BatchNorm(momentum=1.0), ("BatchNorm", "momentum", "1.0")),
        (lambda: ng.BatchNorm(epsilon=0.0), ("BatchNorm", "epsilon", "0.0")),
        (lambda: ng.GlobalPool("sum"), ("GlobalPool", "'max' or 'mean'", "'sum'")),
        (lambda: ng.input_vertex("x", shape=(0,)), ("input_vertex 'x'", "positive ints", "(0,)")),
        (lambda: ng.input_vertex("x", shape=()), ("input_vertex 'x'", "non-empty", "()")),
        (lambda: ng.input_vertex("x", shape=None), ("input_vertex 'x'", "shape", "None")),
    ],
)
def test_bad_op_arguments(make, fragments):
    with raises(ng.GraphError, *fragments):
        make()
