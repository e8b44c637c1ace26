"""The Graph pytree: building, computing against hand-written networks, gradients, state, compile reuse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph import _graph


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def randomised(g, seed=1):
    """``g`` with every param and state array replaced by random values in [0.5, 1.5) (nothing left at 0 or 1)."""
    leaves, tree = jax.tree_util.tree_flatten(g)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(
        tree, [jnp.asarray(rng.uniform(0.5, 1.5, np.shape(a)).astype(np.float32)) for a in leaves]
    )


def dense_merge_graph(key):
    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(4, "relu"), inp)
    d2 = ng.vertex("d2", ng.Dense(3, "tanh"), inp)
    cat = ng.concat("cat", d1, d2)
    d3 = ng.vertex("d3", ng.Dense(7, "elu"), cat)
    res = ng.add("res", cat, d3)
    out = ng.vertex("out", ng.Dense(2), res)
    return ng.build_graph(key, inputs=inp, outputs=out)


def test_dense_concat_add_matches_hand_written(key):
    g = dense_merge_graph(key)
    assert g.vertex_names == ("in", "d1", "d2", "cat", "d3", "res", "out")
    assert g.nout("cat") == 7 and g.nin("cat") == (4, 3) and g.nin("res") == (7, 7)
    p = randomised(g).params
    g = g.replace(params=p)
    x = data((6, 5))

    def lin(name, h):
        return h @ p[name]["kernel"] + p[name]["bias"]

    h1 = jax.nn.relu(lin("d1", x))
    h2 = jnp.tanh(lin("d2", x))
    cat = jnp.concatenate([h1, h2], axis=-1)
    res = cat + jax.nn.elu(lin("d3", cat))
    expected = lin("out", res)
    y = g(x)
    assert y.shape == (6, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def conv_merge_graph(key):
    inp = ng.input_vertex("img", shape=(6, 6, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, activation="relu"), inp)
    c2 = ng.vertex("c2", ng.Conv(2, (1, 1)), inp)
    cat = ng.concat("cat", c1, c2)
    bn = ng.vertex("bn", ng.BatchNorm("tanh"), cat)
    c3 = ng.vertex("c3", ng.Conv(5, 3, padding="SAME"), bn)
    res = ng.add("res", bn, c3)
    pool = ng.vertex("pool", ng.MaxPool(2), res)
    gp = ng.vertex("gp", ng.GlobalPool("mean"), pool)
    out = ng.vertex("out", ng.Dense(3), gp)
    return ng.build_graph(key, inputs=inp, outputs=out)


def test_conv_concat_add_matches_hand_written(key):
    g = randomised(conv_merge_graph(key))
    assert g.shape("cat") == (6, 6, 5) and g.shape("pool") == (3, 3, 5) and g.shape("gp") == (5,)
    p, s = g.params, g.state
    x = data((2, 6, 6, 2))

    def conv(name, h):
        y = jax.lax.conv_general_dilated(
            h, p[name]["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + p[name]["bias"]

    cat = jnp.concatenate([jax.nn.relu(conv("c1", x)), conv("c2", x)], axis=-1)
    bn = jnp.tanh((cat - s["bn"]["mean"]) / jnp.sqrt(s["bn"]["var"] + 1e-5) * p["bn"]["scale"] + p["bn"]["bias"])
    res = bn + conv("c3", bn)
    pool = res.reshape(2, 3, 2, 3, 2, 5).max(axis=(2, 4))
    expected = pool.mean(axis=(1, 2)) @ p["out"]["kernel"] + p["out"]["bias"]
    np.testing.assert_allclose(g(x), expected, rtol=1e-5, atol=1e-5)


def smooth_graph(key):
    """Every differentiable op on one path, with smooth activations (finite differences need no kinks)."""
    inp = ng.input_vertex("x", shape=(4, 4, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3, activation="tanh"), inp)
    bn = ng.vertex("bn", ng.BatchNorm("softplus"), c1)
    c2 = ng.vertex("c2", ng.Conv(3, (1, 1), activation="sigmoid"), inp)
    res = ng.add("res", bn, c2)
    cat = ng.concat("cat", res, inp)
    avg = ng.vertex("avg", ng.AvgPool(2), cat)
    sc = ng.vertex("sc", ng.Scale(0.7, use_bias=True), avg)
    gp = ng.vertex("gp", ng.GlobalPool("mean"), sc)
    out = ng.vertex("out", ng.Dense(2, "selu"), gp)
    return ng.build_graph(key, inputs=inp, outputs=out)


@pytest.mark.parametrize("train", [False, True])
def test_grad_matches_central_finite_differences(key, train):
    g32 = smooth_graph(key)
    x32 = data((3, 4, 4, 2))
    with jax.enable_x64(True):
        g = randomised(g32)
        g = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), g)
        x = jnp.asarray(x32, jnp.float64)

        def loss(graph, x):
            y, _ = ng.apply(graph, x, train=train)
            return jnp.sum(jnp.sin(y))

        gp, gx = jax.grad(loss, argnums=(0, 1))(g, x)
        assert isinstance(gp, ng.Graph) and gp.spec == g.spec
        eps = 1e-6

        @jax.jit
        def along(direction_graph, direction_x):
            plus = jax.tree_util.tree_map(lambda a, d: a + eps * d, (g, x), (direction_graph, direction_x))
            minus = jax.tree_util.tree_map(lambda a, d: a - eps * d, (g, x), (direction_graph, direction_x))
            return (loss(*plus) - loss(*minus)) / (2 * eps)

        rng = np.random.default_rng(3)
        zero_g = jax.tree_util.tree_map(jnp.zeros_like, g)
        for _ in range(2):
            # params: a random direction through every param (state has no gradient in use: keep it fixed)
            dparams = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), g.params)
            dg = zero_g.replace(params=dparams)
            analytic = sum(jnp.vdot(a, d) for a, d in zip(jax.tree.leaves(gp.params), jax.tree.leaves(dparams)))
            np.testing.assert_allclose(along(dg, jnp.zeros_like(x)), analytic, rtol=1e-6, atol=1e-8)
            # input
            dx = jnp.asarray(rng.standard_normal(x.shape))
            np.testing.assert_allclose(along(zero_g, dx), jnp.vdot(gx, dx), rtol=1e-6, atol=1e-8)
        # single coordinates: one conv kernel entry and one input element
        unit = jnp.zeros((3, 3, 2, 3)).at[1, 2, 0, 1].set(1.0)
        e = zero_g.replace(params={**zero_g.params, "c1": {**zero_g.params["c1"], "kernel": unit}})
        np.testing.assert_allclose(
            along(e, jnp.zeros_like(x)), gp.params["c1"]["kernel"][1, 2, 0, 1], rtol=1e-6, atol=1e-8
        )
        ex = jnp.zeros_like(x).at[2, 1, 3, 1].set(1.0)
        np.testing.assert_allclose(along(zero_g, ex), gx[2, 1, 3, 1], rtol=1e-6, atol=1e-8)
        assert float(jnp.abs(gx).max()) > 1e-3  # the check is not vacuous


def test_float32_grad_matches_finite_differences(key):
    g = randomised(dense_merge_graph(key), seed=5)
    x = data((4, 5))
    loss = jax.jit(lambda graph: jnp.sum(graph(x) ** 2))
    grads = jax.grad(loss)(g)
    eps = 1e-2
    for name, index in (("d2", (3, 1)), ("d3", (6, 0)), ("out", (2, 1))):
        kernel = g.params[name]["kernel"]
        shifted = lambda delta, name=name, kernel=kernel, index=index: g.replace(
            params={**g.params, name: {**g.params[name], "kernel": kernel.at[index].add(delta)}}
        )
        num = (loss(shifted(eps)) - loss(shifted(-eps))) / (2 * eps)
        np.testing.assert_allclose(num, grads.params[name]["kernel"][index], rtol=2e-3, err_msg=name)


def bn_graph(key):
    inp = ng.input_vertex("in", shape=(3,))
    d = ng.vertex("d", ng.Dense(3), inp, init="identity")
    bn = ng.vertex("bn", ng.BatchNorm(momentum=0.5), d)
    return ng.build_graph(key, inputs=inp, outputs=bn)


def test_batchnorm_state_updates_only_in_training(key):
    g = bn_graph(key)
    x = np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]], np.float32)  # batch mean [2, 4, 6], var [1, 4, 9]
    before = jax.tree.map(np.asarray, g.state)

    _, g_inf = ng.apply(g, x, train=False)
    _ = g(x)
    for tree in (g.state, g_inf.state):
        np.testing.assert_array_equal(tree["bn"]["mean"], before["bn"]["mean"])
        np.testing.assert_array_equal(tree["bn"]["var"], before["bn"]["var"])

    _, g1 = ng.apply(g, x, train=True)
    np.testing.assert_allclose(g1.state["bn"]["mean"], [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(g1.state["bn"]["var"], [1, 2.5, 5], rtol=1e-6)
    _, g2 = ng.apply(g1, x, train=True)
    np.testing.assert_allclose(g2.state["bn"]["mean"], [1.5, 3, 4.5], rtol=1e-6)
    np.testing.assert_allclose(g2.state["bn"]["var"], [1, 3.25, 7], rtol=1e-6)
    # the input graph is never changed; params pass through
    np.testing.assert_array_equal(g.state["bn"]["mean"], before["bn"]["mean"])
    assert g2.spec == g.spec
    for name in g.params:
        for k in g.params[name]:
            np.testing.assert_array_equal(g2.params[name][k], g.params[name][k])
    # inference after training uses the new running statistics
    np.testing.assert_allclose(g2(x), (x - [1.5, 3, 4.5]) / np.sqrt(np.array([1, 3.25, 7]) + 1e-5), rtol=1e-5)


TRACES = []


@jax.jit
def traced_loss(graph, x):
    TRACES.append(graph.spec)
    return jnp.sum(graph(x) ** 2)


def chain_graph(key, width):
    # names used nowhere else, so no other test has compiled these specs before the compile-count test
    inp = ng.input_vertex("trace_in", shape=(7,))
    h = ng.vertex("trace_h", ng.Dense(width, "relu"), inp)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("trace_o", ng.Dense(5), h))


def test_equal_specs_compile_once(key):
    k1, k2 = jax.random.split(key)
    g1, g2 = chain_graph(k1, 11), chain_graph(k2, 11)  # built from separate vertex objects
    assert g1.spec == g2.spec and hash(g1.spec) == hash(g2.spec) and g1.spec is not g2.spec
    assert not np.array_equal(g1.params["trace_h"]["kernel"], g2.params["trace_h"]["kernel"])
    x = data((4, 7))
    del TRACES[:]
    l1, l2 = traced_loss(g1, x), traced_loss(g2, x)
    assert len(TRACES) == 1 and float(l1) != float(l2)
    g3 = chain_graph(k1, 12)
    traced_loss(g3, x)
    assert len(TRACES) == 2

    infer, train = _graph._infer, _graph._apply
    n_infer, n_train = infer._cache_size(), train._cache_size()
    g1(x)
    assert infer._cache_size() == n_infer + 1
    g2(x), g1(x + 1)
    assert infer._cache_size() == n_infer + 1
    g3(x)
    assert infer._cache_size() == n_infer + 2
    ng.apply(g1, x, train=True), ng.apply(g2, x, train=True)
    assert train._cache_size() == n_train + 1
    ng.apply(g2, x, train=False)
    assert train._cache_size() == n_train + 2
    g1(data((9, 7)))  # a new batch size is a new input shape
    assert infer._cache_size() == n_infer + 3


def test_tree_util_round_trip_and_jit(key):
    g = conv_merge_graph(key)
    leaves, treedef = jax.tree_util.tree_flatten(g)
    n_arrays = sum(len(d) for d in g.params.values()) + sum(len(d) for d in g.state.values())
    assert len(leaves) == n_arrays == 2 * 4 + 2 + 2  # 4 kernels+biases, bn scale/bias, bn mean/var
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert isinstance(back, ng.Graph) and back.spec == g.spec
    assert jax.tree_util.tree_all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), back, g))
    # the spec is static: it is in the treedef, so different specs give different treedefs
    assert jax.tree_util.tree_structure(chain_graph(key, 3)) != jax.tree_util.tree_structure(chain_graph(key, 4))
    assert jax.tree_util.tree_structure(chain_graph(key, 3)) == jax.tree_util.tree_structure(
        chain_graph(jax.random.key(9), 3)
    )

    @jax.jit
    def sgd(graph, x):
        grads = jax.grad(lambda gr: jnp.sum(gr(x) ** 2))(graph)
        return jax.tree.map(lambda p, d: p - 0.01 * d, graph, grads)

    x = data((2, 6, 6, 2))
    g2 = sgd(g, x)
    assert isinstance(g2, ng.Graph) and g2.spec == g.spec
    eager = jax.grad(lambda gr: jnp.sum(gr(x) ** 2))(g)
    expected = np.asarray(g.params["c1"]["kernel"]) - 0.01 * np.asarray(eager.params["c1"]["kernel"])
    np.testing.assert_allclose(g2.params["c1"]["kernel"], expected, rtol=1e-5, atol=1e-7)
    assert float(jnp.sum(g2(x) ** 2)) < float(jnp.sum(g(x) ** 2))
    with pytest.raises(AttributeError):
        g.params = {}


def multi_io_graph(key):
    a = ng.input_vertex("a", shape=(3,))
    b = ng.input_vertex("b", shape=(4,))
    da = ng.vertex("da", ng.Dense(2), a)
    db = ng.vertex("db", ng.Dense(2), b)
    s = ng.add("sum", da, db)
    cat = ng.concat("cat", a, b)
    head = ng.vertex("head", ng.Dense(3, "sigmoid"), s)
    return ng.build_graph(key, inputs=[a, b], outputs=[head, cat])


def test_multiple_inputs_and_outputs(key):
    g = randomised(multi_io_graph(key))
    assert g.input_names == ("a", "b") and g.output_names == ("head", "cat")
    assert g.vertex_names[:2] == ("a", "b")
    assert g.outputs("a") == ("da", "cat") and g.inputs("cat") == ("a", "b")
    xa, xb = data((5, 3), 1), data((5, 4), 2)
    p = g.params
    h = (xa @ p["da"]["kernel"] + p["da"]["bias"]) + (xb @ p["db"]["kernel"] + p["db"]["bias"])
    head = 1 / (1 + np.exp(-(h @ p["head"]["kernel"] + p["head"]["bias"])))
    for call in (
        lambda: g(xa, xb),
        lambda: g({"b": xb, "a": xa}),
        lambda: g((xa, xb)),
        lambda: g([xa, xb]),
        lambda: ng.apply(g, {"a": xa, "b": xb}, train=True)[0],
        lambda: ng.apply(g, xa, xb)[0],
    ):
        y_head, y_cat = call()
        assert y_head.shape == (5, 3) and y_cat.shape == (5, 7)
        np.testing.assert_allclose(y_head, head, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(y_cat, np.concatenate([xa, xb], axis=1))


def test_topological_order_and_sizes(key):
    g = conv_merge_graph(key)
    names = g.vertex_names
    assert names[0] == "img"
    for name in names:
        for i in g.inputs(name):
            assert names.index(i) < names.index(name)
    assert g.nout("cat") == 5 and g.nin("cat") == (3, 2) and g.nin("out") == (5,) and g.nout("out") == 3
    assert g.nin("img") == () and g.shape("c3") == (6, 6, 5)
    assert g.outputs("bn") == ("c3", "res") and g.outputs("out") == ()


def test_nparams_and_summary(key):
    g = conv_merge_graph(key)
    hand = {
        "c1": 3 * 3 * 2 * 3 + 3,
        "c2": 1 * 1 * 2 * 2 + 2,
        "bn": 5 + 5,
        "c3": 3 * 3 * 5 * 5 + 5,
        "out": 5 * 3 + 3,
    }
    assert ng.nparams(g) == sum(hand.values()) == 57 + 6 + 10 + 230 + 18
    text = ng.summary(g)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "op"]
    assert lines[-1] == f"{len(g.vertex_names)} vertices, {sum(hand.values())} parameters"
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert set(rows) == set(g.vertex_names)
    for name in g.vertex_names:
        row = rows[name]
        assert type(g.op(name)).__name__ in row
        assert f"  {hand.get(name, 0)}  " in row or row.endswith(f"  {hand.get(name, 0)}")
        assert "x".join(map(str, g.shape(name))) in row
    assert "c1, c2" in rows["cat"] and "bn, c3" in rows["res"] and "3,2" in rows["cat"]
    assert "BatchNorm(activation='tanh'" in rows["bn"]
    assert "nparams=321" in repr(g)


def test_parameters_are_deterministic_and_per_vertex(key):
    g1, g2 = dense_merge_graph(key), dense_merge_graph(key)
    for name in g1.params:
        np.testing.assert_array_equal(g1.params[name]["kernel"], g2.params[name]["kernel"])
    g3 = dense_merge_graph(jax.random.key(1))
    assert not np.array_equal(g1.params["d1"]["kernel"], g3.params["d1"]["kernel"])
    # a vertex's parameters depend only on the key and its name (and shapes): an extra vertex elsewhere leaves them
    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(4, "relu"), inp)
    extra = ng.vertex("extra", ng.Dense(6), inp)
    g4 = ng.build_graph(key, inputs=inp, outputs=[d1, extra])
    np.testing.assert_array_equal(g4.params["d1"]["kernel"], g1.params["d1"]["kernel"])
    np.testing.assert_array_equal(g1.params["d1"]["bias"], np.zeros(4))


def test_identity_and_partial_identity_init(key):
    inp = ng.input_vertex("in", shape=(4,))
    ident = ng.vertex("id", ng.Dense(4, "relu"), inp, init="identity")
    part = ng.vertex("part", ng.Dense(3), inp, init=ng.graph.PartialIdentityInit(in_offset=2, out_offset=1))
    zero = ng.vertex("z", ng.Dense(2), inp, init="zero")
    g = ng.build_graph(key, inputs=inp, outputs=[ident, part, zero])
    x = np.abs(data((3, 4)))
    y_id, y_part, y_zero = g(x)
    np.testing.assert_array_equal(y_id, x)
    np.testing.assert_array_equal(y_part, np.stack([np.zeros(3), x[:, 2], x[:, 3]], axis=1))
    np.testing.assert_array_equal(y_zero, np.zeros((3, 2)))


def test_spec_create_drops_unused_vertices_and_keeps_input_order():
    spec = ng.GraphSpec.create(
        [
            ("b", ng.graph.Input((2,)), ()),
            ("a", ng.graph.Input((3,)), ()),
            ("unused", ng.Dense(9), ("a",)),
            ("cat", ng.graph.Concat(), ("a", "b")),
        ],
        inputs=["b", "a"],
        outputs=["cat"],
    )
    assert spec.names == ("b", "a", "cat")
    assert "unused" not in spec and spec["cat"].shape == (5,)
    assert spec.nin("cat") == (3, 2) and spec.consumers("a") == ("cat",)


def test_an_input_can_be_an_output_and_unused_inputs_are_kept(key):
    a, b = ng.input_vertex("a", shape=(3,)), ng.input_vertex("b", shape=(2,))
    d = ng.vertex("d", ng.Dense(2), a, init="identity")
    g = ng.build_graph(key, inputs=[a, b], outputs=[a, d])
    assert g.vertex_names == ("a", "b", "d")
    xa = data((4, 3))
    y_a, y_d = g(xa, data((4, 2)))
    np.testing.assert_array_equal(y_a, xa)
    np.testing.assert_array_equal(y_d, xa[:, :2])
