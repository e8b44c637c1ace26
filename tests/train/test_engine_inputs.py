"""What the engine trains on: arrays changed in place between calls, and the shape a loss returns.

Off CPU the engine moves the examples to the device and gathers batches there; ``_engine._batches_on_device``
decides that, and the tests force that path on CPU by patching it.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng
from naivega_jax.evolution import _train_fitness
from naivega_jax.train import _engine


@pytest.fixture
def device_path(monkeypatch):
    monkeypatch.setattr(_engine, "_batches_on_device", lambda: True)


def binary_problem(n=200, seed=0):
    """Two features; the label is 1 where the second is larger, except for a tenth of the examples (flipped)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x[:, 1] > x[:, 0]).astype(np.int32)
    y[: n // 10] = 1 - y[: n // 10]
    return x, y


def argmax_graph():
    """Predicts the larger of its two inputs: accuracy 0.9 on ``binary_problem``."""
    inp = ng.input_vertex("in", shape=(2,))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
    return g.replace(params={"d": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}})


def mlp(key=0, features=2, out=2):
    inp = ng.input_vertex("in", shape=(features,))
    h = ng.vertex("h", ng.Dense(8, "relu"), inp)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("out", ng.Dense(out), h))


def test_forcing_the_device_path_moves_the_data_to_the_device(device_path):
    x, y = binary_problem()
    data = _engine._Data(argmax_graph(), x, y, "test")
    assert data.on_device and all(isinstance(a, jax.Array) for a in jax.tree_util.tree_leaves(data.arrays))


@pytest.mark.parametrize("forced", [False, True])
def test_evaluate_accuracy_sees_labels_flipped_in_place(request, forced):
    if forced:
        request.getfixturevalue("device_path")
    x, y = binary_problem()
    g = argmax_graph()
    assert ng.evaluate_accuracy(g, x, y, batch_size=64) == pytest.approx(0.9)
    y[:] = 1 - y  # relabelled in place: same object, same id
    assert ng.evaluate_accuracy(g, x, y, batch_size=64) == pytest.approx(0.1)
    x[:] = x[:, ::-1]  # refilled in place: the argmax graph now predicts the flipped labels
    assert ng.evaluate_accuracy(g, x, y, batch_size=64) == pytest.approx(0.9)


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_train_graph_trains_on_the_arrays_as_they_are_at_the_call(device_path, driver):
    x, y = binary_problem()
    kw = dict(optimiser=ng.Adam(0.01), batch_size=32, epochs=2, driver=driver)
    first = ng.train_graph(jax.random.key(1), mlp(), x, y, **kw)
    y[:] = 1 - y
    again = ng.train_graph(jax.random.key(1), mlp(), x, y, **kw)
    fresh = ng.train_graph(jax.random.key(1), mlp(), x.copy(), y.copy(), **kw)
    np.testing.assert_array_equal(again.losses, fresh.losses)
    assert np.abs(again.losses - first.losses).max() > 0.1
    # the first run learnt the labels, the second their complement
    assert ng.evaluate_accuracy(first.graph, x, 1 - y) > 0.8 and ng.evaluate_accuracy(again.graph, x, y) > 0.8


def counting_copies(monkeypatch):
    """Patches the fitness module's ``train_graph`` to record which arrays each call got."""
    seen = []

    def recording(key, graph, x, y, **kw):
        seen.append((x, y))
        return ng.train_graph(key, graph, x, y, **kw)

    monkeypatch.setattr(_train_fitness, "train_graph", recording)
    return seen


@pytest.mark.parametrize("kind", ["then", "accuracy"])
def test_train_fitness_hands_the_engine_one_device_copy_made_when_built(device_path, monkeypatch, kind):
    x, y = binary_problem()
    seen = counting_copies(monkeypatch)

    def build(data):
        kw = dict(default_optimiser=ng.Adam(0.01), epochs=2)
        if kind == "then":
            return ng.TrainThenFitness(data, fitness=lambda k, c: c.replace(fitness=1.0), **kw)
        return ng.TrainAccuracyFitness(data, drop=0.0, **kw)

    fit = build((x, y))
    built = (x.copy(), y.copy())
    y[:] = 1 - y  # after the fitness is built: not seen, the fitness owns its data from construction on
    scored = [fit(jax.random.key(i), ng.Candidate(mlp(i), batch_size=32)) for i in range(2)]
    assert len(seen) == 2 and all(isinstance(a, jax.Array) for pair in seen for a in pair)
    assert seen[0][0] is seen[1][0] and seen[0][1] is seen[1][1]  # no copy per candidate
    np.testing.assert_array_equal(np.asarray(seen[0][1]), built[1])
    expected = build(built)(jax.random.key(0), ng.Candidate(mlp(0), batch_size=32))
    assert scored[0].info["train_loss"] == expected.info["train_loss"]


def test_train_fitness_copies_of_several_inputs_and_callable_data(device_path, monkeypatch):
    x, y = binary_problem()
    inp_a, inp_b = ng.input_vertex("a", shape=(2,)), ng.input_vertex("b", shape=(2,))
    both = ng.vertex("cat", ng.graph.Concat(), inp_a, inp_b)
    g = ng.build_graph(jax.random.key(0), inputs=[inp_a, inp_b], outputs=ng.vertex("out", ng.Dense(2), both))
    seen = counting_copies(monkeypatch)
    for data in (((x, x), y), ({"a": x, "b": x}, y)):
        fit = ng.TrainAccuracyFitness(data, drop=0.0)
        assert 0.0 <= fit(jax.random.key(0), ng.Candidate(g, batch_size=32)).fitness <= 1.0
    assert isinstance(seen[0][0], tuple) and isinstance(seen[1][0], dict)
    assert all(isinstance(a, jax.Array) for pair in seen for a in jax.tree_util.tree_leaves(pair))
    # a callable's data is the callable's to own: relabelled in place, trained on as it is at each call
    fit = ng.TrainAccuracyFitness(lambda generation: (x, y), drop=0.0, default_optimiser=ng.SGD(0.0))
    before = fit(jax.random.key(0), ng.Candidate(argmax_graph(), batch_size=32)).fitness
    y[:] = 1 - y
    after = fit(jax.random.key(0), ng.Candidate(argmax_graph(), batch_size=32)).fitness
    assert (before, after) == pytest.approx((0.9, 0.1))


