import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng


def _graph(key, nout, bn=True):
    inp = ng.input_vertex("in", shape=(4,))
    h = ng.vertex("d1", ng.Dense(6, activation="relu"), inp)
    if bn:
        h = ng.vertex("bn", ng.BatchNorm(), h)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("d2", ng.Dense(nout), h))


def _numpy_outputs(g, x):
    """Inference by hand in numpy (float64): dense, relu, batch norm with the running statistics, dense."""
    p, s = g.params, g.state["bn"]
    h = np.maximum(x @ np.asarray(p["d1"]["kernel"], np.float64) + np.asarray(p["d1"]["bias"], np.float64), 0.0)
    h = (h - np.asarray(s["mean"])) / np.sqrt(np.asarray(s["var"]) + g.op("bn").epsilon)
    h = h * np.asarray(p["bn"]["scale"]) + np.asarray(p["bn"]["bias"])
    return h @ np.asarray(p["d2"]["kernel"], np.float64) + np.asarray(p["d2"]["bias"], np.float64)


def _trained_statistics(g, x):
    # running statistics away from their (0, 1) init, so that inference mode is really what is evaluated
    _, g = ng.apply(g, x * 3.0 + 1.0, train=True)
    return g


def test_mse_equals_numpy(key):
    x = np.asarray(jax.random.normal(jax.random.key(1), (37, 4)), np.float64)
    y = np.asarray(jax.random.normal(jax.random.key(2), (37, 3)), np.float64)
    g = _trained_statistics(_graph(key, 3), jnp.asarray(x, jnp.float32))
    expected = np.mean((_numpy_outputs(g, x) - y) ** 2)
    mse = lambda out, t: (out - t) ** 2  # the outputs' shape, averaged per example
    got = ng.evaluate_loss(g, x.astype(np.float32), y.astype(np.float32), mse, batch_size=8)
    assert got == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1


def test_cross_entropy_equals_numpy(key):
    x = np.asarray(jax.random.normal(jax.random.key(3), (50, 4)), np.float64)
    y = np.asarray(jax.random.randint(jax.random.key(4), (50,), 0, 5))
    g = _trained_statistics(_graph(key, 5), jnp.asarray(x, jnp.float32))
    logits = _numpy_outputs(g, x)
    logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    expected = np.mean(logz - logits[np.arange(50), y])
    loss = optax.softmax_cross_entropy_with_integer_labels
    assert ng.evaluate_loss(g, x.astype(np.float32), y, loss) == pytest.approx(expected, rel=1e-5)


def test_padding_does_not_change_the_value(key):
    x = jax.random.normal(jax.random.key(5), (23, 4))
    y = jax.random.randint(jax.random.key(6), (23,), 0, 3)
    g = _graph(key, 3)
    loss = optax.softmax_cross_entropy_with_integer_labels
    values = [ng.evaluate_loss(g, x, y, loss, batch_size=b) for b in (1, 5, 23, 64)]
    assert values == pytest.approx([values[0]] * 4, rel=1e-6)
    # a batch of 5 pads 23 examples to 25: the two padded rows would shift the mean by 2/25 if counted
    direct = float(jnp.mean(loss(g(x), y)))
    assert values[1] == pytest.approx(direct, rel=1e-6)


def test_a_second_call_does_not_recompile(key):
    x = jax.random.normal(jax.random.key(7), (40, 4))
    y = jax.random.randint(jax.random.key(8), (40,), 0, 3)
    loss = optax.softmax_cross_entropy_with_integer_labels
    g1, g2 = _graph(key, 3, bn=False), _graph(jax.random.key(9), 3, bn=False)
    first = ng.evaluate_loss(g1, x, y, loss, batch_size=16)
    before = ng.train.engine_stats()
    second = ng.evaluate_loss(g2, x[:33], y[:33], loss, batch_size=16)  # same spec, other weights and data size
    after = ng.train.engine_stats()
    assert after["compiles"] == before["compiles"]
    assert after["cache_hits"] > before["cache_hits"]
    assert first != second


def test_a_loss_of_the_wrong_shape_is_refused(key):
    g = _graph(key, 1, bn=False)
    x, y = jnp.ones((6, 4)), jnp.ones((6,))
    with pytest.raises(ng.ShapeError, match=r"returned shape \(8, 8\)"):
        ng.evaluate_loss(g, x, y, lambda out, t: (out - t) ** 2, batch_size=8)
    with pytest.raises(TypeError, match="loss must be a callable"):
        ng.evaluate_loss(g, x, y, "mse")
