"""``train_graph(..., opt_state=...)``: continuing an optimiser state across calls."""

import jax
import numpy as np
import optax
import pytest
from train_helpers import blobs, leaves, mlp

import naivega_jax as ng

FEATURES = 15


@pytest.fixture(scope="module")
def data():
    return blobs(80, FEATURES)


def _two_halves_and_whole(g, x, y, optimiser, **kw):
    kw = dict(batch_size=16, shuffle=False, compile_tier="full", **kw)
    whole = ng.train_graph(jax.random.key(1), g, x, y, optimiser=optimiser, epochs=2, **kw)
    first = ng.train_graph(jax.random.key(1), g, x, y, optimiser=optimiser, epochs=1, **kw)
    second = ng.train_graph(jax.random.key(1), first.graph, x, y, optimiser=optimiser, opt_state=first.opt_state, **kw)
    fresh = ng.train_graph(jax.random.key(1), first.graph, x, y, optimiser=optimiser, **kw)
    return whole, first, second, fresh


@pytest.mark.parametrize("driver", ["scan", "loop"])
def test_two_calls_continuing_adam_equal_one_longer_call(data, driver):
    x, y = data
    whole, first, second, fresh = _two_halves_and_whole(mlp(8, FEATURES), x, y, ng.Adam(1e-2), driver=driver)
    np.testing.assert_array_equal(leaves(second.graph), leaves(whole.graph))
    np.testing.assert_array_equal(np.concatenate([first.losses, second.losses]), whole.losses)
    assert np.abs(leaves(fresh.graph) - leaves(whole.graph)).max() > 1e-4  # fresh moments train differently
    assert int(second.opt_state.count) == 10 and second.compiles == 0


def test_a_schedule_continues_from_the_optimisers_count(data):
    x, y = data
    schedule = optax.piecewise_constant_schedule(0.05, {7: 0.0})
    whole, _, second, fresh = _two_halves_and_whole(mlp(8, FEATURES), x, y, ng.Adam(schedule))
    np.testing.assert_array_equal(leaves(second.graph), leaves(whole.graph))
    assert int(second.opt_state.count) == 10 and int(second.opt_state.inner_state[1].count) == 10
    assert np.abs(leaves(fresh.graph) - leaves(whole.graph)).max() > 1e-4


def test_plain_optax_and_chains_continue(data):
    x, y = data
    for optimiser in (optax.adamw(1e-2), ng.OptimiserChain(ng.WeightDecay(1e-3), ng.Momentum(0.05))):
        whole, _, second, _ = _two_halves_and_whole(mlp(6, FEATURES), x, y, optimiser)
        np.testing.assert_array_equal(leaves(second.graph), leaves(whole.graph))


def test_returned_state_is_shaped_like_the_params(data):
    x, y = data
    g = mlp(8, FEATURES)
    r = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.Adam(1e-2), batch_size=16)
    expected = jax.eval_shape(ng.Adam(1e-2).to_optax().init, g.params)
    assert jax.tree_util.tree_structure(r.opt_state) == jax.tree_util.tree_structure(expected)
    assert r.opt_state.inner_state[0].mu["h"]["kernel"].shape == (FEATURES, 8)


def test_the_specs_current_hyperparameters_replace_the_stored_ones(data):
    x, y = data
    g = mlp(8, FEATURES)
    kw = dict(batch_size=16, compile_tier="full")
    first = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.Adam(1e-2), **kw)
    stopped = ng.train_graph(
        jax.random.key(2), first.graph, x, y, optimiser=ng.Adam(0.0), opt_state=first.opt_state, **kw
    )
    np.testing.assert_array_equal(leaves(stopped.graph), leaves(first.graph))
    assert float(stopped.opt_state.hyperparams["learning_rate"]) == 0.0 and int(stopped.opt_state.count) == 10
    assert float(first.opt_state.hyperparams["learning_rate"]) == pytest.approx(1e-2)  # the caller's copy is intact


def test_a_mismatched_state_is_refused(data):
    x, y = data
    g = mlp(8, FEATURES)
    r = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.Adam(1e-2), batch_size=16)
    with pytest.raises(ValueError, match=r"^train_graph: opt_state\.inner_state\[0\]\.mu\['h'\]\['bias'\] has shape"):
        ng.train_graph(jax.random.key(1), mlp(9, FEATURES), x, y, optimiser=ng.Adam(1e-2), opt_state=r.opt_state)
    with pytest.raises(ValueError, match=r"^train_graph: opt_state does not match .*SGD") as error:
        ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(0.1), opt_state=r.opt_state)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^train_graph: opt_state does not match"):
        ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.Adam(1e-2), opt_state={"count": 0})