def test_train_fitness_pickles_without_its_device_copies(device_path):
    import pickle

    x, y = binary_problem()
    fit = ng.TrainAccuracyFitness((x, y), drop=0.0, default_optimiser=ng.SGD(0.0))
    back = pickle.loads(pickle.dumps(fit))
    c = ng.Candidate(argmax_graph(), batch_size=32)
    assert back(jax.random.key(0), c).fitness == fit(jax.random.key(0), c).fitness == pytest.approx(0.9)


_SEVERAL_DEVICES = """
import jax, numpy as np, naivega_jax as ng
from naivega_jax.train import _engine
_engine._batches_on_device = lambda: True
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 2)).astype(np.float32)
y = (x[:, 1] > x[:, 0]).astype(np.int32)
fit = ng.TrainAccuracyFitness((x, y), drop=0.0, default_optimiser=ng.Adam(0.01))
d0, d1 = jax.devices()[:2]
with jax.default_device(d1):
    xs, ys = fit._data.here()
    assert (xs.devices(), ys.devices()) == ({d1}, {d1}), (xs.devices(), ys.devices())
    assert fit._data.here()[0] is xs
assert fit._data.here()[0].devices() == {d0}
inp = ng.input_vertex("in", shape=(2,))
g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
pop = ng.Population([ng.Candidate(g, batch_size=32)] * 4)
local = ng.evolution.evaluate(jax.random.key(1), fit, pop).fitnesses
spread = ng.evolution.evaluate(jax.random.key(1), fit, pop, executor=ng.distributed.DeviceExecutor(2)).fitnesses
assert local == spread and min(local) > 0.5, (local, spread)
print("ok", local)
"""


def test_train_fitness_copies_land_on_the_threads_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SEVERAL_DEVICES)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


# ---- the shape a loss returns -------------------------------------------------------------------------------------


def regression(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)


def linear(key=0):
    inp = ng.input_vertex("in", shape=(3,))
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("out", ng.Dense(1), inp))


def squared(o, y):
    return (o - y) ** 2


def squared_per_example(o, y):
    return (o[:, 0] - y) ** 2


@pytest.mark.parametrize("driver", ["loop", "scan"])
def test_elementwise_and_per_example_losses_train_alike(driver):
    x, y = regression()  # 90 examples at batch 32: the last batch is padded
    kw = dict(optimiser=ng.Adam(0.05), batch_size=32, epochs=20, driver=driver)
    per = ng.train_graph(jax.random.key(1), linear(), x, y, loss=squared_per_example, **kw)
    elementwise = ng.train_graph(jax.random.key(1), linear(), x, y[:, None], loss=squared, **kw)
    np.testing.assert_allclose(elementwise.losses, per.losses, rtol=1e-5, atol=1e-6)
    assert per.losses[-3:].mean() < 0.01 * per.losses[:3].mean()


@pytest.mark.parametrize("loss", ["per_example", "elementwise"])
def test_padded_rows_are_left_out_of_both_loss_forms(loss):
    x, y = regression()  # one batch of 128: 90 examples and 38 repeats of them, masked out
    out = np.asarray(linear()(jnp.asarray(x)))[:, 0]
    fn, targets = (squared_per_example, y) if loss == "per_example" else (squared, y[:, None])
    r = ng.train_graph(jax.random.key(1), linear(), x, targets, loss=fn, batch_size=128, shuffle=False)
    assert r.losses[0] == pytest.approx(float(np.mean((out - y) ** 2)), rel=1e-5)


def test_a_loss_that_broadcasts_is_refused_with_both_shapes():
    x, y = regression()
    with pytest.raises(ng.ShapeError, match=r"\(32, 32\)") as info:
        ng.train_graph(jax.random.key(1), linear(), x, y, loss=squared, batch_size=32)
    message = str(info.value)
    assert "(32,)" in message and "(32, 1)" in message and "loss" in message
    with pytest.raises(ValueError, match=r"\(8, 3\)"):
        ng.train.step_memory(mlp(features=3), 8, loss=lambda o, y: jnp.concatenate([o, o[:, :1]], axis=1))


def test_a_loss_keeping_a_size_one_axis_for_a_wider_output_is_refused():
    x, y = binary_problem()
    keepdims = lambda o, y: optax.softmax_cross_entropy_with_integer_labels(o, y)[:, None]
    with pytest.raises(ng.ShapeError, match=r"\(32, 1\).*\(32,\).*\(32, 2\)"):
        ng.train_graph(jax.random.key(1), mlp(), x, y, loss=keepdims, batch_size=32)


def test_a_train_fitness_with_a_broadcasting_loss_fails_its_candidates_with_the_shapes(caplog):
    x, y = regression()
    fit = ng.TrainThenFitness((x, y), fitness=lambda k, c: c.replace(fitness=1.0), loss=squared)
    pop = ng.evolution.evaluate(jax.random.key(0), fit, ng.Population([ng.Candidate(linear(), batch_size=16)]))
    assert pop.fitnesses == (0.0,)
    assert "(16, 16)" in pop.candidates[0].info["failure"] and "(16, 16)" in caplog.text
