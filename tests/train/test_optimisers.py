import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng

LEAVES = [
    (ng.SGD(0.1), optax.sgd(0.1)),
    (ng.Momentum(0.05, 0.8), optax.sgd(0.05, momentum=0.8)),
    (ng.Nesterov(0.05, 0.7), optax.sgd(0.05, momentum=0.7, nesterov=True)),
    (ng.Adam(0.01, 0.8, 0.99, 1e-6), optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6)),
    (ng.NAdam(0.01), optax.nadam(0.01, eps=1e-8)),
    (ng.AdaGrad(0.1, 1e-7), optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-7)),
    (ng.RMSProp(0.01, 0.8, 1e-6), optax.rmsprop(0.01, decay=0.8, eps=1e-6)),
    (ng.AdamW(0.01, weight_decay=0.1), optax.adamw(0.01, eps=1e-8, weight_decay=0.1)),
    (ng.WeightDecay(0.1), optax.add_decayed_weights(0.1)),
    (
        ng.OptimiserChain(ng.WeightDecay(0.01), ng.Momentum(0.1)),
        optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.1, momentum=0.9)),
    ),
    (ng.ShieldedOpt(ng.Adam(0.02)), optax.adam(0.02, eps=1e-8)),
]


@pytest.mark.parametrize(("spec", "reference"), LEAVES, ids=lambda v: type(v).__name__)
def test_to_optax_matches_plain_optax_over_three_steps(spec, reference):
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    tx = spec.to_optax()
    s1, s2 = tx.init(params), reference.init(params)
    p1 = p2 = params
    for i in range(3):
        g = jax.tree_util.tree_map(lambda p, i=i: jnp.sin(p * (i + 1)), p1)
        u1, s1 = tx.update(g, s1, p1)
        u2, s2 = reference.update(g, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_learning_rate_is_injected_state():
    state = ng.Adam(0.25).to_optax().init({"w": jnp.zeros(2)})
    assert float(state.hyperparams["learning_rate"]) == 0.25
    chain = ng.OptimiserChain(ng.WeightDecay(0.5), ng.SGD(0.3)).to_optax().init({"w": jnp.zeros(2)})
    assert float(chain[0].hyperparams["weight_decay"]) == 0.5
    assert float(chain[1].hyperparams["learning_rate"]) == pytest.approx(0.3)


def test_learning_rate_change_does_not_retrace_an_update():
    traces = []

    @jax.jit
    def update(state, grads, params):
        traces.append(1)
        return ng.Adam().to_optax().update(grads, state, params)

    params = {"w": jnp.ones(3)}
    for lr in (1e-3, 0.5, 2.0):
        update(ng.Adam(lr).to_optax().init(params), params, params)
    assert len(traces) == 1


def test_skeleton_ignores_hyperparameter_values():
    assert ng.Adam(0.1).skeleton() == ng.Adam(0.3, b1=0.5).skeleton()
    assert hash(ng.SGD(1.0).skeleton()) == hash(ng.SGD(0.2).skeleton())
    assert ng.Adam(0.1).skeleton() != ng.NAdam(0.1).skeleton()
    chain = ng.OptimiserChain(ng.WeightDecay(0.1), ng.ShieldedOpt(ng.SGD(0.5)))
    assert chain.skeleton() == ng.OptimiserChain(ng.WeightDecay(), ng.SGD())


def test_check_31_merge_optimisers():
    assert ng.train.merge_optimisers(ng.SGD(0.1), ng.SGD(2.0), ng.SGD(0.4)).learning_rate == pytest.approx(0.08)
    merged = ng.train.merge_optimisers(ng.Adam(0.1, b1=0.5), ng.Adam(0.5))
    assert isinstance(merged, ng.Adam) and merged.learning_rate == pytest.approx(0.05)
    assert merged.b1 == 0.5
    assert ng.train.merge_optimisers(ng.WeightDecay(0.1), ng.WeightDecay(0.2)).weight_decay == pytest.approx(0.02)
    shielded = ng.train.merge_optimisers(ng.ShieldedOpt(ng.SGD(0.5)), ng.ShieldedOpt(ng.SGD(0.5)))
    assert isinstance(shielded, ng.ShieldedOpt) and shielded.learning_rate == pytest.approx(0.25)
    # AddOptimiserMutation(o -> Descent(0.1))(Momentum(0.2)) gives Chain(Momentum, Descent)
    parts = ng.train.merge_optimisers(ng.SGD(0.1), ng.Momentum(0.2), kind=ng.SGD)
    assert ng.OptimiserChain(*parts) == ng.OptimiserChain(ng.Momentum(0.2), ng.SGD(0.1))
    parts = ng.train.merge_optimisers(ng.SGD(0.1), ng.Momentum(0.2), ng.SGD(0.5), kind=ng.SGD)
    assert parts[0] == ng.Momentum(0.2) and parts[1].learning_rate == pytest.approx(0.05)
    with pytest.raises(TypeError, match="same type"):
        ng.train.merge_optimisers(ng.SGD(0.1), ng.Adam(0.1))


def test_check_31_shielded_and_chain_learning_rates():
    times10 = lambda o: o.with_learning_rate(10 * o.learning_rate)
    assert ng.train.map_optimisers(times10, ng.ShieldedOpt(ng.Momentum(0.1))).learning_rate == pytest.approx(0.1)
    chain = ng.OptimiserChain(ng.Nesterov(0.1), ng.ShieldedOpt(ng.Adam(0.1)))
    assert ng.train.map_optimisers(times10, chain).learning_rate == pytest.approx(0.1)
    assert ng.train.map_optimisers(times10, ng.SGD(0.1)).learning_rate == pytest.approx(1.0)


def test_chain_learning_rate_is_product_and_weight_decay_counts_one():
    chain = ng.OptimiserChain(ng.WeightDecay(0.3), ng.Momentum(0.5), ng.SGD(0.2))
    assert chain.learning_rate == pytest.approx(0.1)
    changed = chain.with_learning_rate(0.4)
    assert changed.learning_rate == pytest.approx(0.4)
    assert changed.optimisers[0] == ng.WeightDecay(0.3)
    assert changed.optimisers[2] == ng.SGD(0.2)
    only_fixed = ng.OptimiserChain(ng.WeightDecay(0.3), ng.ShieldedOpt(ng.SGD(0.2)))
    assert only_fixed.with_learning_rate(5.0) == only_fixed


def test_with_learning_rate_returns_a_copy():
    opt = ng.Adam(0.1)
    new = opt.with_learning_rate(0.2)
    assert opt.learning_rate == 0.1 and new.learning_rate == 0.2 and new.b2 == opt.b2


@pytest.mark.parametrize("spec", [s for s, _ in LEAVES], ids=lambda v: type(v).__name__)
def test_json_round_trip(spec):
    text = json.dumps(spec.to_dict())
    assert ng.train.optimiser_from_dict(json.loads(text)) == spec
    assert ng.train.Optimiser.from_dict(json.loads(text)) == spec


def test_specs_are_hashable_and_comparable():
    assert ng.Adam(1) == ng.Adam(1.0)
    assert len({ng.SGD(0.1), ng.SGD(0.1), ng.SGD(0.2)}) == 2
    assert "learning_rate=0.1" in repr(ng.SGD(0.1))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="learning_rate"):
        ng.SGD(-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        ng.Adam(float("nan"))
    with pytest.raises(TypeError, match="momentum"):
        ng.Momentum(0.1, momentum="high")
    with pytest.raises(ValueError, match="at least one"):
        ng.OptimiserChain()
    with pytest.raises(TypeError, match="members"):
        ng.OptimiserChain(ng.SGD(), "adam")
    with pytest.raises(TypeError, match="ShieldedOpt"):
        ng.ShieldedOpt(0.1)
    with pytest.raises(ValueError, match="type"):
        ng.train.optimiser_from_dict({"type": "Nope"})
    with pytest.raises(ValueError, match="bad fields"):
        ng.train.optimiser_from_dict({"type": "SGD", "lr": 0.1})
