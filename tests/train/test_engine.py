import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng
from naivega_jax.train._engine import _initial_carry

CE = optax.softmax_cross_entropy_with_integer_labels


def blobs(n=120, features=8, classes=3, seed=0):
    """A fixed, linearly separable problem: well separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)).astype(np.float32) * 4
    y = np.arange(n, dtype=np.int32) % classes
    x = centres[y] + rng.standard_normal((n, features)).astype(np.float32) * 0.5
    return x, y


def mlp(key=0, features=8, hidden=16, classes=3, extra=()):
    inp = ng.input_vertex("in", shape=(features,))
    h = ng.vertex("h", ng.Dense(hidden, "relu"), inp)
    for i, op in enumerate(extra):
        h = ng.vertex(f"x{i}", op, h)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("out", ng.Dense(classes), h))


def leaves(graph):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves((graph.params, graph.state))]


def max_diff(g1, g2):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(g1), leaves(g2)))


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_mlp_learns_a_separable_problem(driver):
    x, y = blobs()
    r = ng.train_graph(jax.random.key(1), mlp(), x, y, optimiser=ng.Adam(0.01), batch_size=16, epochs=5, driver=driver)
    assert r.driver == driver and not r.nonfinite and r.failure is None
    assert r.steps == 5 * 8 and r.epochs == 5
    assert ng.evaluate_accuracy(r.graph, x, y) > 0.9
    assert r.losses[-8:].mean() < 0.5 * r.losses[:8].mean()
    assert r.correct.shape == (5 * 120,) and r.correct[-120:].mean() > 0.9


def test_same_key_same_result_and_different_key_different_shuffle():
    x, y = blobs()
    g = mlp()
    runs = [ng.train_graph(jax.random.key(k), g, x, y, batch_size=16, driver="loop") for k in (3, 3, 4)]
    assert max_diff(runs[0].graph, runs[1].graph) == 0.0
    assert max_diff(runs[0].graph, runs[2].graph) > 0.0


def test_loop_and_scan_give_the_same_parameters():
    x, y = blobs(n=100)
    g = mlp(extra=(ng.Dropout(0.2),))
    kw = dict(optimiser=ng.Adam(0.01), batch_size=16, epochs=3)
    loop = ng.train_graph(jax.random.key(2), g, x, y, driver="loop", **kw)
    scan = ng.train_graph(jax.random.key(2), g, x, y, driver="scan", **kw)
    assert max_diff(loop.graph, scan.graph) < 1e-5
    np.testing.assert_allclose(loop.losses, scan.losses, rtol=1e-5)
    np.testing.assert_array_equal(loop.correct, scan.correct)


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_padded_last_batch_gives_the_unpadded_gradient(driver):
    x, y = blobs(n=5)
    g = mlp()
    lr = 0.5
    r = ng.train_graph(jax.random.key(0), g, x, y, optimiser=ng.SGD(lr), batch_size=8, shuffle=False, driver=driver)

    def loss(params):
        return CE(g.replace(params=params)(jnp.asarray(x)), jnp.asarray(y)).mean()

    grads = jax.grad(loss)(g.params)
    expected = jax.tree_util.tree_map(lambda p, d: p - lr * d, g.params, grads)
    for a, b in zip(jax.tree_util.tree_leaves(r.graph.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert r.correct.shape == (5,)


def test_learning_rate_change_and_equal_specs_compile_nothing(monkeypatch):
    import naivega_jax.train._step as engine  # the traced step's module

    traces = []
    original = engine.forward

    def counting_forward(*args, **kwargs):  # runs only while a step is traced: compiled steps never call Python
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "forward", counting_forward)
    x, y = blobs()
    kw = dict(batch_size=16, driver="loop")
    first = ng.train_graph(jax.random.key(0), mlp(0, hidden=21), x, y, optimiser=ng.Adam(1e-3), **kw)
    assert len(traces) == 1 and first.compiles == 1 and first.compile_seconds > 0
    other_lr = ng.train_graph(jax.random.key(0), mlp(0, hidden=21), x, y, optimiser=ng.Adam(0.5), **kw)
    other_params = ng.train_graph(jax.random.key(0), mlp(7, hidden=21), x, y, optimiser=ng.Adam(0.1), **kw)
    for r in (other_lr, other_params):
        assert r.compiles == 0 and r.cache_hits >= 1 and r.compile_seconds == 0.0 and r.train_seconds > 0
    assert len(traces) == 1
    assert max_diff(first.graph, other_lr.graph) > 0  # the new learning rate was used
    new_type = ng.train_graph(jax.random.key(0), mlp(0, hidden=21), x, y, optimiser=ng.SGD(0.1), **kw)
    assert new_type.compiles == 1 and new_type.compile_seconds > 0 and len(traces) == 2


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_partial_last_batch_compiles_nothing_new(driver):
    x, y = blobs(n=64)
    g = mlp()
    ng.train_graph(jax.random.key(0), g, x, y, batch_size=32, driver=driver)
    before = ng.train.engine_stats()["compiles"]
    r = ng.train_graph(jax.random.key(0), g, x[:60], y[:60], batch_size=32, driver=driver)
    assert r.compiles == 0 and ng.train.engine_stats()["compiles"] == before
    assert r.correct.shape == (60,)


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_nonfinite_loss_is_detected_and_training_stops(driver):
    x, y = blobs()
    g = mlp()
    r = ng.train_graph(
        jax.random.key(0), g, x, y, optimiser=ng.SGD(1e30), batch_size=8, epochs=3, driver=driver, check_every=4
    )
    assert r.nonfinite and r.failure in ("NaN loss detected when training!", "Inf loss detected when training!")
    assert not np.all(np.isfinite(r.losses))
    assert r.epochs == 1
    if driver == "loop":
        assert r.steps == 4  # stopped at the first check, not after 3 epochs of 15 steps
    assert np.isfinite(r.losses[0])  # the first step's loss is finite, a later one is not
    assert r.graph is g  # a failed run hands back the input graph, not NaN weights


def test_inf_in_the_data_is_detected():
    x, y = blobs()
    x = x.copy()
    x[3, 0] = np.inf
    r = ng.train_graph(jax.random.key(0), mlp(), x, y, batch_size=16, shuffle=False, driver="scan")
    assert r.nonfinite and r.failure in ("NaN loss detected when training!", "Inf loss detected when training!")
    assert max_diff(r.graph, mlp()) == 0.0


def test_driver_choice_is_pinned_on_cpu():
    dense = mlp()
    inp = ng.input_vertex("in", shape=(12, 2))
    c = ng.vertex("c", ng.Conv(4, 3, activation="relu"), inp)
    conv = ng.build_graph(
        jax.random.key(0),
        inputs=inp,
        outputs=ng.vertex("d", ng.Dense(3), ng.vertex("p", ng.GlobalPool("mean"), c)),
    )
    pool_in = ng.input_vertex("in", shape=(4, 4, 1))
    pool = ng.build_graph(
        jax.random.key(0),
        inputs=pool_in,
        outputs=ng.vertex("f", ng.Flatten(), ng.vertex("p", ng.MaxPool(2), pool_in)),
    )
    assert ng.train.choose_driver(conv, "cpu") == "loop" and ng.train.choose_driver(pool, "cpu") == "loop"
    assert ng.train.choose_driver(dense, "cpu") == "scan"
    for backend in ("gpu", "tpu"):
        assert ng.train.choose_driver(conv, backend) == "scan" and ng.train.choose_driver(dense, backend) == "scan"
    if jax.default_backend() == "cpu":
        x = np.random.default_rng(0).standard_normal((10, 12, 2)).astype(np.float32)
        y = np.arange(10, dtype=np.int32) % 3
        assert ng.train_graph(jax.random.key(0), conv, x, y, batch_size=4).driver == "loop"
        assert ng.train_graph(jax.random.key(0), conv, x, y, batch_size=4, driver="scan").driver == "scan"


def test_batch_norm_state_updates_and_dropout_uses_the_key():
    x, y = blobs()
    g = mlp(extra=(ng.BatchNorm(), ng.Dropout(0.5)))
    r1 = ng.train_graph(jax.random.key(0), g, x, y, optimiser=ng.SGD(0.0), batch_size=16, shuffle=False)
    assert not np.allclose(r1.graph.state["x0"]["mean"], g.state["x0"]["mean"])
    np.testing.assert_array_equal(r1.graph.params["h"]["kernel"], g.params["h"]["kernel"])  # lr 0: only state
    r2 = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(0.1), batch_size=16, shuffle=False)
    r3 = ng.train_graph(jax.random.key(2), g, x, y, optimiser=ng.SGD(0.1), batch_size=16, shuffle=False)
    assert max_diff(r2.graph, r3.graph) > 0  # only the dropout keys differ


def test_the_input_graph_is_left_intact():
    x, y = blobs()
    g = mlp()
    before = leaves(g)
    for driver in ("loop", "scan"):
        ng.train_graph(jax.random.key(0), g, x, y, batch_size=16, driver=driver)
        for a, b in zip(before, leaves(g)):
            np.testing.assert_array_equal(a, b)
    assert g(jnp.asarray(x[:2])).shape == (2, 3)


def test_one_hot_targets_and_several_inputs():
    x, y = blobs()
    a, b = ng.input_vertex("a", shape=(4,)), ng.input_vertex("b", shape=(4,))
    h = ng.vertex("h", ng.Dense(16, "relu"), ng.concat("c", a, b))
    g = ng.build_graph(jax.random.key(0), inputs=[a, b], outputs=ng.vertex("o", ng.Dense(3), h))
    onehot = np.eye(3, dtype=np.float32)[y]
    r = ng.train_graph(
        jax.random.key(0),
        g,
        {"a": x[:, :4], "b": x[:, 4:]},
        onehot,
        loss=optax.softmax_cross_entropy,
        optimiser=ng.Adam(0.01),
        batch_size=16,
        epochs=4,
    )
    assert ng.evaluate_accuracy(r.graph, (x[:, :4], x[:, 4:]), y) > 0.9
    assert ng.evaluate_accuracy(r.graph, (x[:, :4], x[:, 4:]), onehot) > 0.9
    assert r.correct.shape == (4 * 120,)


def test_evaluate_accuracy_pads_and_compiles_once_per_spec():
    g = mlp()
    g = g.replace(
        params={
            "h": {"kernel": jnp.eye(8, 16), "bias": jnp.zeros(16)},
            "out": {"kernel": jnp.eye(16, 3), "bias": jnp.zeros(3)},
        }
    )
    x = np.zeros((5, 8), np.float32)
    x[np.arange(5), [0, 1, 2, 0, 1]] = 1.0
    y = np.array([0, 1, 2, 2, 2], np.int32)  # predictions 0, 1, 2, 0, 1: 3 of 5 right
    assert ng.evaluate_accuracy(g, x, y, batch_size=2) == pytest.approx(0.6)
    before = ng.train.engine_stats()["compiles"]
    assert ng.evaluate_accuracy(g, x[:3], y[:3], batch_size=2) == 1.0
    assert ng.evaluate_accuracy(mlp(3), np.ones((7, 8), np.float32), np.zeros(7, np.int32), batch_size=2) >= 0
    assert ng.train.engine_stats()["compiles"] == before


def test_host_initial_optimiser_state_equals_optax_init():
    g = mlp()
    specs = [
        ng.SGD(0.1),
        ng.Momentum(0.1),
        ng.Nesterov(0.1),
        ng.Adam(0.1),
        ng.NAdam(0.1),
        ng.AdaGrad(0.1),
        ng.RMSProp(0.1),
        ng.AdamW(0.1),
        ng.WeightDecay(0.1),
        ng.OptimiserChain(ng.WeightDecay(0.2), ng.ShieldedOpt(ng.Momentum(0.3))),
    ]
    for spec in specs:
        _, state, ok = _initial_carry(g, spec)
        reference = spec.to_optax().init(g.params)
        assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(reference)
        for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(reference)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert bool(ok)


def test_bad_arguments_are_named():
    x, y = blobs()
    g = mlp()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="input 'in'"):
        ng.train_graph(key, g, x[:, :5], y)
    with pytest.raises(ValueError, match="same number"):
        ng.train_graph(key, g, x, y[:10])
    with pytest.raises(ValueError, match="batch_size"):
        ng.train_graph(key, g, x, y, batch_size=0)
    with pytest.raises(ValueError, match="driver"):
        ng.train_graph(key, g, x, y, driver="fast")
    with pytest.raises(TypeError, match="optimiser"):
        ng.train_graph(key, g, x, y, optimiser="adam")
    with pytest.raises(TypeError, match="graph"):
        ng.train_graph(key, "graph", x, y)
    with pytest.raises(ValueError, match="one value per example"):
        ng.train_graph(key, g, x, y, loss=lambda out, t: CE(out, t).mean())
    with pytest.raises(ValueError, match="labels"):
        ng.evaluate_accuracy(g, x, y.astype(np.float32))
    with pytest.raises(ValueError, match="one-hot"):
        ng.evaluate_accuracy(g, x, x)


def test_activation_utility_is_updated_inside_the_step():
    x, y = blobs(n=5)
    g = mlp()
    r = ng.train_graph(
        jax.random.key(0), g, x, y, optimiser=ng.SGD(0.1), batch_size=8, shuffle=False, activation_utility=True
    )
    assert set(r.graph.state) == {"h", "out"}
    # one step on 5 real rows padded to 8: u = alpha * eps + (1 - alpha) * mean_rows |a * dL/da|
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    hidden = jax.nn.relu(xj @ g.params["h"]["kernel"] + g.params["h"]["bias"])

    def loss_of_hidden(h):
        return CE(h @ g.params["out"]["kernel"] + g.params["out"]["bias"], yj).mean()

    contribution = jnp.abs(hidden * jax.grad(loss_of_hidden)(hidden)).mean(axis=0)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(r.graph.state["h"]["utility"], 0.05 * eps + 0.95 * contribution, rtol=1e-5, atol=1e-9)
    again = ng.train_graph(jax.random.key(0), r.graph, x, y, optimiser=ng.SGD(0.1), batch_size=8, shuffle=False)
    assert again.compiles == 0
    assert not np.allclose(again.graph.state["h"]["utility"], r.graph.state["h"]["utility"])


def test_activation_utility_agrees_between_drivers():
    x, y = blobs(n=50)
    g = mlp()
    kw = dict(optimiser=ng.Adam(0.01), batch_size=16, epochs=2, activation_utility=True)
    loop = ng.train_graph(jax.random.key(1), g, x, y, driver="loop", **kw)
    scan = ng.train_graph(jax.random.key(1), g, x, y, driver="scan", **kw)
    assert max_diff(loop.graph, scan.graph) < 1e-5
    assert np.all(np.asarray(loop.graph.state["h"]["utility"]) >= 0)


def test_step_memory_grows_with_batch_and_primes_the_cache():
    x, y = blobs()
    g = mlp(hidden=24)
    small, large = ng.train.step_memory(g, 4), ng.train.step_memory(g, 256)
    if small is None:
        pytest.skip("this backend gives no memory analysis")
    assert set(small) == {"argument", "output", "alias", "temp", "generated_code", "total"}
    assert large["argument"] > small["argument"] and large["total"] > small["total"]
    r = ng.train_graph(jax.random.key(0), g, x, y, batch_size=256, driver="loop", compile_tier="full")
    assert r.compiles == 0
    with pytest.raises(ValueError, match="compile_tier must be one of"):
        ng.train.step_memory(g, 4, compile_tier="auto")
