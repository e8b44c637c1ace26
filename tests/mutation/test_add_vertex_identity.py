"""When ``AddVertexMutation``'s identity-initialised insertion keeps the graph's function, and by how much it
changes it otherwise: the new layers' linear part is the identity, their (sampled) activation is applied as it is."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph._graph import forward


def graph(hidden_activation):
    """in (3) -> h: Dense(4, hidden_activation) -> out: Dense(2); ``h`` takes negative values when linear."""
    inp = ng.input_vertex("in", shape=(3,))
    h = ng.vertex("h", ng.Dense(4, hidden_activation), inp)
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(2), h))


def inputs():
    return jax.random.normal(jax.random.key(7), (64, 3)) * 2.0


def add_after_h(g, space):
    g2 = ng.AddVertexMutation(space)(jax.random.key(1), g, ["h"])
    assert len(g2.vertex_names) > len(g.vertex_names)  # something was inserted
    return g2


def readout(g, hidden):
    """The graph's output computed from ``hidden`` values in place of ``h``'s."""
    return hidden @ g.params["out"]["kernel"] + g.params["out"]["bias"]


@pytest.mark.parametrize(
    ("after", "new"),
    [("identity", "identity"), ("relu", "identity"), ("relu", "relu"), ("relu", "elu"), ("relu", "leaky_relu")],
)
def test_exactly_the_same_function_where_the_new_activation_is_the_identity_on_its_inputs(after, new):
    g = graph(after)
    g2 = add_after_h(g, ng.ArchSpace(ng.DenseSpace(4, new)))
    new_vertex = g2.inputs("out")[0]
    np.testing.assert_array_equal(g2.params[new_vertex]["kernel"], np.eye(4))
    np.testing.assert_array_equal(g2(inputs()), g(inputs()))


@pytest.mark.parametrize("paths", [2, 3])
def test_forks_and_residual_blocks_of_identity_layers_are_exact_too(paths):
    g = graph("identity")
    for space in (
        ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(4, "identity")), [paths]),
        ng.ResidualArchSpace(ng.VertexSpace(ng.DenseSpace(4, "identity"))),
    ):
        np.testing.assert_array_equal(add_after_h(g, space)(inputs()), g(inputs()))


def test_a_relu_after_negative_values_changes_the_function_by_zeroing_them():
    g = graph("identity")
    g2 = add_after_h(g, ng.ArchSpace(ng.DenseSpace(4, "relu")))
    x = inputs()
    hidden = x @ g.params["h"]["kernel"] + g.params["h"]["bias"]
    assert float(jnp.min(hidden)) < -1.0
    # the new vertex computes relu(h): exactly the graph with h's negative values zeroed
    np.testing.assert_allclose(g2(x), readout(g, jax.nn.relu(hidden)), rtol=1e-6, atol=1e-6)
    assert float(jnp.max(jnp.abs(g2(x) - g(x)))) > 1.0


@pytest.mark.parametrize(("new", "expected"), [("selu", 1.0507009873554805), ("tanh", None)])
def test_activations_that_are_not_the_identity_on_non_negative_values_change_the_function(new, expected):
    g = graph("relu")
    g2 = add_after_h(g, ng.ArchSpace(ng.DenseSpace(4, new)))
    x = inputs()
    hidden = jax.nn.relu(x @ g.params["h"]["kernel"] + g.params["h"]["bias"])
    changed = readout(g, ng.graph.activation(new)(hidden))
    np.testing.assert_allclose(g2(x), changed, rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(g2(x) - g(x)))) > 0.01
    if expected is not None:  # selu is a scaled identity on positive values
        bias = g.params["out"]["bias"]
        np.testing.assert_allclose(changed - bias, expected * (g(x) - bias), rtol=1e-5, atol=1e-6)


def test_a_new_batch_norm_is_nearly_the_identity_in_inference_and_normalises_in_training():
    g = graph("relu")
    g2 = add_after_h(g, ng.ArchSpace(ng.BatchNormSpace("identity")))
    x = inputs()
    before, after = np.asarray(g(x)), np.asarray(g2(x))
    bias = np.asarray(g.params["out"]["bias"])
    # inference: the fresh statistics (mean 0, var 1) divide by sqrt(1 + epsilon)
    np.testing.assert_allclose(after - bias, (before - bias) / np.sqrt(1 + 1e-5), rtol=1e-6, atol=1e-7)
    assert 0 < np.max(np.abs(after - before)) < 1e-4
    # training: the batch's own statistics normalise h
    trained_mode, _ = forward(g2, (x,), train=True, key=jax.random.key(0))
    hidden = jax.nn.relu(x @ g.params["h"]["kernel"] + g.params["h"]["bias"])
    normalised = (hidden - hidden.mean(0)) / jnp.sqrt(hidden.var(0) + 1e-5)
    np.testing.assert_allclose(trained_mode[0], readout(g, normalised), rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(trained_mode[0] - g(x)))) > 0.1
